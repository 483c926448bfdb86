"""`Encoder` and `Decoder`: stacks of `EncoderLayer` / `DecoderLayer`.

Legend: B batch, T target length, S source length, N heads, H head size, D model width,
L number of layers.
"""

import keras
import tensorflow as tf

from tf_distill.layers.transformer_layers import DecoderLayer, EncoderLayer
from tf_distill.layers.validation import (
    check_dropout,
    check_heads_divide,
    check_positive,
    clone_initializer,
    serialize_initializer,
    sub_seed,
)


class _Stack(keras.layers.Layer):
    """Shared arguments of the two stacks. A pre-norm stack ends with a final LayerNorm."""

    layer_class = None

    def __init__(
        self,
        num_layers,
        hidden_dim,
        num_heads,
        intermediate_dim,
        dropout=0.0,
        activation="gelu",
        normalize_first=True,
        layer_norm_epsilon=1e-5,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive(num_layers=num_layers, intermediate_dim=intermediate_dim)
        check_heads_divide(hidden_dim, num_heads)
        check_dropout(dropout)
        self.num_layers = num_layers
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.activation = keras.activations.get(activation)
        self.normalize_first = normalize_first
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = kernel_initializer  # resolved by each sublayer
        self.bias_initializer = bias_initializer
        self.seed = seed
        self.transformer_layers = [
            self.layer_class(
                hidden_dim=hidden_dim,
                num_heads=num_heads,
                intermediate_dim=intermediate_dim,
                dropout=dropout,
                activation=self.activation,
                normalize_first=normalize_first,
                layer_norm_epsilon=layer_norm_epsilon,
                kernel_initializer=clone_initializer(self.kernel_initializer),
                bias_initializer=clone_initializer(self.bias_initializer),
                seed=sub_seed(seed, 10 * i),  # each layer seeds 4 dropouts from its own
                dtype=self.dtype_policy,
                name=f"layer_{i}",
            )
            for i in range(num_layers)
        ]
        self.final_norm = None
        if normalize_first:
            self.final_norm = keras.layers.LayerNormalization(
                epsilon=layer_norm_epsilon, dtype=self.dtype_policy, name="final_norm"
            )

    def _finish(self, x):
        return self.final_norm(x) if self.final_norm is not None else x

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_layers": self.num_layers,
                "hidden_dim": self.hidden_dim,
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "activation": keras.activations.serialize(self.activation),
                "normalize_first": self.normalize_first,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": serialize_initializer(self.kernel_initializer),
                "bias_initializer": serialize_initializer(self.bias_initializer),
                "seed": self.seed,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="tf_distill")
class Encoder(_Stack):
    """`num_layers` encoder layers (plus a final LayerNorm when pre-norm).

    Args: `num_layers` and those of `EncoderLayer`.

    Call arguments:
        inputs: (B, S, D) embedded source.
        padding_mask: (B, S) boolean, True for real tokens.
        training: whether dropout is active.
        return_features: also return the per-layer features (see `_collect`).

    Returns:
        (B, S, D) encoder output; with `return_features`, `(output, features)`: a dict of
        lists, `"hidden"` (the input, then each layer's output: L + 1 tensors (B, S, D),
        before the final norm), `"self_attention"` (L tensors (B, N, S, S)) and
        `"self_values"` (L tensors (B, S, N, H)).
    """

    layer_class = EncoderLayer

    def build(self, inputs_shape, padding_mask_shape=None):
        for layer in self.transformer_layers:
            layer.build(inputs_shape)
        if self.final_norm is not None:
            self.final_norm.build(inputs_shape)
        self.built = True

    def compute_output_shape(self, inputs_shape, padding_mask_shape=None):
        return tuple(inputs_shape)

    def call(self, inputs, padding_mask=None, training=None, return_features=False):
        x = inputs
        features = _empty_features(inputs, ("self_attention", "self_values"))
        for layer in self.transformer_layers:
            x = layer(
                x, padding_mask=padding_mask, training=training, return_features=return_features
            )
            if return_features:
                x = _collect(features, *x)
        x = self._finish(x)
        return (x, features) if return_features else x


