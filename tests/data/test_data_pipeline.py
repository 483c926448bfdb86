"""tf.data pipelines: shapes, dtypes, teacher-forcing layout, fixed bucket lengths."""

import collections

import numpy as np
import pytest

from tf_distill.data import (
    DataError,
    Tokenizer,
    generate_corpus,
    make_classification_dataset,
    make_seq2seq_dataset,
)

BUCKETS = (8, 16, 32)


@pytest.fixture(scope="module")
def pairs():
    return generate_corpus(600, seed=4)


@pytest.fixture(scope="module")
def tokenizers(pairs):
    source = Tokenizer.train([en for en, _ in pairs], vocabulary_size=300)
    target = Tokenizer.train([fr for _, fr in pairs], vocabulary_size=400)
    return source, target


def batches(dataset):
    return [
        ({k: v.numpy() for k, v in inputs.items()}, targets.numpy()) for inputs, targets in dataset
    ]


def test_shapes_dtypes_and_buckets(pairs, tokenizers):
    dataset = make_seq2seq_dataset(
        pairs, *tokenizers, batch_size=32, max_sequence_length=32, bucket_lengths=BUCKETS
    )
    seen = batches(dataset)
    assert sum(len(targets) for _, targets in seen) == len(pairs)
    lengths = collections.Counter()
    for inputs, targets in seen:
        assert set(inputs) == {"encoder_token_ids", "decoder_token_ids"}
        encoder, decoder = inputs["encoder_token_ids"], inputs["decoder_token_ids"]
        assert encoder.dtype == decoder.dtype == targets.dtype == np.int32
        assert encoder.shape == decoder.shape == targets.shape
        assert encoder.shape[0] <= 32 and encoder.shape[1] in BUCKETS
        lengths[encoder.shape[1]] += 1
        # The longer side of some row fills more than the next smaller bucket.
        real = np.maximum((encoder != 0).sum(1), (decoder != 0).sum(1))
        smaller = max([b for b in BUCKETS if b < encoder.shape[1]], default=0)
        assert real.max() > smaller
    assert len(lengths) >= 2  # short and long sentences land in different buckets
    # `fit` gets the true step count up front (no "input ran out of data" warning).
    assert int(dataset.cardinality()) == len(seen)
    shuffled = make_seq2seq_dataset(
        pairs,
        *tokenizers,
        batch_size=32,
        max_sequence_length=32,
        bucket_lengths=BUCKETS,
        shuffle=True,
        seed=1,
    )
    assert int(shuffled.cardinality()) == len(batches(shuffled)) == len(seen)


def test_teacher_forcing_layout(pairs, tokenizers):
    source_tokenizer, target_tokenizer = tokenizers
    dataset = make_seq2seq_dataset(
        pairs[:50], *tokenizers, batch_size=50, max_sequence_length=100, shuffle=False
    )
    ((inputs, targets),) = batches(dataset)
    decoder = inputs["decoder_token_ids"]
    assert decoder.shape == (50, 100)  # one bucket: max_sequence_length
    assert not targets[:, -1].any()  # nothing was cut
    assert (decoder[:, 0] == target_tokenizer.start_id).all()
    for row in range(50):
        n = int((targets[row] != 0).sum())
        assert targets[row, n - 1] == target_tokenizer.end_id
        np.testing.assert_array_equal(decoder[row, 1:n], targets[row, : n - 1])
        assert not targets[row, n:].any() and not decoder[row, n:].any()
    assert target_tokenizer.detokenize(targets) == [fr for _, fr in pairs[:50]]
    assert source_tokenizer.detokenize(inputs["encoder_token_ids"]) == [en for en, _ in pairs[:50]]


