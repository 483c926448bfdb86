import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_distill import losses


def log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def numpy_reference(y, zs, zt, alpha, temperature, pad=0):
    """The distillation objective (CE + T^2 KL over real tokens) in plain float64 NumPy."""
    zs, zt = zs.astype("float64"), zt.astype("float64")
    real = y != pad
    ls = log_softmax(zs)
    ce = -np.take_along_axis(ls, y[..., None], -1)[..., 0]
    lt, lst = log_softmax(zt / temperature), log_softmax(zs / temperature)
    kd = temperature**2 * (np.exp(lt) * (lt - lst)).sum(-1)
    ce_mean, kd_mean = ce[real].mean(), kd[real].mean()
    return alpha * ce_mean + (1 - alpha) * kd_mean, ce_mean, kd_mean


@pytest.mark.parametrize("length", [1, 4, 9])
@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_loss_matches_numpy_with_padding(length, alpha, temperature):
    rng = np.random.default_rng(length)
    batch, vocab = 3, 11
    y = rng.integers(1, vocab, size=(batch, length))
    y[0, max(1, length // 2) :] = 0  # padding in one row
    zs = rng.normal(size=(batch, length, vocab)).astype("float32") * 3
    zt = rng.normal(size=(batch, length, vocab)).astype("float32") * 3
    got = losses.distillation_loss(y, tf.constant(zs), tf.constant(zt), alpha, temperature)
    want = numpy_reference(y, zs, zt, alpha, temperature)
    np.testing.assert_allclose([float(v) for v in got], want, rtol=1e-5, atol=1e-6)


def test_pad_logits_do_not_matter():
    rng = np.random.default_rng(0)
    y = np.array([[3, 4, 0, 0]])
    zs = rng.normal(size=(1, 4, 6)).astype("float32")
    zt = rng.normal(size=(1, 4, 6)).astype("float32")
    base = losses.distillation_loss(y, zs, zt, 0.5, 2.0)
    zs[:, 2:] = 1e4 * rng.normal(size=(1, 2, 6))
    np.testing.assert_allclose(losses.distillation_loss(y, zs, zt, 0.5, 2.0), base, rtol=1e-6)


def test_worked_example_from_the_article():
    """Teacher q = [0.1, 0.9], student p = [0.2, 0.8], true label 1, T = 1."""
    teacher = np.log(np.array([[0.1, 0.9]], "float32"))
    student = np.log(np.array([[0.2, 0.8]], "float32"))
    loss, ce, kd = losses.distillation_loss(np.array([1]), student, teacher, 0.5, 1.0)
    expected_ce = -np.log(0.8)  # 0.22314
    expected_kd = 0.1 * np.log(0.1 / 0.2) + 0.9 * np.log(0.9 / 0.8)  # 0.03669
    np.testing.assert_allclose(float(ce), expected_ce, rtol=1e-6)
    np.testing.assert_allclose(float(kd), expected_kd, rtol=1e-5)
    np.testing.assert_allclose(float(loss), 0.5 * (expected_ce + expected_kd), rtol=1e-5)
    assert abs(float(ce) - 0.2231) < 1e-4 and abs(float(kd) - 0.0367) < 1e-4


@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_class_logits_kl_equals_keras_logits_distillation(temperature):
    rng = np.random.default_rng(1)
    zt = rng.normal(size=(16, 5)).astype("float32")
    zs = rng.normal(size=(16, 5)).astype("float32")
    theirs = keras.distillation.LogitsDistillation(
        temperature=temperature, loss=keras.losses.KLDivergence()
    ).compute_loss(zt, zs)
    ours = losses.masked_mean(losses.kl_per_token(zt, zs, temperature), tf.ones((16,)))
    np.testing.assert_allclose(float(ours), float(theirs), rtol=1e-4)


def test_kl_is_zero_for_identical_logits_and_positive_otherwise():
    z = np.random.default_rng(2).normal(size=(2, 3, 7)).astype("float32")
    np.testing.assert_allclose(losses.kl_per_token(z, z, 2.0), 0.0, atol=1e-6)
    assert float(tf.reduce_min(losses.kl_per_token(z, z[::-1], 2.0))) > 0


def plain_terms(y, zs, zt, temperature):
    """The textbook per-token CE and T^2 KL, left to TensorFlow's autodiff."""
    return losses.cross_entropy_per_token(y, zs), losses.kl_per_token(zt, zs, temperature)


@pytest.mark.parametrize("jit, xla", [(False, False), (False, True), (True, True)])
@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.5])
@pytest.mark.parametrize("shape", [(3, 5, 13), (6, 9)])
def test_token_terms_and_gradient_match_autodiff_of_the_textbook_form(shape, temperature, jit, xla):
    rng = np.random.default_rng(int(temperature * 10) + len(shape))
    y = rng.integers(1, shape[-1], size=shape[:-1]).astype("int32")
    if len(shape) == 3:
        y[0, 2:] = 0  # padding
    zs = tf.constant(rng.normal(size=shape).astype("float32") * 3)
    zt = tf.constant(rng.normal(size=shape).astype("float32") * 3)
    weights = tf.constant(rng.uniform(0.5, 2.0, size=(2,) + shape[:-1]).astype("float32"))

    def value_and_grad(terms_fn):
        def run(zs):
            with tf.GradientTape() as tape:
                tape.watch(zs)
                ce, kd = terms_fn(zs)[:2]
                objective = tf.reduce_sum(weights[0] * ce) + tf.reduce_sum(weights[1] * kd)
            return ce, kd, tape.gradient(objective, zs)

        return tf.function(run, jit_compile=jit)(zs)

    got = value_and_grad(lambda z: losses.token_terms(y, z, zt, temperature, xla=xla))
    want = value_and_grad(lambda z: plain_terms(y, z, zt, temperature))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-4, atol=1e-5)
    # And the values against float64 NumPy.
    ls = log_softmax(zs.numpy().astype("float64"))
    np.testing.assert_allclose(
        got[0], -np.take_along_axis(ls, y[..., None], -1)[..., 0], rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("xla", [False, True])
def test_token_terms_without_teacher_and_correctness(xla):
    rng = np.random.default_rng(4)
    zs = rng.normal(size=(4, 6, 9)).astype("float32")
    y = rng.integers(0, 9, size=(4, 6)).astype("int32")
    y[:, 0] = zs[:, 0].argmax(-1)  # some certainly right
    ce, kd, correct = losses.token_terms(y, zs, xla=xla)
    np.testing.assert_array_equal(kd, 0.0)
    np.testing.assert_array_equal(correct, (zs.argmax(-1) == y).astype("float32"))
    assert 0 < float(tf.reduce_mean(correct)) < 1
    with tf.GradientTape() as tape:
        z = tf.constant(zs)
        tape.watch(z)
        total = tf.reduce_sum(losses.token_terms(y, z, xla=xla)[0])
    p = np.exp(log_softmax(zs.astype("float64")))
    np.testing.assert_allclose(tape.gradient(total, z), p - np.eye(9)[y], rtol=1e-4, atol=1e-6)


def dense_top_k_teacher(ids, log_probs, vocab):
    """The teacher distribution a top-k cache stands for: its k probabilities, and the mass
    they leave spread evenly over the other tokens (float64 NumPy)."""
    p = np.exp(log_probs.astype("float64"))
    rest = 1.0 - p.sum(-1, keepdims=True)
    dense = np.repeat(rest / (vocab - ids.shape[-1]), vocab, axis=-1)
    np.put_along_axis(dense, ids, p, -1)
    return dense


@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_top_k_kl_with_every_token_equals_the_full_kl(temperature):
    rng = np.random.default_rng(7)
    zs = tf.constant(rng.normal(size=(2, 5, 9)).astype("float32") * 2)
    zt = rng.normal(size=(2, 5, 9)).astype("float32") * 2
    order = np.argsort(-zt, axis=-1)  # all 9, most likely first, as tf.math.top_k gives them
    top = np.take_along_axis(log_softmax(zt / temperature), order, -1)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(zs)
        got = losses.top_k_kl_per_token(order, top, zs, temperature)
        want = losses.kl_per_token(zt, zs, temperature)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tape.gradient(got, zs), tape.gradient(want, zs), atol=1e-6)


