"""The teacher's features computed once (teacher_cache.teacher_features): aligned with
their pairs through the length buckets, and a Distiller reading them gives exactly the
loss of the live teacher, without running it."""

import keras
import numpy as np
import pytest

from tf_distill import Distiller
from tf_distill.data import (
    Tokenizer,
    generate_corpus,
    make_classification_dataset,
    make_seq2seq_dataset,
)
from tf_distill.features import model_features
from tf_distill.models import build_classifier, build_transformer
from tf_distill.teacher_cache import (
    feature_cache_bytes,
    teacher_features,
    teacher_features_of_inputs,
    teacher_top_k,
)

MAX_LEN, BUCKETS = 20, (8, 14, 21)
TERMS = {"hidden_weight": 0.5, "attention_weight": 0.3, "value_weight": 0.2}


@pytest.fixture(scope="module")
def setup():
    pairs = generate_corpus(96, seed=7)
    tokenizer = Tokenizer.train([s for p in pairs for s in p], vocabulary_size=200)
    return pairs, tokenizer


def models(vocab, seed=3):
    keras.utils.set_random_seed(seed)
    # Teacher dropout is on in training mode, off for its features (both paths).
    teacher = build_transformer(vocab, MAX_LEN + 1, 3, 4, 32, 64, dropout=0.3)
    student = build_transformer(vocab, MAX_LEN + 1, 1, 2, 16, 32, num_encoder_layers=2)
    return teacher, student


def evaluate(distiller, dataset):
    return distiller.evaluate(dataset, verbose=0, return_dict=True)


def test_names_follow_the_terms_and_the_layer_map(setup):
    pairs, tokenizer = setup
    teacher, student = models(tokenizer.vocabulary_size)
    distiller = Distiller(teacher, student, **TERMS)
    names = distiller.teacher_feature_names()
    want = [f"encoder/hidden/{g}" for g in (0, 2, 3)]
    want += [f"encoder/self_attention/{g}" for g in (2, 3)]
    want += [f"encoder/self_values/{g}" for g in (2, 3)]
    want += ["decoder/hidden/0", "decoder/hidden/3", "decoder/self_attention/3"]
    want += ["decoder/cross_attention/3", "decoder/self_values/3"]
    assert sorted(names) == sorted(f"teacher_features/{w}" for w in want)
    repeated = Distiller(teacher, student, hidden_weight=1.0, layer_map={"encoder": [3, 3]})
    assert repeated.teacher_feature_names().count("teacher_features/encoder/hidden/3") == 1
    assert Distiller(teacher, student).teacher_feature_names() == []


def test_each_row_holds_the_teachers_features_of_its_own_pair(setup):
    pairs, tokenizer = setup
    teacher, student = models(tokenizer.vocabulary_size)
    distiller = Distiller(teacher, student, **TERMS)
    cache = teacher_features(
        distiller, pairs, tokenizer, tokenizer, MAX_LEN, BUCKETS, batch_size=16
    )
    assert set(cache) == set(distiller.teacher_feature_names())
    assert sum(a.nbytes for a in cache.values()) == feature_cache_bytes(
        distiller, len(pairs), BUCKETS[-1]
    )
    # Student 2 heads, teacher 4: an attention map is kept as the mean of the heads.
    assert cache["teacher_features/encoder/self_attention/2"].shape == (len(pairs), 1, 21, 21)
    assert cache["teacher_features/decoder/hidden/3"].shape == (len(pairs), 21, 32)
    assert cache["teacher_features/encoder/self_values/3"].shape == (len(pairs), 21, 4, 8)
    single = make_seq2seq_dataset(
        pairs, tokenizer, tokenizer, batch_size=1, max_sequence_length=MAX_LEN, shuffle=False
    )
    for row, (inputs, _) in enumerate(single.take(12)):
        _, stacks = model_features(teacher, inputs, training=False)
        source = int(np.count_nonzero(inputs["encoder_token_ids"].numpy()[0]))
        target = int(np.count_nonzero(inputs["decoder_token_ids"].numpy()[0]))
        hidden = cache["teacher_features/encoder/hidden/2"][row]
        np.testing.assert_allclose(
            hidden[:source], stacks["encoder"].hidden[2].numpy()[0, :source], atol=1e-5
        )
        cross = cache["teacher_features/decoder/cross_attention/3"][row, 0]
        direct = stacks["decoder"].cross_attention[2].numpy()[0].mean(0)
        np.testing.assert_allclose(cross[:target, :source], direct[:target, :source], atol=1e-6)
        # Padding past the pair's bucket stays zero.
        assert not cross[:, source:].any()
    half = teacher_features(
        distiller, pairs[:20], tokenizer, tokenizer, MAX_LEN, BUCKETS, dtype="float16"
    )
    for name, values in half.items():
        assert values.dtype == np.float16
        np.testing.assert_allclose(values, cache[name][:20], atol=2e-3, rtol=2e-3)


