"""Corpora larger than memory: token ids written once to sharded TFRecord files, read back
as the length-bucketed batches `make_seq2seq_dataset` makes from pairs in memory.

Layout of a shard directory (every file written under a temporary name, then renamed):

    manifest.json                  written last: the directory is complete
    chunk-00000.json               chunk 0 is complete (its counts and length statistics)
    chunk-00000-len012.tfrecord    chunk 0's examples of bucket length 12, in input order
    chunk-00000-len020.tfrecord    ...

A chunk is `chunk_pairs` consecutive input pairs. A writer that is stopped keeps its
finished chunks; the next one with the same `identity` skips them and goes on. Each record
is one example: its columns' bytes, one after the other (little-endian, fixed size within a
bucket), so a batch of records is parsed with one `decode_raw` per column.

Reading (`shard_dataset`): each bucket's files are interleaved and shuffled through a
buffer (a full shuffle would need the corpus in memory), batched, and the buckets mixed in
proportion to their sizes as `make_seq2seq_dataset` mixes them. Unshuffled, the batches
are exactly those of `make_seq2seq_dataset(pairs, ..., shuffle=False)`.

Shape legend: N examples, L a bucket's length, B batch, k top tokens.
"""

import dataclasses
import itertools
import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np

from tf_distill.data.errors import DataError

_LOG = logging.getLogger(__name__)

MANIFEST = "manifest.json"
_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class Column:
    """One per-example array of a shard: `shape` per example, None marking an axis laid
    along the positions (the bucket's length)."""

    name: str
    dtype: str
    shape: tuple

    def row_shape(self, length):
        return tuple(length if axis is None else int(axis) for axis in self.shape)

    def row_bytes(self, length):
        return int(np.prod(self.row_shape(length), dtype=np.int64)) * np.dtype(self.dtype).itemsize

    def to_dict(self):
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, value):
        return cls(value["name"], value["dtype"], tuple(value["shape"]))


SEQ2SEQ = tuple(
    Column(name, "int32", (None,)) for name in ("encoder_token_ids", "decoder_token_ids", "targets")
)


class ShardedExamples:
    """A complete shard directory (its manifest read): what `shard_dataset` reads.

    `len()` is the number of examples; `buckets` the bucket lengths; `counts` the examples
    per bucket; `columns` the `Column`s of each record; `constants` per-example values the
    same for every example (added to each batch, not stored per record); `stats` what the
    writer measured (e.g. truncation)."""

    def __init__(self, directory):
        self.directory = Path(directory)
        path = self.directory / MANIFEST
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise DataError(
                f"{path}: no complete shard directory here (its manifest is missing or "
                "unreadable). Write it again (run with --resume, or start a fresh run)."
            ) from None
        if manifest.get("format") != _FORMAT:
            raise DataError(f"{path}: shard format {manifest.get('format')}, expected {_FORMAT}.")
        self.manifest = manifest
        self.buckets = tuple(manifest["buckets"])
        self.counts = tuple(manifest["counts"])
        self.columns = tuple(Column.from_dict(c) for c in manifest["columns"])
        self.constants = dict(manifest.get("constants", {}))
        self.stats = dict(manifest.get("stats", {}))
        self.chunks = int(manifest["chunks"])

    def __len__(self):
        return int(sum(self.counts))

    def files(self, bucket_index):
        """The files of one bucket, in chunk (input) order."""
        length = self.buckets[bucket_index]
        return [
            self.directory / _file_name(chunk, length)
            for chunk in range(self.chunks)
            if (self.directory / _file_name(chunk, length)).exists()
        ]

    def __repr__(self):
        return f"ShardedExamples({str(self.directory)!r}, {len(self)} examples)"


def _file_name(chunk, length):
    return f"chunk-{chunk:05d}-len{length:03d}.tfrecord"


def _chunk_record(directory, chunk):
    return Path(directory) / f"chunk-{chunk:05d}.json"


def _atomic_json(path, value):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def _prepare(directory, identity):
    """Makes `directory`, emptying it first when it holds shards of another identity (or
    none recorded); returns the chunk numbers already complete."""
    directory = Path(directory)
    marker = directory / "identity.json"
    if directory.exists():
        try:
            same = json.loads(marker.read_text(encoding="utf-8")) == identity
        except (OSError, ValueError):
            same = False
        if not same:
            shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if not marker.exists():
        _atomic_json(marker, identity)
    return {
        int(p.name[len("chunk-") : len("chunk-") + 5]) for p in directory.glob("chunk-?????.json")
    }


def _write_records(path, rows):
    """Writes byte strings `rows` to the TFRecord file `path` (via a temporary name)."""
    import tensorflow as tf

    tmp = path.with_name(path.name + ".tmp")
    with tf.io.TFRecordWriter(str(tmp)) as writer:
        for row in rows:
            writer.write(row)
    os.replace(tmp, path)


