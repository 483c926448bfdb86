"""`tf_distill.layers.Dropout`: Keras' dropout semantics, with Philox masks."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_distill.layers import Dropout


@pytest.mark.parametrize("jit", [False, True])
def test_drops_the_rate_and_rescales_the_rest(jit):
    layer = Dropout(0.25, seed=1)
    x = tf.ones((200, 50, 100))
    out = tf.function(lambda t: layer(t, training=True), jit_compile=jit)(x).numpy()
    dropped = np.mean(out == 0)
    assert abs(dropped - 0.25) < 0.005  # 1M draws: the standard error is 0.0004
    np.testing.assert_allclose(out[out != 0], 1 / 0.75, rtol=1e-6)
    assert abs(out.mean() - 1.0) < 0.01  # the expectation is kept


def test_inference_is_the_identity_and_masks_change_each_call():
    layer = Dropout(0.5, seed=3)
    x = tf.random.normal((8, 16))
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x.numpy())
    np.testing.assert_array_equal(layer(x).numpy(), x.numpy())
    first, second = layer(x, training=True).numpy(), layer(x, training=True).numpy()
    assert not np.array_equal(first == 0, second == 0)


def test_same_seed_same_masks_and_config_round_trip():
    a, b = Dropout(0.3, seed=7), Dropout(0.3, seed=7)
    x = tf.ones((64, 64))
    np.testing.assert_array_equal(a(x, training=True).numpy(), b(x, training=True).numpy())
    clone = Dropout.from_config(a.get_config())
    assert clone.rate == 0.3 and clone.seed == 7
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(a))
    assert type(revived) is Dropout


def test_float16_inputs_and_gradient():
    layer = Dropout(0.5, seed=2, dtype="mixed_float16")
    x = tf.ones((32, 32), tf.float16)
    out = layer(x, training=True)
    assert out.dtype == tf.float16
    assert set(np.unique(out.numpy()).tolist()) <= {0.0, 2.0}
    v = tf.Variable(tf.ones((32, 32)))
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(Dropout(0.5, seed=2)(v, training=True))
    grad = tape.gradient(total, v).numpy()
    # The gradient is the mask scaled like the output: 0 where dropped, 2 where kept.
    assert set(np.unique(grad).tolist()) == {0.0, 2.0}


def test_noise_shape_and_edge_rates_follow_keras():
    x = tf.ones((4, 10, 6))
    out = Dropout(0.5, noise_shape=(4, 1, 6), seed=0)(x, training=True).numpy()
    # One draw per (batch, feature), shared along the time axis.
    np.testing.assert_array_equal(out, np.broadcast_to(out[:, :1], out.shape))
    np.testing.assert_array_equal(Dropout(0.0)(x, training=True).numpy(), x.numpy())
    np.testing.assert_array_equal(Dropout(1.0)(x, training=True).numpy(), np.zeros_like(x))
