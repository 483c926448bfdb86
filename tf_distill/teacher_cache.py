"""The teacher's outputs on the training data, computed once and kept as its top k logits.

Token-level distillation runs the frozen teacher on every batch of every epoch; at
`configs/small.json`'s sizes that forward pass is close to half of a student's step. The
teacher's logits for a given training pair never change, so `teacher_top_k` computes them
once and keeps the k most likely tokens per target position (ids and log probabilities
at the distillation temperature). Passed to `make_seq2seq_dataset(..., extra_columns=...)`,
they ride along in each batch, and `Distiller` then trains against them
(`losses.top_k_kl_per_token`) without calling the teacher. With k = V the loss equals the
live teacher's; with a smaller k the probability left outside the top k is spread evenly
over the other tokens.

Memory: 8 bytes per (pair, position, k): 17,000 pairs x 41 positions x k = 8 is 45 MB.

`teacher_features` does the same for the hidden states, attention maps and value heads
that a `Distiller`'s feature terms read (`distiller.teacher_feature_names()`), so with
both caches the teacher does not run at all while the student trains. These are much
larger (a hidden state is D values per position, an attention map heads x L per
position); `feature_cache_bytes` says how large before anything is computed, and
`dtype="float16"` halves it.
"""

import logging
import time

import numpy as np
import tensorflow as tf

from tf_distill import losses
from tf_distill.data import make_seq2seq_dataset
from tf_distill.distiller import (
    TEACHER_FEATURES,
    TEACHER_TEMPERATURE,
    TEACHER_TOP_IDS,
    TEACHER_TOP_LOG_PROBS,
)

_LOG = logging.getLogger(__name__)


def _numbered_batches(
    pairs, source_tokenizer, target_tokenizer, max_sequence_length, bucket_lengths, batch_size
):
    """`(dataset, width)`: the pairs' batches in the student's length buckets, unshuffled,
    each input dict with a "row" column (the pair's index), and the widest bucket."""
    width = int(bucket_lengths[-1]) if bucket_lengths else int(max_sequence_length)
    dataset = make_seq2seq_dataset(
        pairs,
        source_tokenizer,
        target_tokenizer,
        batch_size=batch_size,
        max_sequence_length=max_sequence_length,
        bucket_lengths=bucket_lengths,
        shuffle=False,
        extra_columns={"row": np.arange(len(pairs), dtype="int64")},
    )
    return dataset, width


def teacher_top_k(
    teacher,
    pairs,
    source_tokenizer,
    target_tokenizer,
    max_sequence_length,
    k,
    temperature=1.0,
    bucket_lengths=None,
    batch_size=128,
):
    """The teacher's k most likely tokens at every target position of every pair.

    Args:
        teacher: a Keras seq2seq model returning (B, T, V) logits, or a list of them (an
            ensemble: the mean of their probabilities at `temperature`, as `Distiller`
            uses it); runs with `training=False`.
        pairs: the `(source, target)` pairs the student will train on, in the order given
            to `make_seq2seq_dataset`.
        source_tokenizer, target_tokenizer, max_sequence_length, bucket_lengths: as for
            `make_seq2seq_dataset` (the teacher sees the same token ids as the student).
        k: how many tokens to keep per position, 1 <= k; more than V keeps V.
        temperature: T of the log probabilities, log softmax(z_t / T): the temperature the
            `Distiller` trains at.
        batch_size: pairs per teacher call.

    Returns:
        `{"teacher_top_ids": int32 (N, L, k), "teacher_top_log_probs": float32 (N, L, k),
        "teacher_temperature": float32 (N,)}` (the temperature, which `Distiller` checks),
        L = `bucket_lengths[-1]` (or `max_sequence_length`); positions past the pair's
        bucket length are 0 (padding, which the loss masks). Give it as `extra_columns`
        to `make_seq2seq_dataset` with the same pairs in the same order.
    """
    top, k = _top_k_function(teacher, k, temperature)
    pairs = list(pairs)
    dataset, width = _numbered_batches(
        pairs, source_tokenizer, target_tokenizer, max_sequence_length, bucket_lengths, batch_size
    )

    top_ids = np.zeros((len(pairs), width, k), dtype="int32")
    top_log_probs = np.zeros((len(pairs), width, k), dtype="float32")
    batches = int(dataset.cardinality())
    start = last = time.perf_counter()
    for i, (inputs, _) in enumerate(dataset):
        rows = inputs.pop("row").numpy()
        ids, values = top(inputs)
        length = ids.shape[1]
        top_ids[rows, :length] = ids.numpy()
        top_log_probs[rows, :length] = values.numpy()
        if time.perf_counter() - last > 30 or i + 1 == batches:
            last = time.perf_counter()
            _LOG.info(f"teacher outputs: {i + 1}/{batches} batches, {last - start:.0f} s")
    return {
        TEACHER_TOP_IDS: top_ids,
        TEACHER_TOP_LOG_PROBS: top_log_probs,
        TEACHER_TEMPERATURE: np.full((len(pairs),), temperature, "float32"),
    }