def _row_bytes_of(arrays):
    """(N, ...) arrays -> N byte strings, each the rows' bytes one after the other."""
    flat = [
        np.ascontiguousarray(a.astype(a.dtype.newbyteorder("<"), copy=False))
        .view(np.uint8)
        .reshape(len(a), -1)
        for a in arrays
    ]
    joined = np.concatenate(flat, axis=1) if len(flat) > 1 else flat[0]
    return [row.tobytes() for row in joined]


def _cut_rows(values, column, length, rows):
    index = [rows] + [slice(0, length) if axis is None else slice(None) for axis in column.shape]
    return values[tuple(index)]


def _finish(directory, buckets, columns, chunks, constants, identity, stats_of):
    """Sums the chunk records into the manifest and writes it (the directory is then
    complete)."""
    directory = Path(directory)
    counts = np.zeros(len(buckets), dtype=np.int64)
    records = []
    for chunk in range(chunks):
        record = json.loads(_chunk_record(directory, chunk).read_text(encoding="utf-8"))
        counts += np.asarray(record["counts"], dtype=np.int64)
        records.append(record)
    manifest = {
        "format": _FORMAT,
        "identity": identity,
        "buckets": list(buckets),
        "counts": [int(c) for c in counts],
        "columns": [c.to_dict() for c in columns],
        "constants": constants,
        "chunks": chunks,
        "stats": stats_of(records) if stats_of else {},
    }
    _atomic_json(directory / MANIFEST, manifest)
    return ShardedExamples(directory)


def complete(directory, identity):
    """The `ShardedExamples` in `directory` if it is complete and was written for
    `identity`, else None."""
    path = Path(directory) / MANIFEST
    if not path.exists():
        return None
    try:
        examples = ShardedExamples(directory)
    except DataError:
        return None
    return examples if examples.manifest.get("identity") == identity else None


def write_seq2seq_shards(
    pairs,
    directory,
    source_tokenizer,
    target_tokenizer,
    max_sequence_length,
    bucket_lengths=None,
    chunk_pairs=50_000,
    identity=None,
):
    """Tokenizes `pairs` (any iterable of `(source, target)`, e.g. a file read line by
    line) into shards in `directory`, `chunk_pairs` at a time: memory holds one chunk.

    Resumable: a directory holding finished chunks of the same `identity` (a JSON-able
    value naming the data and settings; the tokenizers' fingerprints and the lengths are
    added) keeps them and skips their pairs; one of another identity is emptied first. A
    complete directory of the same identity is returned as it is.

    The manifest's `stats["truncation"]` counts the pairs `max_sequence_length` cuts, as
    `tf_distill.pipeline.data_stages.count_truncated` does for pairs in memory.

    Returns:
        `ShardedExamples`, whose batches (`shard_dataset`) are those of
        `make_seq2seq_dataset` on the same pairs.
    """
    from tf_distill.data.datasets import _check, seq2seq_columns

    if isinstance(chunk_pairs, bool) or not isinstance(chunk_pairs, int) or chunk_pairs < 1:
        raise ValueError(f"`chunk_pairs` must be a positive integer. Received: {chunk_pairs!r}")
    buckets = _check(1, max_sequence_length, bucket_lengths)
    width = buckets[-1]
    identity = {
        "what": identity,
        "source_tokenizer": source_tokenizer.fingerprint,
        "target_tokenizer": target_tokenizer.fingerprint,
        "max_sequence_length": int(max_sequence_length),
        "buckets": list(buckets),
        "chunk_pairs": chunk_pairs,
    }
    done = complete(directory, identity)
    if done is not None:
        _LOG.info(f"shards: {len(done)} examples already written in {directory}")
        return done
    finished = _prepare(directory, identity)
    directory = Path(directory)
    limit = int(max_sequence_length)
    iterator = iter(pairs)
    chunk, written, start, last = 0, 0, time.perf_counter(), time.perf_counter()
    while True:
        block = list(itertools.islice(iterator, chunk_pairs))
        if not block:
            break
        if chunk not in finished:
            columns, lengths, sources, targets = seq2seq_columns(
                block, source_tokenizer, target_tokenizer, limit, width, uncut=True
            )
            counts = _write_chunk(directory, chunk, columns, lengths, buckets, SEQ2SEQ)
            targets = targets + 1  # room for the end token, as count_truncated measures
            _atomic_json(
                _chunk_record(directory, chunk),
                {
                    "pairs": len(block),
                    "counts": counts,
                    "source_lengths": np.bincount(sources).tolist(),
                    "target_lengths": np.bincount(targets).tolist(),
                    "source_cut": int((sources > limit).sum()),
                    "target_cut": int((targets > limit).sum()),
                    "cut": int(((sources > limit) | (targets > limit)).sum()),
                },
            )
            del columns, lengths, sources, targets
        written += len(block)
        chunk += 1
        if time.perf_counter() - last > 30:
            last = time.perf_counter()
            _LOG.info(f"shards: {written:,} pairs, {last - start:.0f} s")
    if chunk == 0:
        raise DataError("Cannot write shards of no pairs: the training split is empty.")
    _LOG.info(f"shards: {written:,} pairs in {chunk} chunks, {time.perf_counter() - start:.0f} s")
    return _finish(directory, buckets, SEQ2SEQ, chunk, {}, identity, _truncation_stats)


