"""Corpora on disk: the shards' batches are the in-memory batches; writing resumes; the
teacher's top-k cache on disk equals the one in memory."""

import keras
import numpy as np
import pytest

from tf_distill.data import DataError, Tokenizer, generate_corpus, make_seq2seq_dataset
from tf_distill.data.shards import (
    Column,
    ShardedExamples,
    map_shards,
    shard_dataset,
    write_seq2seq_shards,
)
from tf_distill.models import build_transformer
from tf_distill.pipeline.data_stages import Tokenizers, count_truncated
from tf_distill.teacher_cache import teacher_top_k, teacher_top_k_shards

MAX_LEN, BUCKETS, BATCH = 20, (8, 12, 21), 32


@pytest.fixture(scope="module")
def corpus():
    pairs = generate_corpus(1500, seed=3, ambiguity=0.3)
    tokenizer = Tokenizer.train([s for p in pairs for s in p], vocabulary_size=300)
    return pairs, tokenizer


def _write(pairs, tokenizer, directory, chunk_pairs=400, identity="test"):
    return write_seq2seq_shards(
        iter(pairs), directory, tokenizer, tokenizer, MAX_LEN, BUCKETS, chunk_pairs, identity
    )


def _arrays(dataset):
    """Every batch as ({name: array}, targets array)."""
    return [
        ({name: value.numpy() for name, value in inputs.items()}, targets.numpy())
        for inputs, targets in dataset
    ]


def _assert_same_batches(expected, actual, rtol=0):
    assert len(expected) == len(actual)
    for (inputs, targets), (other, other_targets) in zip(expected, actual, strict=True):
        assert sorted(inputs) == sorted(other)
        for name in inputs:
            np.testing.assert_allclose(other[name], inputs[name], rtol=rtol, err_msg=name)
            assert other[name].dtype == inputs[name].dtype, name
        np.testing.assert_array_equal(other_targets, targets)


def _rows(batches):
    """The multiset of examples (source ids + targets) in `batches`."""
    return sorted(
        tuple(inputs["encoder_token_ids"][i, inputs["encoder_token_ids"][i] > 0])
        + tuple(targets[i, targets[i] > 0])
        for inputs, targets in batches
        for i in range(len(targets))
    )


def test_unshuffled_shards_give_the_in_memory_batches(corpus, tmp_path):
    pairs, tokenizer = corpus
    examples = _write(pairs, tokenizer, tmp_path / "shards")  # 4 chunks, the last short
    assert len(examples) == len(pairs) and examples.chunks == 4
    memory = make_seq2seq_dataset(
        pairs, tokenizer, tokenizer, BATCH, MAX_LEN, BUCKETS, shuffle=False
    )
    streamed = shard_dataset(examples, BATCH, shuffle=False)
    assert int(streamed.cardinality()) == int(memory.cardinality())
    _assert_same_batches(_arrays(memory), _arrays(streamed))


def test_shuffled_passes_cover_every_example_once_in_new_orders(corpus, tmp_path):
    pairs, tokenizer = corpus
    examples = _write(pairs, tokenizer, tmp_path / "shards")
    everything = _rows(_arrays(shard_dataset(examples, BATCH, shuffle=False)))
    dataset = shard_dataset(examples, BATCH, shuffle=True, seed=7, shuffle_buffer=300)
    first, second = _arrays(dataset), _arrays(dataset)
    assert _rows(first) == _rows(second) == everything
    order = [b[0]["encoder_token_ids"][0].tolist() for b in first]
    assert order != [b[0]["encoder_token_ids"][0].tolist() for b in second]
    again = _arrays(shard_dataset(examples, BATCH, shuffle=True, seed=7, shuffle_buffer=300))
    _assert_same_batches(first, again)  # the seed fixes the order
    for _inputs, targets in first:  # a batch is one bucket: its length is a bucket length
        assert targets.shape[1] in BUCKETS and len(targets) <= BATCH


def test_the_truncation_counts_equal_those_of_pairs_in_memory(corpus, tmp_path):
    pairs, tokenizer = corpus
    examples = _write(pairs, tokenizer, tmp_path / "shards")
    expected = count_truncated(pairs, Tokenizers(tokenizer, tokenizer), MAX_LEN)
    assert expected["source_cut"] > 0  # the check is not vacuous
    assert examples.stats["truncation"] == expected