def _top_k_function(teacher, k, temperature):
    """`(top, k)`: `top(inputs)` gives the teacher's (or ensemble's) top-k token ids and
    log probabilities at `temperature`, a `tf.function`; `k` capped at the vocabulary."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"`k` must be an integer >= 1. Received: k={k!r}.")
    if not float(temperature) > 0:
        raise ValueError(f"`temperature` must be positive. Received: {temperature!r}.")
    teachers = list(teacher) if isinstance(teacher, list | tuple) else [teacher]
    vocab = int(teachers[0].outputs[0].shape[-1])
    k = min(int(k), vocab)

    @tf.function(reduce_retracing=True)
    def top(inputs):
        members = [tf.cast(t(inputs, training=False), tf.float32) for t in teachers]
        logits = losses.ensemble_logits(members, temperature)
        values, ids = tf.math.top_k(tf.nn.log_softmax(logits / float(temperature)), k=k)
        return ids, values

    return top, k


def teacher_top_k_shards(teacher, examples, directory, k, temperature=1.0, batch_size=128):
    """`teacher_top_k` for a corpus in shards (`tf_distill.data.shards`), written to disk:
    shards in `directory` holding every example of `examples` with the teacher's top-k
    ids and log probabilities added, resumable chunk by chunk; memory holds one batch.

    Returns:
        `ShardedExamples` whose `shard_dataset` batches carry the columns
        `teacher_top_k`'s do ("teacher_top_ids", "teacher_top_log_probs" and the
        constant "teacher_temperature"), cut to each batch's length.
    """
    from tf_distill.data import shards

    top, k = _top_k_function(teacher, k, temperature)

    def compute(inputs):
        ids, values = top(
            {
                "encoder_token_ids": tf.constant(inputs["encoder_token_ids"]),
                "decoder_token_ids": tf.constant(inputs["decoder_token_ids"]),
            }
        )
        return {TEACHER_TOP_IDS: ids.numpy(), TEACHER_TOP_LOG_PROBS: values.numpy()}

    return shards.map_shards(
        examples,
        directory,
        (
            shards.Column(TEACHER_TOP_IDS, "int32", (None, k)),
            shards.Column(TEACHER_TOP_LOG_PROBS, "float32", (None, k)),
        ),
        compute,
        batch_size=batch_size,
        identity={"top_k": k, "temperature": float(temperature)},
        constants={TEACHER_TEMPERATURE: float(temperature)},
        what="teacher outputs (on disk)",
    )


_MAP_KINDS = ("self_attention", "cross_attention")


def _position_axes(name):
    """The axes of a cached feature column laid along the positions (as the datasets cut
    them): 2 and 3 for an attention map (N, heads, T, S), else 1."""
    kind = name[len(TEACHER_FEATURES) :].split("/")[1]
    return (2, 3) if kind in _MAP_KINDS else (1,)


def _check_distiller(distiller, dtype):
    if not getattr(distiller, "feature_weights", None):
        raise ValueError(
            "`distiller` must be a Distiller with a hidden, attention or value term: only "
            "those read the teacher's features."
        )
    if np.dtype(dtype) not in (np.dtype("float32"), np.dtype("float16")):
        raise ValueError(f"`dtype` must be 'float32' or 'float16'. Received: {dtype!r}.")


def _probe_inputs(distiller, width):
    """A one-row input dict of `width` real tokens for the distiller's teacher."""
    from tf_distill.features import SEQ2SEQ, model_kind

    ids = tf.ones((1, width), tf.int32)
    if model_kind(distiller.teachers[0]) == SEQ2SEQ:
        return {"encoder_token_ids": ids, "decoder_token_ids": ids}
    return {"token_ids": ids}