def test_truncation(pairs, tokenizers):
    dataset = make_seq2seq_dataset(
        pairs,
        *tokenizers,
        batch_size=64,
        max_sequence_length=6,
        bucket_lengths=(4, 6),
        shuffle=False,
    )
    for inputs, targets in batches(dataset):
        assert targets.shape[1] in (4, 6)
        for array in (inputs["encoder_token_ids"], inputs["decoder_token_ids"], targets):
            assert (array != 0).sum(1).max() <= 6
    # Rows cut short have no [END]: the target is the first 6 tokens.
    _, targets = batches(dataset)[-1]
    assert (targets[:, -1] != tokenizers[1].end_id).any()


def test_last_bucket_may_exceed_max_sequence_length(pairs, tokenizers):
    dataset = make_seq2seq_dataset(
        pairs, *tokenizers, batch_size=64, max_sequence_length=24, bucket_lengths=(12, 25)
    )
    for inputs, targets in batches(dataset):
        assert targets.shape[1] in (12, 25)
        for array in (inputs["encoder_token_ids"], inputs["decoder_token_ids"], targets):
            assert not array[:, 24:].any()


def test_shuffle_is_seeded_and_repeat_goes_on(pairs, tokenizers):
    def first_targets(seed):
        dataset = make_seq2seq_dataset(
            pairs,
            *tokenizers,
            batch_size=16,
            max_sequence_length=32,
            bucket_lengths=BUCKETS,
            seed=seed,
        )
        return next(iter(dataset))[1].numpy()

    np.testing.assert_array_equal(first_targets(1), first_targets(1))
    assert not np.array_equal(first_targets(1), first_targets(2))
    dataset = make_seq2seq_dataset(
        pairs[:40],
        *tokenizers,
        batch_size=16,
        max_sequence_length=32,
        repeat=True,
        drop_remainder=True,
    )
    shapes = {tuple(targets.shape) for _, targets in dataset.take(10)}
    assert shapes == {(16, 32)}


def test_classification_dataset(tokenizers):
    texts = [en for en, _ in generate_corpus(100, seed=5)]
    labels = [len(text) % 3 for text in texts]
    dataset = make_classification_dataset(
        texts, labels, tokenizers[0], batch_size=16, max_sequence_length=16, bucket_lengths=(8, 16)
    )
    seen = batches(dataset)
    got = []
    for inputs, batch_labels in seen:
        assert set(inputs) == {"token_ids"}
        assert inputs["token_ids"].dtype == batch_labels.dtype == np.int32
        assert inputs["token_ids"].shape[1] in (8, 16) and batch_labels.ndim == 1
        got.extend(batch_labels.tolist())
    assert collections.Counter(got) == collections.Counter(labels)


def test_errors(pairs, tokenizers):
    with pytest.raises(ValueError, match="at least `max_sequence_length`"):
        make_seq2seq_dataset(
            pairs, *tokenizers, batch_size=8, max_sequence_length=32, bucket_lengths=(8, 16)
        )
    with pytest.raises(ValueError, match="strictly increasing"):
        make_seq2seq_dataset(
            pairs, *tokenizers, batch_size=8, max_sequence_length=16, bucket_lengths=(16, 8)
        )
    with pytest.raises(ValueError, match="batch_size"):
        make_seq2seq_dataset(pairs, *tokenizers, batch_size=0, max_sequence_length=16)
    with pytest.raises(DataError, match="No full batch of 64"):
        make_seq2seq_dataset(
            pairs[:5], *tokenizers, batch_size=64, max_sequence_length=16, drop_remainder=True
        )
    with pytest.raises(DataError, match="no pairs"):
        make_seq2seq_dataset([], *tokenizers, batch_size=8, max_sequence_length=16)
    with pytest.raises(DataError, match="same length"):
        make_classification_dataset(["a", "b"], [0], tokenizers[0], 8, 16)


