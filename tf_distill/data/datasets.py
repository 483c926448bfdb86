"""tf.data pipelines: token ids padded to a few fixed lengths, shuffled, batched, prefetched.

Tokenization happens once, up front, in Python (`Tokenizer.tokenize`), into NumPy arrays;
the `tf.data` graph then only slices, shuffles and batches in-memory tensors, which keeps
2 CPU cores free for the model. Every batch is padded to one of `bucket_lengths`
(default: just `max_sequence_length`), so a `jit_compile=True` model compiles one
program per bucket length instead of one per batch.

Shape legend: B batch, S source length, T target length (S = T = the bucket length).
"""

from itertools import pairwise

import numpy as np
import tensorflow as tf

from tf_distill.data.errors import DataError


def make_seq2seq_dataset(
    pairs,
    source_tokenizer,
    target_tokenizer,
    batch_size,
    max_sequence_length,
    bucket_lengths=None,
    shuffle=True,
    seed=0,
    repeat=False,
    drop_remainder=False,
    extra_columns=None,
    extra_length_axes=None,
):
    """A dataset of `({"encoder_token_ids", "decoder_token_ids"}, target_ids)` batches.

    For a target sentence with tokens `t`, the decoder reads `[START] t` and learns to
    write `t [END]` (teacher forcing); both are cut to `max_sequence_length`, as is the
    source. Padding is 0 (`[PAD]`) on the right.

    Args:
        pairs: list of `(source, target)` strings.
        source_tokenizer, target_tokenizer: `Tokenizer`s (the same one for a shared
            vocabulary).
        batch_size: pairs per batch.
        max_sequence_length: the longest source and decoder sequence, in tokens.
        bucket_lengths: increasing padded lengths, e.g. `(8, 16, 32)`; the last must be at
            least `max_sequence_length`. A pair goes to the shortest bucket its longer side
            fits. Default: one bucket, `max_sequence_length`.
        shuffle: shuffle pairs within buckets and batches across buckets, anew each epoch.
        seed: seed of the shuffles.
        repeat: repeat forever (then pass `steps_per_epoch` to `fit`).
        drop_remainder: drop each bucket's last, smaller batch (only full-size batch
            shapes, for XLA); off by default so evaluation sees every pair.
        extra_columns: optional dict of per-pair arrays to add to each batch's input dict,
            one row per pair in `pairs`' order: 1-D arrays as they are, arrays of 2 or more
            dimensions laid out along the target positions, with axis 1 at least
            `bucket_lengths[-1]` long, cut to each batch's length like the token ids (e.g.
            a teacher's cached top-k logits, `tf_distill.teacher_cache`). Cached teacher
            attention maps (keys `"teacher_features/<stack>/self_attention|cross_attention/
            <layer>"`, shape (N, heads, T, S)) are cut along axes 2 and 3.
        extra_length_axes: optional `{column name: axes}` overriding which axes of an
            extra column are laid along the positions and cut to each batch's length.

    Returns:
        A `tf.data.Dataset` of `({"encoder_token_ids": int32 (B, S),
        "decoder_token_ids": int32 (B, T)}, target_ids int32 (B, T))`.

    Example:
    >>> dataset = make_seq2seq_dataset(splits.train, source_tok, target_tok, batch_size=64,
    ...                                max_sequence_length=32, bucket_lengths=(8, 16, 32))
    >>> model.fit(dataset, epochs=10)
    """
    pairs = list(pairs)
    if not pairs:
        raise DataError("Cannot make a dataset from no pairs: `pairs` is empty.")
    buckets = _check(batch_size, max_sequence_length, bucket_lengths)
    width = buckets[-1]
    columns, lengths = seq2seq_columns(
        pairs, source_tokenizer, target_tokenizer, max_sequence_length, width
    )
    length_axes = {name: (1,) for name in columns}
    for name, values in (extra_columns or {}).items():
        values = np.asarray(values)
        axes = _length_axes(name, values, extra_length_axes, default=(1,))
        if (
            name in columns
            or values.shape[0] != len(pairs)
            or any(values.shape[axis] < width for axis in axes)
        ):
            raise ValueError(
                f"extra_columns[{name!r}] must be a new name with one row per pair (and, "
                f"along its position axes {list(axes)}, at least {width} positions). "
                f"Received shape {values.shape} for {len(pairs)} pairs."
            )
        columns[name] = _cut(values, axes, width)
        length_axes[name] = axes
    return _bucketed(
        columns,
        lengths,
        buckets,
        batch_size,
        shuffle,
        seed,
        repeat,
        drop_remainder,
        _split_seq2seq,
        length_axes,
    )