def feature_cache_shapes(distiller, width):
    """`{name: per-row shape}` of the cache `teacher_features` makes for sequences padded
    to `width` (from one teacher pass on a single row)."""
    _check_distiller(distiller, "float32")
    columns = distiller.teacher_feature_columns(_probe_inputs(distiller, width))
    return {name: tuple(value.shape[1:]) for name, value in columns.items()}


def feature_cache_bytes(distiller, num_rows, width, dtype="float32"):
    """Bytes the arrays of `teacher_features` take for `num_rows` examples padded to
    `width` positions (the datasets built from them hold a second copy)."""
    per_row = sum(int(np.prod(shape)) for shape in feature_cache_shapes(distiller, width).values())
    return int(num_rows) * per_row * np.dtype(dtype).itemsize


def teacher_features(
    distiller,
    pairs,
    source_tokenizer,
    target_tokenizer,
    max_sequence_length,
    bucket_lengths=None,
    batch_size=128,
    dtype="float32",
):
    """The teacher features a translation `Distiller`'s feature terms read, for every pair.

    Args:
        distiller: a `Distiller` with a hidden, attention or value term (its teacher, layer
            map and terms decide what is kept: `distiller.teacher_feature_names()`).
        pairs, source_tokenizer, target_tokenizer, max_sequence_length, bucket_lengths: as
            for `make_seq2seq_dataset` (the teacher sees the student's token ids).
        batch_size: pairs per teacher call.
        dtype: `"float32"`, or `"float16"` for half the memory (the losses read them
            back in float32).

    Returns:
        `{name: array (N, ...)}`, positions padded to `bucket_lengths[-1]` (or
        `max_sequence_length`) with zeros. Give it as `extra_columns` to
        `make_seq2seq_dataset` with the same pairs in the same order (merged with
        `teacher_top_k`'s dict to skip the teacher entirely); batches that carry it do not
        run the teacher's features.
    """
    _check_distiller(distiller, dtype)
    pairs = list(pairs)
    dataset, width = _numbered_batches(
        pairs, source_tokenizer, target_tokenizer, max_sequence_length, bucket_lengths, batch_size
    )
    batches = (inputs for inputs, _ in dataset)
    return _collect(distiller, batches, len(pairs), width, dtype, int(dataset.cardinality()))


def teacher_features_of_inputs(distiller, inputs, batch_size=128, dtype="float32"):
    """`teacher_features` for model inputs given as arrays (e.g. a classifier's
    `{"token_ids": (N, S)}`, all padded to one length S); the result has one row per row
    of `inputs`, for `make_classification_dataset(extra_columns=...)` or a dataset of
    one's own."""
    _check_distiller(distiller, dtype)
    inputs = {name: np.asarray(values) for name, values in inputs.items()}
    rows = {len(values) for values in inputs.values()}
    widths = {values.shape[1] for values in inputs.values() if values.ndim >= 2}
    if len(rows) != 1 or len(widths) != 1:
        raise ValueError(
            "`inputs` must be arrays with one row per example, padded to one length. "
            f"Received shapes { {name: v.shape for name, v in inputs.items()} }."
        )
    (num_rows,), (width,) = rows, widths
    dataset = tf.data.Dataset.from_tensor_slices(
        {**inputs, "row": np.arange(num_rows, dtype="int64")}
    ).batch(batch_size)
    return _collect(distiller, iter(dataset), num_rows, width, dtype, int(dataset.cardinality()))


def _collect(distiller, batches, num_rows, width, dtype, num_batches):
    shapes = feature_cache_shapes(distiller, width)
    arrays = {name: np.zeros((num_rows, *shape), dtype=dtype) for name, shape in shapes.items()}
    size = sum(array.nbytes for array in arrays.values())
    _LOG.info(f"teacher features: {len(arrays)} tensors, {size / 2**20:.0f} MB ({dtype})")
    compute = tf.function(distiller.teacher_feature_columns, reduce_retracing=True)
    start = last = time.perf_counter()
    for i, inputs in enumerate(batches):
        rows = inputs.pop("row").numpy()
        for name, value in compute(inputs).items():
            index = [rows] + [slice(None)] * (value.shape.rank - 1)
            for axis in _position_axes(name):
                index[axis] = slice(0, value.shape[axis])
            arrays[name][tuple(index)] = value.numpy().astype(dtype)
        if time.perf_counter() - last > 30 or i + 1 == num_batches:
            last = time.perf_counter()
            _LOG.info(f"teacher features: {i + 1}/{num_batches} batches, {last - start:.0f} s")
    return arrays