def _truncation_stats(records):
    """The chunks' truncation counts summed, and the length that keeps 99% of each side
    whole (from the summed length histograms)."""
    pairs = sum(r["pairs"] for r in records)

    def total(key):
        width = max(len(r[key]) for r in records)
        return sum(np.pad(np.asarray(r[key]), (0, width - len(r[key]))) for r in records)

    def percentile_99(histogram):  # np.percentile's (linear) of the lengths it counts
        cumulative = np.cumsum(histogram)
        position = 0.99 * (cumulative[-1] - 1)
        low = int(np.floor(position))
        below, above = (np.searchsorted(cumulative, i, side="right") for i in (low, low + 1))
        above = min(above, len(histogram) - 1)
        return int(below + (position - low) * (above - below))

    keeps = max(percentile_99(total("source_lengths")), percentile_99(total("target_lengths")))
    cut = sum(r["cut"] for r in records)
    return {
        "truncation": {
            "pairs": pairs,
            "source_cut": sum(r["source_cut"] for r in records),
            "target_cut": sum(r["target_cut"] for r in records),
            "share": round(cut / max(1, pairs), 4),
            "length_keeping_99_percent": keeps,
        }
    }


def _write_chunk(directory, chunk, columns, lengths, buckets, specs):
    """Writes one chunk's examples into one file per bucket; returns the counts."""
    bucket_of = np.searchsorted(np.asarray(buckets), lengths)
    counts = []
    for index, length in enumerate(buckets):
        rows = np.flatnonzero(bucket_of == index)
        counts.append(int(rows.size))
        if rows.size:
            arrays = [_cut_rows(columns[c.name], c, length, rows) for c in specs]
            _write_records(directory / _file_name(chunk, length), _row_bytes_of(arrays))
    return counts


def map_shards(
    examples,
    directory,
    new_columns,
    compute,
    batch_size=128,
    identity=None,
    constants=None,
    what="examples",
):
    """Shards in `directory` holding every example of `examples` (same chunks, buckets
    and order) with `new_columns` added, `compute(inputs)` giving them for one batch:
    `inputs` a dict of the existing columns as NumPy arrays (B, L, ...), the result a dict
    of arrays (B, ...) per new column. Resumable by chunk like `write_seq2seq_shards`.

    Used for a teacher's outputs cached on disk (`tf_distill.teacher_cache`): the teacher
    runs once over the corpus, memory holding one batch."""
    new_columns = tuple(new_columns)
    columns = tuple(examples.columns) + new_columns
    identity = {
        "what": identity,
        "from": str(examples.directory),
        "from_identity": examples.manifest.get("identity"),
        "columns": [c.to_dict() for c in columns],
        "constants": constants or {},
    }
    done = complete(directory, identity)
    if done is not None:
        _LOG.info(f"{what}: {len(done)} examples already written in {directory}")
        return done
    finished = _prepare(directory, identity)
    directory = Path(directory)
    total = len(examples)
    seen, start, last = 0, time.perf_counter(), time.perf_counter()
    for chunk in range(examples.chunks):
        source = json.loads(_chunk_record(examples.directory, chunk).read_text(encoding="utf-8"))
        if chunk in finished:
            seen += sum(source["counts"])
            continue
        for length in examples.buckets:
            path = examples.directory / _file_name(chunk, length)
            if not path.exists():
                continue
            rows = []
            for raw in _raw_batches(path, batch_size):
                inputs = _parse_numpy(raw, examples.columns, length)
                extra = compute(inputs)
                arrays = [np.frombuffer(b"".join(raw), np.uint8).reshape(len(raw), -1)]
                arrays += [np.asarray(extra[c.name], dtype=c.dtype) for c in new_columns]
                rows.extend(_row_bytes_of(arrays))
                seen += len(raw)
                if time.perf_counter() - last > 30:
                    last = time.perf_counter()
                    _LOG.info(f"{what}: {seen:,}/{total:,}, {last - start:.0f} s")
            _write_records(directory / _file_name(chunk, length), rows)
        _atomic_json(_chunk_record(directory, chunk), source)
    _LOG.info(f"{what}: {total:,} written, {time.perf_counter() - start:.0f} s")
    return _finish(
        directory,
        examples.buckets,
        columns,
        examples.chunks,
        constants or {},
        identity,
        lambda records: examples.stats,
    )


