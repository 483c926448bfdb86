"""Dropout whose random bits stay cheap under XLA."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tf_distill")
class Dropout(keras.layers.Dropout):
    """`keras.layers.Dropout` that draws its mask with the Philox generator.

    Keras' TensorFlow backend draws dropout masks with `tf.nn.experimental.stateless_dropout`,
    whose generator is `auto_select`. Compiled by XLA on a CPU that costs about 280 ms per
    million elements on this project's 2-core machine, against about 5 ms for an explicit
    `alg="philox"` (which runs without XLA too; `threefry` does not). A Transformer drops
    out several activations of every layer, so with `jit_compile=True` the default masks
    dominated the training step (docs/BENCHMARKS.md, "Training throughput").

    Same arguments, seeding (a `SeedGenerator` per layer), scaling (kept values are
    divided by `1 - rate`) and config as `keras.layers.Dropout`; `noise_shape` is supported
    through Keras' own implementation.
    """

    def call(self, inputs, training=False):
        if not training or not 0 < self.rate < 1 or self.noise_shape is not None:
            return super().call(inputs, training=training)
        seed = self.seed_generator.next()
        if seed.dtype not in (tf.int32, tf.int64):
            seed = tf.cast(seed, tf.int64)
        uniform = tf.random.stateless_uniform(tf.shape(inputs), seed, alg="philox")
        keep = tf.cast(uniform >= self.rate, inputs.dtype)
        return inputs * keep * tf.cast(1.0 / (1.0 - self.rate), inputs.dtype)
