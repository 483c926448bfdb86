"""The position-wise feed-forward block of a Transformer layer."""

import keras

from tf_distill.layers.validation import (
    check_dropout,
    check_positive,
    clone_initializer,
    serialize_initializer,
)


@keras.saving.register_keras_serializable(package="tf_distill")
class FeedForward(keras.layers.Layer):
    """Dense(intermediate_dim, activation) -> dropout -> Dense(hidden_dim), per position.

    The residual connection and normalization live in the layer that owns the block
    (`EncoderLayer`, `DecoderLayer`), so every block follows one residual idiom.

    Args:
        hidden_dim: input and output width D.
        intermediate_dim: inner width.
        activation: inner activation (default `"gelu"`).
        dropout: dropout rate after the activation.
        kernel_initializer: initializer of both kernels.
        bias_initializer: initializer of both biases.
        seed: seed of the dropout (None: unseeded).
        **kwargs: base layer arguments.

    Call arguments:
        inputs: (B, T, D) tensor.
        training: whether dropout is active.

    Returns:
        (B, T, D) tensor.
    """

    def __init__(
        self,
        hidden_dim,
        intermediate_dim,
        activation="gelu",
        dropout=0.0,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive(hidden_dim=hidden_dim, intermediate_dim=intermediate_dim)
        check_dropout(dropout)
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.activation = keras.activations.get(activation)
        self.dropout = dropout
        self.kernel_initializer = kernel_initializer  # resolved by each sublayer
        self.bias_initializer = bias_initializer
        self.seed = seed
        self.inner_dense = keras.layers.Dense(
            intermediate_dim,
            activation=self.activation,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name="inner",
        )
        self.dropout_layer = keras.layers.Dropout(
            dropout, seed=seed, dtype=self.dtype_policy, name="activation_dropout"
        )
        self.output_dense = keras.layers.Dense(
            hidden_dim,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name="output",
        )

    def build(self, inputs_shape):
        self.inner_dense.build(inputs_shape)
        self.output_dense.build(tuple(inputs_shape[:-1]) + (self.intermediate_dim,))
        self.built = True

    def call(self, inputs, training=None):
        x = self.inner_dense(inputs)
        x = self.dropout_layer(x, training=training)
        return self.output_dense(x)

    def compute_output_shape(self, inputs_shape):
        return tuple(inputs_shape[:-1]) + (self.hidden_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim,
                "activation": keras.activations.serialize(self.activation),
                "dropout": self.dropout,
                "kernel_initializer": serialize_initializer(self.kernel_initializer),
                "bias_initializer": serialize_initializer(self.bias_initializer),
                "seed": self.seed,
            }
        )
        return config
