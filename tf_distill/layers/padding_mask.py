"""Boolean padding masks derived from token ids."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tf_distill")
class PaddingMask(keras.layers.Layer):
    """Returns `token_ids != pad_token_id` as a boolean (B, T) tensor (True = real token).

    A layer rather than a bare op so functional models that use it save and load cleanly.

    Args:
        pad_token_id: the id that marks padding (0 throughout tf_distill).
    """

    def __init__(self, pad_token_id=0, **kwargs):
        super().__init__(**kwargs)
        self.pad_token_id = pad_token_id

    def call(self, token_ids):
        return tf.not_equal(tf.cast(token_ids, tf.int32), self.pad_token_id)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_output_spec(self, token_ids):
        return keras.KerasTensor(token_ids.shape, dtype="bool")

    def get_config(self):
        config = super().get_config()
        config.update({"pad_token_id": self.pad_token_id})
        return config