@keras.saving.register_keras_serializable(package="tf_distill")
class Decoder(_Stack):
    """`num_layers` decoder layers (plus a final LayerNorm when pre-norm).

    For incremental decoding pass `self_attention_cache` (B, 2L, T_max, N, H) and
    `self_attention_cache_update_index`, and optionally `cross_attention_cache`
    (B, 2L, S, N, H) from `compute_cross_attention_cache`; the call then returns
    `(output, self_attention_cache)`. Rows 2i and 2i + 1 of axis 1 hold layer i's keys and
    values. The layers share axis 1 with keys/values (5-D, not (B, L, 2, ...)) because
    TFLite's StridedSlice takes at most 5-D inputs: the int8 calibrator fails on 6-D slices.

    Args: `num_layers` and those of `DecoderLayer`.

    Call arguments:
        decoder_sequence: (B, T, D) embedded target.
        encoder_sequence: (B, S, D) encoder output.
        decoder_padding_mask: (B, T) boolean.
        encoder_padding_mask: (B, S) boolean.
        training: whether dropout is active.
        self_attention_cache, self_attention_cache_update_index, cross_attention_cache:
            see above.
        return_features: also return the per-layer features, as `Encoder` does plus
            `"cross_attention"` (L tensors (B, N, T, S)); not with caches.

    Returns:
        (B, T, D) tensor, or `(output, self_attention_cache)` with a cache, or
        `(output, features)` with `return_features`.
    """

    layer_class = DecoderLayer

    def build(self, decoder_sequence_shape, encoder_sequence_shape=None, *args, **kwargs):
        for layer in self.transformer_layers:
            layer.build(decoder_sequence_shape, encoder_sequence_shape)
        if self.final_norm is not None:
            self.final_norm.build(decoder_sequence_shape)
        self.built = True

    def empty_self_attention_cache(self, batch_size, max_length, dtype="float32"):
        """Zeros of shape (B, 2L, T_max, N, H) for incremental decoding."""
        head = self.hidden_dim // self.num_heads
        return tf.zeros(
            tf.stack([batch_size, 2 * self.num_layers, max_length, self.num_heads, head]),
            dtype=dtype,
        )

    def compute_cross_attention_cache(self, encoder_sequence):
        """Projects the encoder output once per layer: (B, 2L, S, N, H)."""
        return tf.concat(
            [
                layer.cross_attention.compute_key_value_cache(encoder_sequence)
                for layer in self.transformer_layers
            ],
            axis=1,
        )

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
        x = decoder_sequence
        features = _empty_features(
            decoder_sequence, ("self_attention", "self_values", "cross_attention")
        )
        new_caches = []
        for i, layer in enumerate(self.transformer_layers):
            rows = slice(2 * i, 2 * i + 2)  # layer i's keys and values
            layer_cache = None if self_attention_cache is None else self_attention_cache[:, rows]
            cross_cache = None if cross_attention_cache is None else cross_attention_cache[:, rows]
            x = layer(
                x,
                encoder_sequence,
                decoder_padding_mask=decoder_padding_mask,
                encoder_padding_mask=encoder_padding_mask,
                training=training,
                self_attention_cache=layer_cache,
                self_attention_cache_update_index=self_attention_cache_update_index,
                cross_attention_cache=cross_cache,
                return_features=return_features,
            )
            if layer_cache is not None:
                x, layer_cache = x
                new_caches.append(layer_cache)
            elif return_features:
                x = _collect(features, *x)
        x = self._finish(x)
        if return_features:
            return x, features
        if self_attention_cache is not None:
            return x, tf.concat(new_caches, axis=1)
        return x


def _empty_features(inputs, attention_keys):
    """The feature lists a stack fills layer by layer; "hidden" starts with its input."""
    features = {"hidden": [inputs]}
    features.update({key: [] for key in attention_keys})
    return features


def _collect(features, output, layer_features):
    """Appends one layer's output and attention features to `features`; returns the output."""
    features["hidden"].append(output)
    for key, value in layer_features.items():
        features[key].append(value)
    return output
