"""Multi-head attention with a bounded mask fill and an optional key/value cache.

Legend: B batch, T query length, S key/value length, N heads, H head size, D model width.
"""

import math

import keras
import tensorflow as tf

from tf_distill.layers.validation import check_dropout, check_positive, clone_initializer


@keras.saving.register_keras_serializable(package="tf_distill")
class MultiHeadAttention(keras.layers.Layer):
    """Scaled dot-product attention over `num_heads` heads (Vaswani et al., 2017).

    It means what `keras.layers.MultiHeadAttention` means and has the same weights in the
    same order (query, key, value kernels (D, N, H) with biases (N, H); output kernel
    (N, H, D) with bias (D)), so `ours.set_weights(theirs.get_weights())` swaps them.
    Two things differ on purpose:

    - Masked scores get a *bounded* fill: each row is shifted so that its largest allowed
      score is 0 (softmax does not change), and masked positions are set to
      `-mask_fill_offset`, then zeroed after the softmax. Full-integer quantization
      calibrates one range for the score tensor; a -1e9 fill would crush the real scores
      into a single int8 bin. With the bound the range stays small, and a masked position
      weighs at most e^-30 of the row's largest score before it is zeroed.
    - A key/value cache can be passed in and is returned updated, for incremental
      decoding (`cache` and `cache_update_index`).

    Masking: `attention_mask` is boolean-like with shape (B, T, S) (or broadcastable to
    it), 1 where the query may attend to the key. Keras implicit masks are not read; pass
    masks explicitly. A row with no allowed key gets all-zero probabilities (as in Keras).

    Args:
        num_heads: number of attention heads N.
        key_dim: size H of each query/key head.
        value_dim: size of each value head; defaults to `key_dim`.
        dropout: dropout rate on the attention probabilities.
        use_bias: whether the projections have biases.
        output_dim: width of the output; defaults to the query's last dimension.
        kernel_initializer: initializer of the projection kernels.
        bias_initializer: initializer of the projection biases.
        mask_fill_offset: how far below the row's largest allowed score masked scores sit.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        query: (B, T, D) float tensor.
        value: (B, S, D) float tensor.
        key: (B, S, D) float tensor; defaults to `value`.
        attention_mask: (B, T, S) mask, 1 = may attend.
        use_causal_mask: also forbid query i from seeing keys j > i.
        return_attention_scores: also return the probabilities (B, N, T, S).
        training: whether dropout is active.
        cache: (B, 2, S_max, N, H) stacked keys and values from earlier steps.
        cache_update_index: where the keys/values of this call go in `cache`. With a
            cache and no index, the cache is used as it is (cross-attention).
        return_value_heads: also return the projected values (B, S, N, H), which
            MiniLM's value-relation loss compares (`tf_distill.features`).

    Returns:
        (B, T, output_dim) tensor; then the scores if asked; then the value heads if asked;
        then the cache if one was given.

    Example:
    >>> mha = MultiHeadAttention(num_heads=2, key_dim=4)
    >>> x = keras.random.normal((1, 3, 8))
    >>> mha(x, x).shape
    TensorShape([1, 3, 8])
    """

    def __init__(
        self,
        num_heads,
        key_dim,
        value_dim=None,
        dropout=0.0,
        use_bias=True,
        output_dim=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        mask_fill_offset=30.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive(num_heads=num_heads, key_dim=key_dim)
        if value_dim is not None:
            check_positive(value_dim=value_dim)
        if output_dim is not None:
            check_positive(output_dim=output_dim)
        check_dropout(dropout)
        if not mask_fill_offset > 0:
            raise ValueError(
                f"`mask_fill_offset` must be positive. Received: mask_fill_offset="
                f"{mask_fill_offset}."
            )
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.value_dim = value_dim if value_dim is not None else key_dim
        self.dropout = dropout
        self.use_bias = use_bias
        self.output_dim = output_dim
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.mask_fill_offset = float(mask_fill_offset)
        self.seed = seed
        self.supports_masking = False

    def _dense(self, equation, output_shape, bias_axes, name):
        return keras.layers.EinsumDense(
            equation,
            output_shape=output_shape,
            bias_axes=bias_axes if self.use_bias else None,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, query_shape, value_shape=None, key_shape=None):
        if value_shape is None:
            value_shape = query_shape
        if key_shape is None:
            key_shape = value_shape
        width = query_shape[-1]
        # Sublayers are built in Keras' order so that get_weights() lines up with it.
        self.query_dense = self._dense(
            "abc,cde->abde", (None, self.num_heads, self.key_dim), "de", "query"
        )
        self.query_dense.build(query_shape)
        self.key_dense = self._dense(
            "abc,cde->abde", (None, self.num_heads, self.key_dim), "de", "key"
        )
        self.key_dense.build(key_shape)
        self.value_dense = self._dense(
            "abc,cde->abde", (None, self.num_heads, self.value_dim), "de", "value"
        )
        self.value_dense.build(value_shape)
        out_width = self.output_dim if self.output_dim is not None else width
        self.output_dense = self._dense("abcd,cde->abe", (None, out_width), "e", "attention_output")
        self.output_dense.build((None, None, self.num_heads, self.value_dim))
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, seed=self.seed, dtype=self.dtype_policy, name="attention_dropout"
        )
        self.built = True

    def compute_key_value_cache(self, value, key=None):
        """Projects `key`/`value` (B, S, D) once into a (B, 2, S, N, H) cache."""
        key = value if key is None else key
        return tf.stack([self.key_dense(key), self.value_dense(value)], axis=1)

    def call(
        self,
        query,
        value,
        key=None,
        attention_mask=None,
        use_causal_mask=False,
        return_attention_scores=False,
        training=None,
        cache=None,
        cache_update_index=None,
        return_value_heads=False,
    ):
        if key is None:
            key = value
        query_heads = self.query_dense(query)  # (B, T, N, H)
        if cache is not None:
            if cache_update_index is None:
                key_heads, value_heads = cache[:, 0], cache[:, 1]  # (B, S, N, H)
            else:
                key_heads = _update_slice(cache[:, 0], self.key_dense(key), cache_update_index)
                value_heads = _update_slice(
                    cache[:, 1], self.value_dense(value), cache_update_index
                )
            cache = tf.stack([key_heads, value_heads], axis=1)  # (B, 2, S, N, H)
        else:
            key_heads = self.key_dense(key)  # (B, S, N, H)
            value_heads = self.value_dense(value)  # (B, S, N, H)

        query_heads = query_heads * tf.cast(1.0 / math.sqrt(self.key_dim), query_heads.dtype)
        scores = tf.einsum("bsnh,btnh->bnts", key_heads, query_heads)  # (B, N, T, S)

        mask = self._combined_mask(attention_mask, use_causal_mask, query_heads, key_heads)
        # Softmax in float32 whatever the compute dtype: float16 exp overflows easily.
        probabilities = masked_softmax(
            tf.cast(scores, tf.float32), mask, self.mask_fill_offset
        )  # (B, N, T, S)
        probabilities = tf.cast(probabilities, self.compute_dtype)
        dropped = self.dropout_layer(probabilities, training=training)
        context = tf.einsum("bnts,bsnh->btnh", dropped, value_heads)  # (B, T, N, H)
        output = self.output_dense(context)  # (B, T, D)

        results = [output]
        if return_attention_scores:
            results.append(probabilities)
        if return_value_heads:
            results.append(value_heads)
        if cache is not None:
            results.append(cache)
        return results[0] if len(results) == 1 else tuple(results)

    def _combined_mask(self, attention_mask, use_causal_mask, query_heads, key_heads):
        """Returns a boolean (B or 1, 1, T, S) mask, or None when everything may attend."""
        mask = None
        if attention_mask is not None:
            mask = tf.cast(attention_mask, tf.bool)
            if mask.shape.rank == 2:  # (T, S)
                mask = mask[tf.newaxis]
            mask = mask[:, tf.newaxis]  # (B, 1, T, S)
        if use_causal_mask:
            t = tf.shape(query_heads)[1]
            s = tf.shape(key_heads)[1]
            rows = tf.range(t)[:, tf.newaxis]
            cols = tf.range(s)[tf.newaxis, :]
            causal = (rows >= cols)[tf.newaxis, tf.newaxis]  # (1, 1, T, S)
            mask = causal if mask is None else tf.logical_and(mask, causal)
        return mask

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "value_dim": self.value_dim,
                "dropout": self.dropout,
                "use_bias": self.use_bias,
                "output_dim": self.output_dim,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "mask_fill_offset": self.mask_fill_offset,
                "seed": self.seed,
            }
        )
        return config


