"""Pooling of a sequence into one vector, ignoring padding."""

import keras
import tensorflow as tf

from tf_distill.layers.validation import check_choice


@keras.saving.register_keras_serializable(package="tf_distill")
class SequencePooling(keras.layers.Layer):
    """Pools (B, T, D) into (B, D): the mean over real tokens, or the first token.

    Args:
        pooling: `"mean"` (mean over positions where the padding mask is True) or
            `"first"` (the vector at position 0).

    Call arguments:
        inputs: (B, T, D) tensor.
        padding_mask: (B, T) boolean, True for real tokens (needed for `"mean"`).

    Returns:
        (B, D) tensor. A row with no real token pools to zeros.
    """

    def __init__(self, pooling="mean", **kwargs):
        super().__init__(**kwargs)
        check_choice(pooling, ("mean", "first"), "pooling")
        self.pooling = pooling

    def call(self, inputs, padding_mask=None):
        if self.pooling == "first":
            return inputs[:, 0]
        if padding_mask is None:
            return tf.reduce_mean(inputs, axis=1)
        weights = tf.expand_dims(tf.cast(padding_mask, inputs.dtype), -1)  # (B, T, 1)
        total = tf.reduce_sum(inputs * weights, axis=1)  # (B, D)
        count = tf.maximum(tf.reduce_sum(weights, axis=1), tf.cast(1.0, inputs.dtype))
        return total / count

    def compute_output_shape(self, inputs_shape, padding_mask_shape=None):
        return (inputs_shape[0], inputs_shape[-1])  # (B, D)

    def get_config(self):
        config = super().get_config()
        config.update({"pooling": self.pooling})
        return config