SEQ2SEQ_COLUMNS = ("encoder_token_ids", "decoder_token_ids", "targets")


def seq2seq_columns(
    pairs, source_tokenizer, target_tokenizer, max_sequence_length, width, uncut=False
):
    """The token id arrays of `pairs` as `make_seq2seq_dataset` batches them, before the
    length buckets: `({"encoder_token_ids", "decoder_token_ids", "targets"}: int32 (N,
    width), lengths int64 (N,))`, a pair's length being its longer side (its bucket).
    `uncut=True` adds the sources' and targets' token counts before any cut (two more
    int64 (N,) arrays)."""
    sources = source_tokenizer.tokenize([source for source, _ in pairs])
    targets = target_tokenizer.tokenize([target for _, target in pairs])
    limit = max_sequence_length
    encoder, encoder_lengths = _pad(sources, limit, width)
    target_ids, target_lengths = _pad(targets, limit, width)
    if uncut:
        uncut = (
            np.fromiter((len(r) for r in sources), np.int64, len(sources)),
            np.fromiter((len(r) for r in targets), np.int64, len(targets)),
        )
    decoder = np.zeros_like(target_ids)
    decoder[:, 0] = target_tokenizer.start_id
    decoder[:, 1:limit] = target_ids[:, : limit - 1]
    labels = target_ids
    room = np.flatnonzero(target_lengths < limit)  # rows not cut short get [END]
    labels[room, target_lengths[room]] = target_tokenizer.end_id
    lengths = np.maximum(encoder_lengths, np.minimum(target_lengths + 1, limit))
    columns = {"encoder_token_ids": encoder, "decoder_token_ids": decoder, "targets": labels}
    return (columns, lengths, *uncut) if uncut else (columns, lengths)