def test_extra_columns_follow_their_pairs_through_shuffle_and_buckets(pairs, tokenizers):
    plain = make_seq2seq_dataset(
        pairs, *tokenizers, batch_size=40, max_sequence_length=32, shuffle=False
    )  # one bucket, unshuffled: the pairs' own order
    # Per pair: its index, and a per-position column that repeats its target ids, so each
    # batch can be checked against the pair it claims to come from.
    (_, reference), *_ = batches(plain.unbatch().batch(len(pairs)))
    positions = np.zeros((len(pairs), 32, 2), "int32")
    positions[..., 0] = reference
    positions[..., 1] = np.arange(len(pairs))[:, None]
    extra = {"row": np.arange(len(pairs)), "per_position": positions}
    dataset = make_seq2seq_dataset(
        pairs,
        *tokenizers,
        batch_size=40,
        max_sequence_length=32,
        bucket_lengths=BUCKETS,
        shuffle=True,
        seed=3,
        extra_columns=extra,
    )
    seen = []
    for inputs, targets in batches(dataset):
        length = targets.shape[1]
        assert inputs["per_position"].shape == (len(targets), length, 2)
        np.testing.assert_array_equal(inputs["per_position"][..., 0], targets)
        rows = np.broadcast_to(inputs["row"][:, None], targets.shape)
        np.testing.assert_array_equal(inputs["per_position"][..., 1], rows)
        np.testing.assert_array_equal(reference[inputs["row"], :length], targets)
        seen.extend(inputs["row"].tolist())
    assert sorted(seen) == list(range(len(pairs)))
    assert seen != sorted(seen)  # shuffled
    with pytest.raises(ValueError, match=r"extra_columns\['short'\]"):
        make_seq2seq_dataset(
            pairs, *tokenizers, 40, 32, extra_columns={"short": np.zeros((len(pairs), 10, 2))}
        )
    with pytest.raises(ValueError, match=r"one row per pair"):
        make_seq2seq_dataset(pairs, *tokenizers, 40, 32, extra_columns={"row": np.arange(3)})


def test_extra_columns_are_cut_along_their_own_position_axes(pairs, tokenizers):
    """A (N, heads, L, L) map is cut on both length axes; explicit axes override; a
    classification column without positions (e.g. C class scores) is kept whole."""
    n = len(pairs)
    maps = np.arange(n * 32 * 32, dtype="float32").reshape(n, 1, 32, 32)
    extra = {
        "teacher_features/encoder/self_attention/1": maps,
        "custom": np.transpose(maps, (0, 2, 3, 1)),  # (N, L, L, 1)
    }
    dataset = make_seq2seq_dataset(
        pairs,
        *tokenizers,
        batch_size=40,
        max_sequence_length=32,
        bucket_lengths=BUCKETS,
        shuffle=False,
        extra_columns={**extra, "row": np.arange(n)},
        extra_length_axes={"custom": (1, 2)},
    )
    lengths = set()
    for inputs, targets in batches(dataset):
        length = targets.shape[1]
        lengths.add(length)
        want = maps[inputs["row"], :, :length, :length]
        np.testing.assert_array_equal(inputs["teacher_features/encoder/self_attention/1"], want)
        np.testing.assert_array_equal(inputs["custom"], np.transpose(want, (0, 2, 3, 1)))
    assert lengths == set(BUCKETS)
    with pytest.raises(ValueError, match=r"extra_length_axes\['custom'\] must name axes"):
        make_seq2seq_dataset(
            pairs, *tokenizers, 40, 32, extra_columns=extra, extra_length_axes={"custom": (4,)}
        )
    texts = [en for en, _ in pairs[:50]]
    scores = np.random.default_rng(0).normal(size=(50, 40)).astype("float32")  # 40 classes
    dataset = make_classification_dataset(
        texts,
        [0] * 50,
        tokenizers[0],
        10,
        32,
        BUCKETS,
        shuffle=False,
        extra_columns={"scores": scores, "row": np.arange(50)},
    )
    for inputs, _ in batches(dataset):
        assert inputs["token_ids"].shape[1] in BUCKETS
        np.testing.assert_array_equal(inputs["scores"], scores[inputs["row"]])