def test_a_distiller_on_the_cache_gives_the_live_loss_without_the_teacher(setup):
    pairs, tokenizer = setup
    teacher, student = models(tokenizer.vocabulary_size)
    distiller = Distiller(teacher, student, alpha=0.4, temperature=2.0, **TERMS)
    distiller.compile(optimizer="sgd")
    features = teacher_features(distiller, pairs, tokenizer, tokenizer, MAX_LEN, BUCKETS)
    top_k = teacher_top_k(
        teacher, pairs, tokenizer, tokenizer, MAX_LEN, tokenizer.vocabulary_size, 2.0, BUCKETS
    )

    def dataset(columns):
        return make_seq2seq_dataset(
            pairs, tokenizer, tokenizer, 16, MAX_LEN, BUCKETS, shuffle=False, extra_columns=columns
        )

    live = evaluate(distiller, dataset(None))
    cached = evaluate(distiller, dataset(features))
    both = evaluate(distiller, dataset({**features, **top_k}))
    for key in ("loss", "hidden_loss", "attention_loss", "value_loss", "distillation_loss"):
        np.testing.assert_allclose(cached[key], live[key], rtol=1e-5)
        np.testing.assert_allclose(both[key], live[key], rtol=1e-4)
    # With both caches the teacher does not run: scrambling it changes nothing.
    teacher.set_weights([np.random.default_rng(0).normal(size=w.shape) for w in teacher.weights])
    scrambled = evaluate(distiller, dataset({**features, **top_k}))
    for key in ("loss", "hidden_loss", "attention_loss", "value_loss"):
        np.testing.assert_allclose(scrambled[key], both[key], rtol=1e-6)
    assert not np.isclose(evaluate(distiller, dataset(None))["hidden_loss"], live["hidden_loss"])


def test_training_on_the_cache_follows_the_live_teacher(setup):
    """Same start, same batches: a few steps on cached features end where the live teacher
    ends (the teacher's dropout is off in both)."""
    pairs, tokenizer = setup
    results = []
    for use_cache in (False, True):
        teacher, student = models(tokenizer.vocabulary_size)
        distiller = Distiller(teacher, student, hidden_weight=1.0, attention_weight=0.5)
        distiller.compile(optimizer=keras.optimizers.Adam(1e-3))
        columns = None
        if use_cache:
            columns = teacher_features(distiller, pairs, tokenizer, tokenizer, MAX_LEN, BUCKETS)
        train = make_seq2seq_dataset(
            pairs, tokenizer, tokenizer, 16, MAX_LEN, BUCKETS, seed=1, extra_columns=columns
        )
        history = distiller.fit(train, epochs=2, verbose=0, shuffle=False).history
        results.append((history, [w.copy() for w in student.get_weights()]))
    (live, live_weights), (cached, cached_weights) = results
    assert cached["hidden_loss"][-1] < cached["hidden_loss"][0]
    np.testing.assert_allclose(cached["loss"], live["loss"], rtol=1e-4)
    for a, b in zip(live_weights, cached_weights, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_classifier_cache_through_the_length_buckets():
    rng = np.random.default_rng(4)
    pairs = generate_corpus(64, seed=3)
    texts = [source for source, _ in pairs]
    tokenizer = Tokenizer.train(texts, vocabulary_size=150)
    labels = rng.integers(0, 3, len(texts)).tolist()
    keras.utils.set_random_seed(5)
    teacher = build_classifier(tokenizer.vocabulary_size, 3, 16, 2, 4, 32, 64)
    student = build_classifier(tokenizer.vocabulary_size, 3, 16, 1, 4, 16, 32)
    distiller = Distiller(teacher, student, **TERMS)
    distiller.compile(optimizer="sgd")
    full = make_classification_dataset(texts, labels, tokenizer, len(texts), 16, shuffle=False)
    inputs = next(iter(full))[0]
    cache = teacher_features_of_inputs(distiller, {"token_ids": inputs["token_ids"].numpy()})
    assert cache["teacher_features/encoder/self_attention/2"].shape == (len(texts), 4, 16, 16)

    def dataset(columns):
        return make_classification_dataset(
            texts, labels, tokenizer, 8, 16, (6, 10, 16), shuffle=False, extra_columns=columns
        )

    live, cached = evaluate(distiller, dataset(None)), evaluate(distiller, dataset(cache))
    for key in ("loss", "hidden_loss", "attention_loss", "value_loss"):
        np.testing.assert_allclose(cached[key], live[key], rtol=1e-5)


def test_a_cache_that_does_not_fit_the_distiller_is_refused(setup):
    pairs, tokenizer = setup
    teacher, student = models(tokenizer.vocabulary_size)
    with pytest.raises(ValueError, match="hidden, attention or value term"):
        teacher_features(Distiller(teacher, student), pairs, tokenizer, tokenizer, MAX_LEN)
    hidden_only = Distiller(teacher, student, hidden_weight=1.0)
    with pytest.raises(ValueError, match="'float32' or 'float16'"):
        teacher_features(hidden_only, pairs, tokenizer, tokenizer, MAX_LEN, dtype="int8")
    cache = teacher_features(hidden_only, pairs[:16], tokenizer, tokenizer, MAX_LEN)
    with_attention = Distiller(teacher, student, hidden_weight=1.0, attention_weight=1.0)
    with_attention.compile(optimizer="sgd")
    dataset = make_seq2seq_dataset(
        pairs[:16], tokenizer, tokenizer, 8, MAX_LEN, extra_columns=cache
    )
    with pytest.raises(ValueError, match="self_attention.*teacher_cache.teacher_features"):
        with_attention.evaluate(dataset, verbose=0)