def make_classification_dataset(
    texts,
    labels,
    tokenizer,
    batch_size,
    max_sequence_length,
    bucket_lengths=None,
    shuffle=True,
    seed=0,
    repeat=False,
    drop_remainder=False,
    extra_columns=None,
    teacher_inputs=None,
    extra_length_axes=None,
):
    """A dataset of `({"token_ids": int32 (B, S)}, labels int32 (B,))` batches.

    Args:
        texts: list of strings; labels: list of int class ids, one per text.
        tokenizer: a `Tokenizer`. The other arguments are as in `make_seq2seq_dataset`.
        extra_columns: optional dict of per-text arrays added to each batch's input dict,
            e.g. a teacher's cached outputs (`tf_distill.teacher_cache`), kept whole, except
            cached teacher features (keys `"teacher_features/..."`): hidden states and value
            heads are cut along axis 1 to each batch's length, attention maps along 2 and 3.
        teacher_inputs: optional dict of per-text arrays that a teacher with a tokenizer of
            its own reads (e.g. a keras-hub model's `token_ids`, `segment_ids`,
            `padding_mask`, already padded to its length). They ride in each batch as the
            nested dict `inputs["teacher_inputs"]`, uncut by the length buckets, and
            `Distiller` gives them to the teacher while the student reads `token_ids`.
        extra_length_axes: optional `{column name: axes}` overriding which axes of an
            extra column are cut to each batch's length (`()`: none).
    """
    texts = list(texts)
    labels = list(labels)
    if not texts:
        raise DataError("Cannot make a dataset from no texts: `texts` is empty.")
    if len(texts) != len(labels):
        raise DataError(
            f"`texts` and `labels` must have the same length. Received: {len(texts)} texts "
            f"and {len(labels)} labels."
        )
    buckets = _check(batch_size, max_sequence_length, bucket_lengths)
    token_ids, lengths = _pad(tokenizer.tokenize(texts), max_sequence_length, buckets[-1])
    columns = {"token_ids": token_ids, "labels": np.asarray(labels, dtype="int32")}
    length_axes = {"token_ids": (1,)}
    width = buckets[-1]
    named = [(name, values, name) for name, values in (extra_columns or {}).items()]
    named += [
        (f"{_TEACHER}/{n}", v, f"teacher_inputs[{n!r}]") for n, v in (teacher_inputs or {}).items()
    ]
    for column, values, name in named:
        values = np.asarray(values)
        if column in columns or len(values) != len(texts):
            raise ValueError(
                f"{name} must be a new name with one row per text ({len(texts)}). Received "
                f"{len(values)} rows."
            )
        axes = ()
        if not column.startswith(f"{_TEACHER}/"):
            axes = _length_axes(column, values, extra_length_axes, default=())
            if any(values.shape[axis] < width for axis in axes):
                raise ValueError(
                    f"{name} must have at least {width} positions along its position axes "
                    f"{list(axes)}. Received shape {values.shape}."
                )
        columns[column] = _cut(values, axes, width)
        length_axes[column] = axes
    return _bucketed(
        columns,
        lengths,
        buckets,
        batch_size,
        shuffle,
        seed,
        repeat,
        drop_remainder,
        _split_classification,
        length_axes,
    )


_TEACHER = "teacher_inputs"


def _split_seq2seq(batch):
    targets = batch.pop("targets")
    return batch, targets


def _split_classification(batch):
    labels = batch.pop("labels")
    teacher = {
        k.split("/", 1)[1]: batch.pop(k) for k in list(batch) if k.startswith(f"{_TEACHER}/")
    }
    if teacher:
        batch[_TEACHER] = teacher
    return batch, labels