def masked_softmax(scores, mask, fill_offset=30.0):
    """Softmax over the last axis with a bounded fill for masked positions.

    `scores` is float; `mask` is boolean and broadcastable to it (True = keep) or None.
    Each row is shifted so its largest kept score is 0 (the softmax does not change) and
    masked entries become `-fill_offset` there: finite and close to the real scores'
    range, which full-int8 quantization needs. After the softmax masked entries are set
    to exactly 0, so the e^-fill_offset they held only enters the normalizer, a relative
    error below S * e^-30 (about 1e-11 for S = 1000). A row with nothing to attend to gets
    zeros, as in Keras, not a uniform average of pads.

    Four elementwise ops and one row max per attention map: the earlier form, which
    also lowered the fill below each row's smallest kept score, made our step 6% slower
    under XLA (docs/BENCHMARKS.md, "Training throughput").
    """
    if mask is None:
        return tf.nn.softmax(scores, axis=-1)
    row_max = tf.reduce_max(
        tf.where(mask, scores, tf.constant(-1.0e30, scores.dtype)), axis=-1, keepdims=True
    )
    # The shift is a constant per row for the softmax, so no gradient needs to flow through it.
    shifted = scores - tf.stop_gradient(row_max)
    fill = tf.constant(-fill_offset, scores.dtype)
    probabilities = tf.nn.softmax(tf.where(mask, shifted, fill), axis=-1)
    return tf.where(mask, probabilities, tf.zeros_like(probabilities))


def _update_slice(cache, update, index):
    """Writes `update` (B, t, N, H) into `cache` (B, S, N, H) at time steps [index, index + t).

    A scatter on the time axis: it runs without XLA and converts to builtin TFLite ops.
    """
    index = tf.cast(index, tf.int32)
    cache_t = tf.transpose(cache, [1, 0, 2, 3])  # (S, B, N, H)
    update_t = tf.transpose(update, [1, 0, 2, 3])  # (t, B, N, H)
    positions = index + tf.range(tf.shape(update_t)[0])
    cache_t = tf.tensor_scatter_nd_update(cache_t, positions[:, tf.newaxis], update_t)
    return tf.transpose(cache_t, [1, 0, 2, 3])
