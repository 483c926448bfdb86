"""The teacher's top-k tokens computed once: aligned with their pairs, equal to a direct call."""

import keras
import numpy as np
import pytest

from tests.test_losses import log_softmax
from tf_distill import Distiller
from tf_distill.data import Tokenizer, generate_corpus, make_seq2seq_dataset
from tf_distill.distiller import TEACHER_TOP_IDS, TEACHER_TOP_LOG_PROBS
from tf_distill.models import build_transformer
from tf_distill.teacher_cache import teacher_top_k

MAX_LEN, BUCKETS = 20, (8, 14, 21)


@pytest.fixture(scope="module")
def setup():
    pairs = generate_corpus(120, seed=5)
    tokenizer = Tokenizer.train([s for p in pairs for s in p], vocabulary_size=200)
    keras.utils.set_random_seed(1)
    vocab = tokenizer.vocabulary_size
    teacher = build_transformer(vocab, MAX_LEN + 1, 1, 2, 16, 32, dropout=0.3)
    return pairs, tokenizer, teacher


def test_top_k_equals_the_teacher_on_each_pair_alone(setup):
    pairs, tokenizer, teacher = setup
    k, temperature = 5, 2.0
    cache = teacher_top_k(
        teacher, pairs, tokenizer, tokenizer, MAX_LEN, k, temperature, BUCKETS, batch_size=16
    )
    ids, logits = cache[TEACHER_TOP_IDS], cache[TEACHER_TOP_LOG_PROBS]
    assert ids.shape == logits.shape == (len(pairs), BUCKETS[-1], k)
    # One pair per batch, in order, at the full length: the direct reference.
    single = make_seq2seq_dataset(
        pairs, tokenizer, tokenizer, batch_size=1, max_sequence_length=MAX_LEN, shuffle=False
    )
    for row, (inputs, targets) in enumerate(single.take(25)):
        direct = teacher(inputs, training=False).numpy()[0].astype("float64")  # no dropout
        direct = log_softmax(direct / temperature)
        real = int(np.count_nonzero(targets.numpy()[0]))
        order = np.argsort(-direct[:real], axis=-1)[:, :k]
        np.testing.assert_array_equal(ids[row, :real], order)
        np.testing.assert_allclose(
            logits[row, :real], np.take_along_axis(direct[:real], order, -1), atol=1e-4
        )
        assert np.all(np.diff(logits[row, :real], axis=-1) <= 0)  # largest first


def test_k_above_the_vocabulary_keeps_all_and_bad_arguments_are_refused(setup):
    pairs, tokenizer, teacher = setup
    cache = teacher_top_k(teacher, pairs[:10], tokenizer, tokenizer, MAX_LEN, 10**6)
    assert cache[TEACHER_TOP_IDS].shape == (10, MAX_LEN, tokenizer.vocabulary_size)
    for k in (0, 2.5, True):
        with pytest.raises(ValueError, match="`k` must be an integer >= 1"):
            teacher_top_k(teacher, pairs, tokenizer, tokenizer, MAX_LEN, k)
    with pytest.raises(ValueError, match="`temperature` must be positive"):
        teacher_top_k(teacher, pairs, tokenizer, tokenizer, MAX_LEN, 4, temperature=0)


def test_distiller_fits_on_a_dataset_with_the_cache(setup):
    pairs, tokenizer, teacher = setup
    cache = teacher_top_k(teacher, pairs, tokenizer, tokenizer, MAX_LEN, 4, 2.0, BUCKETS)
    dataset = make_seq2seq_dataset(
        pairs, tokenizer, tokenizer, 16, MAX_LEN, BUCKETS, shuffle=True, extra_columns=cache
    )
    student = build_transformer(tokenizer.vocabulary_size, MAX_LEN + 1, 1, 2, 8, 16)
    distiller = Distiller(teacher, student, alpha=0.5, temperature=2.0)
    distiller.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = distiller.fit(dataset, epochs=3, verbose=0, shuffle=False)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert all(v > 0 for v in history.history["distillation_loss"])


def test_ensemble_cache_is_the_top_k_of_the_mean_probability(setup):
    pairs, tokenizer, teacher = setup
    keras.utils.set_random_seed(2)
    other = build_transformer(tokenizer.vocabulary_size, MAX_LEN + 1, 1, 2, 16, 32)
    k, temperature = 4, 2.0
    cache = teacher_top_k(
        [teacher, other], pairs[:12], tokenizer, tokenizer, MAX_LEN, k, temperature, BUCKETS
    )
    single = make_seq2seq_dataset(
        pairs[:12], tokenizer, tokenizer, batch_size=1, max_sequence_length=MAX_LEN, shuffle=False
    )
    for row, (inputs, targets) in enumerate(single):
        probs = [
            np.exp(
                log_softmax(m(inputs, training=False).numpy()[0].astype("float64") / temperature)
            )
            for m in (teacher, other)
        ]
        mean = np.log(np.mean(probs, axis=0))
        real = int(np.count_nonzero(targets.numpy()[0]))
        order = np.argsort(-mean[:real], axis=-1)[:, :k]
        np.testing.assert_array_equal(cache[TEACHER_TOP_IDS][row, :real], order)
        np.testing.assert_allclose(
            cache[TEACHER_TOP_LOG_PROBS][row, :real],
            np.take_along_axis(mean[:real], order, -1),
            atol=1e-4,
        )


def test_a_cache_made_at_another_temperature_is_refused(setup):
    """The cache records its temperature; a Distiller at another T stops with the fix
    instead of learning from a distribution it did not ask for."""
    import tensorflow as tf

    pairs, tokenizer, teacher = setup
    cache = teacher_top_k(teacher, pairs[:32], tokenizer, tokenizer, MAX_LEN, 4, 1.0, BUCKETS)
    assert np.all(cache["teacher_temperature"] == 1.0)
    dataset = make_seq2seq_dataset(
        pairs[:32], tokenizer, tokenizer, 16, MAX_LEN, BUCKETS, extra_columns=cache
    )
    student = build_transformer(tokenizer.vocabulary_size, MAX_LEN + 1, 1, 2, 8, 16)
    wrong = Distiller(teacher, student, temperature=2.0)
    wrong.compile(optimizer="sgd")
    with pytest.raises(tf.errors.InvalidArgumentError, match="another temperature than this"):
        wrong.fit(dataset, epochs=1, verbose=0)
    right = Distiller(teacher, student, temperature=1.0)
    right.compile(optimizer="sgd")
    right.fit(dataset, epochs=1, verbose=0)