def test_a_stopped_writer_resumes_from_its_finished_chunks(corpus, tmp_path):
    pairs, tokenizer = corpus

    def failing():
        yield from pairs[:1000]
        raise OSError("disk gone")

    directory = tmp_path / "shards"
    with pytest.raises(OSError, match="disk gone"):
        write_seq2seq_shards(failing(), directory, tokenizer, tokenizer, MAX_LEN, BUCKETS, 400, "t")
    finished = sorted(p.name for p in directory.glob("chunk-?????.json"))
    assert finished == ["chunk-00000.json", "chunk-00001.json"]
    stamps = {p.name: p.stat().st_mtime_ns for p in directory.glob("chunk-0000[01]*")}

    class Counting(Tokenizer):
        texts = 0

        def tokenize(self, texts):
            Counting.texts += len(texts)
            return super().tokenize(texts)

    counting = Counting.load(*_saved(tokenizer, tmp_path))
    examples = write_seq2seq_shards(
        iter(pairs), directory, counting, counting, MAX_LEN, BUCKETS, 400, "t"
    )
    assert Counting.texts == 2 * (len(pairs) - 800)  # only chunks 2 and 3 were tokenized
    assert {p.name: p.stat().st_mtime_ns for p in directory.glob("chunk-0000[01]*")} == stamps
    clean = _write(pairs, tokenizer, tmp_path / "clean")
    _assert_same_batches(
        _arrays(shard_dataset(clean, BATCH, shuffle=False)),
        _arrays(shard_dataset(examples, BATCH, shuffle=False)),
    )


def _saved(tokenizer, tmp_path):
    tokenizer.save(tmp_path / "tok", "t")
    return tmp_path / "tok", "t"


def test_shards_of_another_identity_are_written_anew(corpus, tmp_path):
    pairs, tokenizer = corpus
    directory = tmp_path / "shards"
    _write(pairs[:600], tokenizer, directory, identity="first")
    examples = _write(pairs, tokenizer, directory, identity="second")
    assert len(examples) == len(pairs)
    # The same identity again is the finished directory, returned as it is.
    assert len(_write(pairs[:10], tokenizer, directory, identity="second")) == len(pairs)


def test_added_columns_ride_in_each_batch_cut_to_its_length(corpus, tmp_path):
    pairs, tokenizer = corpus
    examples = _write(pairs, tokenizer, tmp_path / "shards")

    def compute(inputs):  # per position: the token id doubled, and a float of the row
        ids = inputs["decoder_token_ids"]
        return {
            "doubled": np.stack([ids * 2, ids + 1], axis=-1),
            "sums": ids.sum(axis=1).astype("float32") / 7,
        }

    added = map_shards(
        examples,
        tmp_path / "added",
        (Column("doubled", "int32", (None, 2)), Column("sums", "float32", ())),
        compute,
        batch_size=50,
        constants={"marker": 3.5},
    )
    assert len(added) == len(pairs)
    for inputs, _ in _arrays(shard_dataset(added, BATCH, shuffle=True, seed=1)):
        ids = inputs["decoder_token_ids"]
        np.testing.assert_array_equal(inputs["doubled"], np.stack([ids * 2, ids + 1], -1))
        np.testing.assert_allclose(inputs["sums"], ids.sum(axis=1) / 7, rtol=1e-6)
        np.testing.assert_array_equal(inputs["marker"], np.full(len(ids), 3.5, "float32"))


def test_the_teacher_top_k_on_disk_equals_the_one_in_memory(corpus, tmp_path):
    pairs, tokenizer = corpus
    pairs = pairs[:300]
    keras.utils.set_random_seed(2)
    teacher = build_transformer(tokenizer.vocabulary_size, MAX_LEN + 1, 1, 2, 16, 32)
    k, temperature = 4, 2.0
    cache = teacher_top_k(
        teacher, pairs, tokenizer, tokenizer, MAX_LEN, k, temperature, BUCKETS, batch_size=64
    )
    memory = make_seq2seq_dataset(
        pairs, tokenizer, tokenizer, BATCH, MAX_LEN, BUCKETS, shuffle=False, extra_columns=cache
    )
    examples = _write(pairs, tokenizer, tmp_path / "shards", chunk_pairs=120)
    on_disk = teacher_top_k_shards(
        teacher, examples, tmp_path / "top_k", k, temperature, batch_size=64
    )
    _assert_same_batches(
        _arrays(memory), _arrays(shard_dataset(on_disk, BATCH, shuffle=False)), rtol=1e-5
    )


def test_workers_read_disjoint_files_that_cover_the_corpus(corpus, tmp_path):
    pairs, tokenizer = corpus
    examples = _write(pairs, tokenizer, tmp_path / "shards", chunk_pairs=200)
    parts = [
        _rows(_arrays(shard_dataset(examples, BATCH, shuffle=True, seed=0, worker=(2, w))))
        for w in range(2)
    ]
    everything = _rows(_arrays(shard_dataset(examples, BATCH, shuffle=False)))
    assert parts[0] and parts[1]
    assert sorted(parts[0] + parts[1]) == everything


def test_a_directory_without_a_manifest_is_refused_with_the_fix(tmp_path):
    with pytest.raises(DataError, match="no complete shard directory.*--resume"):
        ShardedExamples(tmp_path)