def _raw_batches(path, batch_size):
    """Lists of at most `batch_size` raw records of one TFRecord file, in order."""
    import tensorflow as tf

    batch = []
    for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
        batch.append(record)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def _parse_numpy(raw, columns, length):
    """Raw records of one bucket -> {name: (B, ...) array}."""
    joined = np.frombuffer(b"".join(raw), np.uint8).reshape(len(raw), -1)
    out, offset = {}, 0
    for column in columns:
        size = column.row_bytes(length)
        part = np.ascontiguousarray(joined[:, offset : offset + size])
        dtype = np.dtype(column.dtype).newbyteorder("<")
        out[column.name] = (
            part.view(dtype).astype(column.dtype).reshape((len(raw),) + column.row_shape(length))
        )
        offset += size
    return out


def shard_dataset(
    examples,
    batch_size,
    shuffle=True,
    seed=0,
    shuffle_buffer=10_000,
    repeat=False,
    drop_remainder=False,
    worker=None,
    cycle_length=4,
):
    """A dataset of `(inputs, targets)` batches read from shards (`write_seq2seq_shards`,
    `map_shards`), as `make_seq2seq_dataset` batches pairs in memory: `inputs` holds
    `encoder_token_ids`, `decoder_token_ids` and every added column (e.g. a teacher's
    cached top-k), each batch one bucket's length.

    Args:
        examples: a `ShardedExamples` or its directory.
        batch_size: examples per batch.
        shuffle: each bucket's files in a random order, `cycle_length` of them read in
            turn, through a shuffle buffer of `shuffle_buffer` examples; batches of all
            buckets mixed at random in proportion to their sizes; new orders every pass.
            Off: each bucket's examples in input order, bucket after bucket, exactly the
            batches of `make_seq2seq_dataset(..., shuffle=False)`.
        seed: seed of the shuffles.
        repeat, drop_remainder: as for `make_seq2seq_dataset`.
        worker: optional `(num_workers, index)`: read only this worker's share of each
            bucket's files (file i goes to worker i % num_workers), for multi-worker
            training where each worker feeds its own replicas. A bucket with fewer files
            than workers gives its files to the first workers.
    """
    import tensorflow as tf

    from tf_distill.data.datasets import _split_seq2seq, mix_buckets

    if not isinstance(examples, ShardedExamples):
        examples = ShardedExamples(examples)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be an integer >= 1. Received: {batch_size!r}")
    datasets, batch_counts = [], []
    for index, length in enumerate(examples.buckets):
        files = [str(f) for f in examples.files(index)]
        count = examples.counts[index]
        if worker is not None:
            workers, mine = worker
            files = files[mine::workers]
            count = count * len(files) // max(1, len(examples.files(index)))  # about
        if not files:
            continue
        names = tf.data.Dataset.from_tensor_slices(files)
        if shuffle:
            bucket_seed = None if seed is None else seed + index
            names = names.shuffle(len(files), seed=bucket_seed, reshuffle_each_iteration=True)
            records = names.interleave(
                tf.data.TFRecordDataset,
                cycle_length=min(cycle_length, len(files)),
                block_length=1,
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            )
            records = records.shuffle(
                shuffle_buffer, seed=bucket_seed, reshuffle_each_iteration=True
            )
        else:
            records = tf.data.TFRecordDataset(files)
        batched = records.batch(batch_size, drop_remainder=drop_remainder)
        datasets.append(batched.map(_batch_parser(examples, length)))
        full, rest = divmod(count, batch_size)
        batch_counts.append(full + (0 if drop_remainder or rest == 0 else 1))
    if not datasets:
        raise DataError(f"{examples.directory}: no shard files for worker {worker}.")
    return mix_buckets(
        datasets,
        batch_counts,
        batch_size,
        shuffle,
        seed,
        repeat,
        drop_remainder,
        _split_seq2seq,
        exact_counts=worker is None,
    )


def _batch_parser(examples, length):
    import tensorflow as tf

    columns = examples.columns
    constants = examples.constants

    def parse(records):
        batch, offset = {}, 0
        for column in columns:
            size = column.row_bytes(length)
            part = tf.strings.substr(records, offset, size)
            values = tf.io.decode_raw(part, column.dtype, little_endian=True)
            shape = column.row_shape(length)
            batch[column.name] = tf.reshape(values, (-1, *shape))
            offset += size
        rows = tf.shape(records)[0]
        for name, value in constants.items():
            batch[name] = tf.fill([rows], tf.constant(value, tf.float32))
        return batch

    return parse