@pytest.mark.parametrize("k", [1, 3, 9])  # of 10
def test_top_k_kl_matches_numpy_with_the_tail_spread_evenly(k):
    rng = np.random.default_rng(8)
    temperature, vocab = 2.0, 10
    zs = rng.normal(size=(2, 4, vocab)).astype("float32") * 2
    zt = rng.normal(size=(2, 4, vocab)).astype("float32") * 3
    teacher = log_softmax(zt.astype("float64") / temperature)
    ids = np.argsort(-zt, axis=-1)[..., :k]
    top = np.take_along_axis(teacher, ids, -1).astype("float32")
    zs_t = tf.constant(zs)
    with tf.GradientTape() as tape:
        tape.watch(zs_t)
        got = losses.top_k_kl_per_token(ids, top, zs_t, temperature)
        total = tf.reduce_sum(got)
    p = dense_top_k_teacher(ids, top, vocab)
    q = log_softmax(zs.astype("float64") / temperature)
    want = temperature**2 * (p * (np.log(p) - q)).sum(-1)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tape.gradient(total, zs_t), temperature * (np.exp(q) - p), atol=1e-6)
    if k == vocab - 1:  # a tail of one token holds exactly what the top k leave
        np.testing.assert_allclose(got, losses.kl_per_token(zt, zs, temperature), rtol=1e-5)


@pytest.mark.parametrize("jit, xla", [(False, False), (True, True)])
@pytest.mark.parametrize("eps", [0.1, 0.3])
def test_label_smoothing_matches_keras_and_autodiff(eps, jit, xla):
    rng = np.random.default_rng(7)
    zs = tf.constant(rng.normal(size=(3, 4, 11)).astype("float32") * 2)
    zt = tf.constant(rng.normal(size=(3, 4, 11)).astype("float32"))
    y = rng.integers(1, 11, size=(3, 4)).astype("int32")
    weights = tf.constant(rng.uniform(0.5, 2.0, size=(3, 4)).astype("float32"))

    def run(terms_fn):
        def inner(zs):
            with tf.GradientTape() as tape:
                tape.watch(zs)
                ce, kd = terms_fn(zs)
                objective = tf.reduce_sum(weights * ce) + tf.reduce_sum(kd)
            return ce, kd, tape.gradient(objective, zs)

        return tf.function(inner, jit_compile=jit)(zs)

    keras_ce = keras.losses.CategoricalCrossentropy(
        from_logits=True, label_smoothing=eps, reduction=None
    )
    got = run(lambda z: losses.token_terms(y, z, zt, 2.0, xla=xla, label_smoothing=eps)[:2])
    want = run(lambda z: (keras_ce(tf.one_hot(y, 11), z), losses.kl_per_token(zt, z, 2.0)))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="label_smoothing"):
        losses.token_terms(y, zs, label_smoothing=1.0)
