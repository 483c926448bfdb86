"""Encoder and decoder layers of the Transformer (Vaswani et al., 2017).

Each block (self-attention, cross-attention, feed-forward) is wrapped the same way:
residual connection plus LayerNorm, with the norm before the block (`normalize_first=True`,
"pre-norm", steadier to train for small models) or after the residual sum ("post-norm",
the original paper).

Legend: B batch, T target length, S source length, N heads, H head size, D model width,
L number of layers.
"""

import keras
import tensorflow as tf

from tf_distill.layers.feed_forward import FeedForward
from tf_distill.layers.multi_head_attention import MultiHeadAttention
from tf_distill.layers.validation import (
    check_dropout,
    check_heads_divide,
    check_positive,
    clone_initializer,
    serialize_initializer,
    sub_seed,
)


class _ResidualBlocks(keras.layers.Layer):
    """Shared arguments, validation and residual idiom of `EncoderLayer` and `DecoderLayer`."""

    def __init__(
        self,
        hidden_dim,
        num_heads,
        intermediate_dim,
        dropout=0.0,
        activation="gelu",
        normalize_first=True,
        layer_norm_epsilon=1e-5,
        activation_dropout=0.0,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_heads_divide(hidden_dim, num_heads)
        check_positive(intermediate_dim=intermediate_dim)
        check_dropout(dropout)
        check_dropout(activation_dropout, "activation_dropout")
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.activation = keras.activations.get(activation)
        self.normalize_first = normalize_first
        self.layer_norm_epsilon = layer_norm_epsilon
        self.activation_dropout = activation_dropout
        self.kernel_initializer = kernel_initializer  # resolved by each sublayer
        self.bias_initializer = bias_initializer
        self.seed = seed

    def _initializers(self):
        return {
            "kernel_initializer": clone_initializer(self.kernel_initializer),
            "bias_initializer": clone_initializer(self.bias_initializer),
        }

    def _attention(self, name, offset):
        return MultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=self.hidden_dim // self.num_heads,
            dropout=self.dropout,
            seed=sub_seed(self.seed, offset),
            dtype=self.dtype_policy,
            name=name,
            **self._initializers(),
        )

    def _residual_dropout(self):
        return keras.layers.Dropout(
            self.dropout, seed=self.seed, dtype=self.dtype_policy, name="residual_dropout"
        )

    def _norm(self, name):
        return keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name
        )

    def _feed_forward(self):
        return FeedForward(
            self.hidden_dim,
            self.intermediate_dim,
            activation=self.activation,
            dropout=self.activation_dropout,
            seed=sub_seed(self.seed, 3),
            dtype=self.dtype_policy,
            name="feed_forward",
            **self._initializers(),
        )

    def _residual(self, x, norm, block, training):
        """x + dropout(block(norm(x))) (pre-norm) or norm(x + dropout(block(x))) (post-norm).

        `block` returns either a tensor or a tuple whose first item is the tensor; the rest
        (caches) is passed through.
        """
        out = block(norm(x) if self.normalize_first else x)
        extra = ()
        if isinstance(out, tuple):
            out, extra = out[0], out[1:]
        out = x + self.dropout_layer(out, training=training)
        if not self.normalize_first:
            out = norm(out)
        return (out, *extra) if extra else out

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "activation": keras.activations.serialize(self.activation),
                "normalize_first": self.normalize_first,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "activation_dropout": self.activation_dropout,
                "kernel_initializer": serialize_initializer(self.kernel_initializer),
                "bias_initializer": serialize_initializer(self.bias_initializer),
                "seed": self.seed,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="tf_distill")
class EncoderLayer(_ResidualBlocks):
    """Self-attention over the source, then a feed-forward block.

    Args:
        hidden_dim: model width D; `num_heads` must divide it.
        num_heads: attention heads.
        intermediate_dim: feed-forward inner width.
        dropout: dropout on attention probabilities and on each block's output (before
            the residual sum).
        activation: feed-forward activation.
        normalize_first: pre-norm (True) or post-norm (False).
        layer_norm_epsilon: LayerNorm epsilon.
        activation_dropout: dropout on the feed-forward's inner activations; 0 by default,
            as in keras-hub and BART (at the issue-4 dims it cost 6% of a training step,
            four times the elements of the other dropouts).
        kernel_initializer: initializer of every kernel (attention and feed-forward).
        bias_initializer: initializer of every bias.
        seed: seed of the layer's dropouts (each gets its own, derived from it); None:
            unseeded.

    Call arguments:
        inputs: (B, S, D) tensor.
        padding_mask: (B, S) boolean, True for real tokens; pads are never attended to.
        training: whether dropout is active.
        return_features: also return a dict with the attention probabilities
            `"self_attention"` (B, N, S, S) and the value heads `"self_values"` (B, S, N, H)
            (what feature distillation compares; `tf_distill.features`).

    Returns:
        (B, S, D) tensor; with `return_features`, `(output, features)`.
    """

    def build(self, inputs_shape, padding_mask_shape=None):
        self.self_attention = self._attention("self_attention", 1)
        self.self_attention.build(inputs_shape, inputs_shape)
        self.self_attention_norm = self._norm("self_attention_norm")
        self.self_attention_norm.build(inputs_shape)
        self.feed_forward = self._feed_forward()
        self.feed_forward.build(inputs_shape)
        self.feed_forward_norm = self._norm("feed_forward_norm")
        self.feed_forward_norm.build(inputs_shape)
        self.dropout_layer = self._residual_dropout()
        self.built = True

    def compute_output_shape(self, inputs_shape, padding_mask_shape=None):
        return tuple(inputs_shape)

    def call(self, inputs, padding_mask=None, training=None, return_features=False):
        mask = None if padding_mask is None else tf.expand_dims(padding_mask, 1)  # (B, 1, S)
        # Self-attention block.
        x = self._residual(
            inputs,
            self.self_attention_norm,
            lambda y: self.self_attention(
                y,
                y,
                attention_mask=mask,
                training=training,
                return_attention_scores=return_features,
                return_value_heads=return_features,
            ),
            training,
        )
        features = None
        if return_features:
            x, probabilities, values = x
            features = {"self_attention": probabilities, "self_values": values}
        # Feed-forward block.
        x = self._residual(
            x,
            self.feed_forward_norm,
            lambda y: self.feed_forward(y, training=training),
            training,
        )
        return (x, features) if return_features else x