def _check(batch_size, max_sequence_length, bucket_lengths):
    for name, value, least in (
        ("batch_size", batch_size, 1),
        ("max_sequence_length", max_sequence_length, 2),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise ValueError(f"`{name}` must be an integer >= {least}. Received: {name}={value!r}")
    if bucket_lengths is None:
        return (int(max_sequence_length),)
    buckets = tuple(int(length) for length in bucket_lengths)
    if not buckets or any(b <= a for a, b in pairwise(buckets)) or buckets[0] < 1:
        raise ValueError(
            "`bucket_lengths` must be positive and strictly increasing. "
            f"Received: bucket_lengths={bucket_lengths!r}"
        )
    if buckets[-1] < max_sequence_length:
        raise ValueError(
            "The last of `bucket_lengths` must be at least `max_sequence_length`, or the "
            f"longest sequences have no bucket. Received: bucket_lengths={bucket_lengths!r}, "
            f"max_sequence_length={max_sequence_length}"
        )
    return buckets


def _pad(rows, limit, width):
    """Id lists cut to `limit` -> an int32 (N, width) zero-padded array, and their lengths."""
    array = np.zeros((len(rows), width), dtype="int32")
    lengths = np.zeros(len(rows), dtype="int64")
    for i, ids in enumerate(rows):
        n = min(len(ids), limit)
        array[i, :n] = ids[:n]
        lengths[i] = n
    return array, lengths


_FEATURE_PREFIX = "teacher_features/"
_MAP_KINDS = ("self_attention", "cross_attention")


def _length_axes(name, values, explicit, default):
    """The axes of extra column `name` laid along the positions: `explicit[name]` when
    given; (2, 3) for a cached teacher attention map, (1,) for other cached teacher
    features; else `default` for arrays of 2 or more dimensions (1-D columns: none)."""
    if explicit and name in explicit:
        axes = tuple(int(axis) for axis in explicit[name])
        if any(not 1 <= axis < values.ndim for axis in axes):
            raise ValueError(
                f"extra_length_axes[{name!r}] must name axes from 1 to {values.ndim - 1} of "
                f"its array of shape {values.shape}. Received: {explicit[name]!r}."
            )
        return axes
    if values.ndim < 2:
        return ()
    if str(name).startswith(_FEATURE_PREFIX):
        kind = str(name).split("/")[2] if str(name).count("/") >= 3 else ""
        return (2, 3) if kind in _MAP_KINDS and values.ndim >= 4 else (1,)
    return default


def _cut(values, axes, length):
    """`values` cut to `length` along each of `axes` (a view)."""
    index = [slice(None)] * values.ndim
    for axis in axes:
        index[axis] = slice(0, length)
    return values[tuple(index)]


def _bucketed(
    columns, lengths, buckets, batch_size, shuffle, seed, repeat, drop_remainder, split, length_axes
):
    """Cuts each bucket's rows to its length, batches each bucket, and mixes the buckets.

    `columns` are arrays with one row per example; `length_axes[name]` are the axes of a
    column padded to the longest bucket, cut to each bucket's length (none when absent).
    """
    bucket_of = np.searchsorted(np.asarray(buckets), lengths)  # first bucket >= length
    datasets, batch_counts = [], []
    for index, length in enumerate(buckets):
        rows = np.flatnonzero(bucket_of == index)
        if rows.size == 0:
            continue
        tensors = {
            name: _cut(values, length_axes.get(name, ()), length)[rows]
            for name, values in columns.items()
        }
        dataset = tf.data.Dataset.from_tensor_slices(tensors)
        if shuffle:
            bucket_seed = None if seed is None else seed + index
            dataset = dataset.shuffle(rows.size, seed=bucket_seed, reshuffle_each_iteration=True)
        datasets.append(dataset.batch(batch_size, drop_remainder=drop_remainder))
        full, rest = divmod(rows.size, batch_size)
        batch_counts.append(full + (0 if drop_remainder or rest == 0 else 1))
    return mix_buckets(
        datasets, batch_counts, batch_size, shuffle, seed, repeat, drop_remainder, split
    )


def mix_buckets(
    datasets,
    batch_counts,
    batch_size,
    shuffle,
    seed,
    repeat,
    drop_remainder,
    split,
    exact_counts=True,
):
    """One dataset of the buckets' batched datasets (`batch_counts` batches each):
    shuffled, the batches of all buckets in a random order, each bucket in proportion to
    its size, a new order every pass; else bucket after bucket. Then `split` maps each
    batch to `(inputs, labels)`. `exact_counts=False`: the counts are estimates, used as
    weights only (the dataset's cardinality is left unknown)."""
    if sum(batch_counts) == 0:
        raise DataError(
            f"No full batch of {batch_size}: every bucket has fewer examples. Use a smaller "
            "batch_size or drop_remainder=False."
        )
    if len(datasets) == 1:
        dataset = datasets[0]
    elif shuffle:
        weights = [count / sum(batch_counts) for count in batch_counts]
        dataset = tf.data.Dataset.sample_from_datasets(
            datasets,
            weights=weights,
            seed=seed,
            stop_on_empty_dataset=False,
            rerandomize_each_iteration=True,
        )
    else:
        dataset = datasets[0]
        for other in datasets[1:]:
            dataset = dataset.concatenate(other)
    if repeat:
        dataset = dataset.repeat()
    elif exact_counts:
        # The batch count is known; saying so gives `fit` a step count for its progress
        # output from the first epoch on, instead of "your input ran out of data".
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(sum(batch_counts)))
    return dataset.map(split, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