@keras.saving.register_keras_serializable(package="tf_distill")
class DecoderLayer(_ResidualBlocks):
    """Causal self-attention, cross-attention to the encoder output, then feed-forward.

    Args: as `EncoderLayer`.

    Call arguments:
        decoder_sequence: (B, T, D) tensor.
        encoder_sequence: (B, S, D) encoder output.
        decoder_padding_mask: (B, T) boolean, True for real target tokens.
        encoder_padding_mask: (B, S) boolean, True for real source tokens.
        training: whether dropout is active.
        self_attention_cache: (B, 2, T_max, N, H) keys/values of earlier target positions.
        self_attention_cache_update_index: position of `decoder_sequence[:, 0]` in the cache.
        cross_attention_cache: (B, 2, S, N, H) projected encoder keys/values; when given,
            `encoder_sequence` is not projected again.
        return_features: also return a dict with `"self_attention"` (B, N, T, T),
            `"self_values"` (B, T, N, H) and `"cross_attention"` (B, N, T, S); not with
            caches (training-time only).

    Returns:
        (B, T, D) tensor; with a self-attention cache, `(output, self_attention_cache)`;
        with `return_features`, `(output, features)`.
    """

    def build(self, decoder_sequence_shape, encoder_sequence_shape=None, *args, **kwargs):
        if encoder_sequence_shape is None:
            encoder_sequence_shape = decoder_sequence_shape
        self.self_attention = self._attention("self_attention", 1)
        self.self_attention.build(decoder_sequence_shape, decoder_sequence_shape)
        self.self_attention_norm = self._norm("self_attention_norm")
        self.self_attention_norm.build(decoder_sequence_shape)
        self.cross_attention = self._attention("cross_attention", 2)
        self.cross_attention.build(decoder_sequence_shape, encoder_sequence_shape)
        self.cross_attention_norm = self._norm("cross_attention_norm")
        self.cross_attention_norm.build(decoder_sequence_shape)
        self.feed_forward = self._feed_forward()
        self.feed_forward.build(decoder_sequence_shape)
        self.feed_forward_norm = self._norm("feed_forward_norm")
        self.feed_forward_norm.build(decoder_sequence_shape)
        self.dropout_layer = self._residual_dropout()
        self.built = True

    def compute_output_shape(
        self,
        decoder_sequence_shape,
        encoder_sequence_shape=None,
        decoder_padding_mask_shape=None,
        encoder_padding_mask_shape=None,
    ):
        return tuple(decoder_sequence_shape)  # symbolic calls take no cache

    def call(
        self,
        decoder_sequence,
        encoder_sequence,
        decoder_padding_mask=None,
        encoder_padding_mask=None,
        training=None,
        self_attention_cache=None,
        self_attention_cache_update_index=None,
        cross_attention_cache=None,
        return_features=False,
    ):
        cached = self_attention_cache is not None
        if return_features and (cached or cross_attention_cache is not None):
            raise ValueError("`return_features` cannot be combined with attention caches.")
        if cached:
            # Query i (at absolute position index + i) sees cache slots 0 .. index + i.
            t = tf.shape(decoder_sequence)[1]
            s = tf.shape(self_attention_cache)[2]
            index = tf.cast(self_attention_cache_update_index, tf.int32)
            rows = index + tf.range(t)[:, tf.newaxis]
            self_mask = (tf.range(s)[tf.newaxis, :] <= rows)[tf.newaxis]  # (1, T, T_max)
            use_causal = False
        else:
            self_mask = None
            if decoder_padding_mask is not None:
                self_mask = tf.expand_dims(decoder_padding_mask, 1)  # (B, 1, T)
            use_causal = True
        cross_mask = None
        if encoder_padding_mask is not None:
            cross_mask = tf.expand_dims(encoder_padding_mask, 1)  # (B, 1, S)

        # Causal self-attention block.
        x = self._residual(
            decoder_sequence,
            self.self_attention_norm,
            lambda y: self.self_attention(
                y,
                y,
                attention_mask=self_mask,
                use_causal_mask=use_causal,
                training=training,
                cache=self_attention_cache,
                cache_update_index=self_attention_cache_update_index,
                return_attention_scores=return_features,
                return_value_heads=return_features,
            ),
            training,
        )
        features = {}
        if cached:
            x, self_attention_cache = x
        elif return_features:
            x, features["self_attention"], features["self_values"] = x
        # Cross-attention block.
        x = self._residual(
            x,
            self.cross_attention_norm,
            lambda y: self.cross_attention(
                y,
                encoder_sequence,
                attention_mask=cross_mask,
                training=training,
                cache=cross_attention_cache,
                return_attention_scores=return_features,
            ),
            training,
        )
        if cross_attention_cache is not None:
            x = x[0]
        elif return_features:
            x, features["cross_attention"] = x
        # Feed-forward block.
        x = self._residual(
            x,
            self.feed_forward_norm,
            lambda y: self.feed_forward(y, training=training),
            training,
        )
        if return_features:
            return x, features
        return (x, self_attention_cache) if cached else x
