"""Lean decoder steps for export (greedy and beam): the same decoder, weights and
arithmetic as the Keras layers, written for the per-token cost of a TFLite interpreter.

The Keras layers run on (B, t, D) sequences with dynamic shapes, so one step of the
standard loop converts to 166 TFLite ops for small.json's 1-layer decoder (80 here), most
of them shape bookkeeping (SHAPE, GATHER, REDUCE_PROD, PACK, RESHAPE around every Dense),
transposes of the key/value cache and the masked-softmax guards. On a phone-sized student
the step is op overhead, not arithmetic (docs/BENCHMARKS.md, "Where the time goes"). This
loop takes one token per row, so every tensor of the step is (B, D) or (B, N, 1, H):

- dense layers are plain matrix products on (B, D) (one FULLY_CONNECTED each, no
  reshapes);
- each layer's self-attention keys and values live in (B, N, T, H) tensors, the layout
  the attention products read, written in place with one DYNAMIC_UPDATE_SLICE per step
  (cheaper than the broadcast SELECT over the whole cache that it replaced);
- masks are additive (0 or -1e9), built once per step (self-attention) or per call
  (source padding), so a softmax needs one ADD before it;
- the pad token is forbidden by the output layer's bias instead of a SELECT.

The encoder (`encode`) and the cross-attention keys and values run once per call, written
the same way: position-wise layers on (B * S, D) rows, attention on (B, N, S, H) with an
additive padding mask (small.json's student: 119 ops in the main graph instead of 208).
The result is the Keras decode up to float rounding; the export checks that its fp32
files match `greedy_decode` (and `beam_search`) sentence by sentence.

Legend: B batch, S source length, T `max_length`, D model width, N heads, H head size,
V target vocabulary.
"""

import math

import keras
import tensorflow as tf

from tf_distill.decoding import steps

_NEG = steps.NEG


def supports_lean_loop(parts):
    """True when `parts` can run in the lean loop: float32 weights and compute, the
    LayerNorms with their scale and offset (what `build_transformer` makes)."""
    decoder = parts.decoder
    if decoder.compute_dtype != "float32":
        return False
    norms = [decoder.final_norm] if decoder.final_norm is not None else []
    for layer in decoder.transformer_layers:
        norms += [layer.self_attention_norm, layer.cross_attention_norm, layer.feed_forward_norm]
    return all(n.center and n.scale for n in norms)


def _layer_norm(norm, x):
    """LayerNorm over the last axis of (B, D), as `keras.layers.LayerNormalization`."""
    mean = tf.reduce_mean(x, axis=-1, keepdims=True)
    centred = x - mean
    variance = tf.reduce_mean(tf.square(centred), axis=-1, keepdims=True)
    return centred * (tf.math.rsqrt(variance + norm.epsilon) * norm.gamma) + norm.beta


def _dense(layer, x):
    """A Keras Dense or EinsumDense ("abc,cde->abde" / "abcd,cde->abe") on (B, D_in)."""
    y = tf.matmul(x, tf.reshape(layer.kernel, (x.shape[-1], -1)))
    if layer.bias is not None:
        y = y + tf.reshape(layer.bias, (-1,))
    return y


def _heads(x, attention, size):
    """(B, N * size) -> (B, N, 1, size)."""
    return tf.reshape(x, (-1, attention.num_heads, 1, size))


def _attend(attention, query, keys, values, bias):
    """(B, N, 1, H) query over (B, N, K, H) keys/values with an additive mask -> (B, D).

    The 1 / sqrt(H) scale multiplies the scores, not the query as in Keras (equal up to
    rounding; exactly equal when H is a power of 4): the converter folds a scale on the
    query into the query kernel, and an int8 file would then store another kernel than
    the Keras model's, which `round_to_int8_grid` relies on."""
    scale = 1.0 / math.sqrt(attention.key_dim)
    scores = tf.matmul(query, keys, transpose_b=True) * scale + bias  # (B, N, 1, K)
    context = tf.matmul(tf.nn.softmax(scores, axis=-1), values)  # (B, N, 1, H)
    context = tf.reshape(context, (-1, attention.num_heads * attention.value_dim))
    return _dense(attention.output_dense, context)


def _self_attention(attention, y, caches, at, visible):
    """One layer's cached self-attention for one token: writes the token's key and value
    into the (B, N, T, H) caches at `at` ((0, 0, step, 0), int32) and attends over the
    visible slots (`visible`: (1, 1, 1, T) additive mask). Returns the output and the
    written keys and values."""
    key = _heads(_dense(attention.key_dense, y), attention, attention.key_dim)
    value = _heads(_dense(attention.value_dense, y), attention, attention.value_dim)
    # keras.ops.slice_update is XLA's DynamicUpdateSlice on TensorFlow, which the
    # converter maps to the builtin DYNAMIC_UPDATE_SLICE.
    keys = keras.ops.slice_update(caches[0], at, key)
    values = keras.ops.slice_update(caches[1], at, value)
    query = _heads(_dense(attention.query_dense, y), attention, attention.key_dim)
    return _attend(attention, query, keys, values, visible), keys, values


def _cross_attention(attention, y, keys, values, bias):
    query = _heads(_dense(attention.query_dense, y), attention, attention.key_dim)
    return _attend(attention, query, keys, values, bias)


def _ffn(block, y):
    """The feed-forward block on (B, D)."""
    inner = block.inner_dense
    return _dense(block.output_dense, inner.activation(_dense(inner, y)))


def _output_layer(parts, pad_id):
    """(kernel (D, V) or None with `tied` (V, D), bias (V,)): the logits' weights, with
    the pad token's logit pushed to -1e9 by the bias."""
    vocabulary = parts.decoder_embedding.vocabulary_size
    forbid = tf.one_hot(pad_id, vocabulary, on_value=_NEG, off_value=0.0)
    if parts.output_projection is None:
        return None, parts.decoder_embedding.token_embeddings, forbid
    projection = parts.output_projection
    bias = forbid if projection.bias is None else projection.bias + forbid
    return projection.kernel, None, bias


def _encoder_attention(attention, y, shape, bias):
    """Self-attention of the source rows `y` (B * S, D) -> (B * S, D); `shape` is the
    int32 (B, S) of the batch, `bias` the (B, 1, 1, S) additive padding mask."""
    num_heads = attention.num_heads

    def heads(x, size):  # (B * S, N * size) -> (B, N, S, size)
        return tf.transpose(tf.reshape(x, (shape[0], shape[1], num_heads, size)), [0, 2, 1, 3])

    query = heads(_dense(attention.query_dense, y), attention.key_dim)
    keys = heads(_dense(attention.key_dense, y), attention.key_dim)
    values = heads(_dense(attention.value_dense, y), attention.value_dim)
    scale = 1.0 / math.sqrt(attention.key_dim)
    scores = tf.matmul(query, keys, transpose_b=True) * scale + bias  # (B, N, S, S)
    context = tf.matmul(tf.nn.softmax(scores, axis=-1), values)  # (B, N, S, H)
    context = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), (-1, num_heads * attention.value_dim))
    return _dense(attention.output_dense, context)


def encode(parts, source):
    """(B, S) source ids -> the encoder output as rows (B * S, D), the padding mask (B, S)
    and the int32 shape (B, S): `steps.encode` for one model, written like the decoder
    step (position-wise layers on (B * S, D) rows, one FULLY_CONNECTED per dense layer,
    additive masks), which converts to about half the TFLite ops of the Keras layers.

    A row of pads only gets another (unused) output than in Keras, where its attention
    is all zeros: the decoder attends to nothing in such a row either way."""
    source_mask = parts.encoder_padding_mask(source)
    shape = tf.shape(source)
    x = parts.encoder_embedding(source)  # (B, S, D)
    x = tf.reshape(x, (-1, x.shape[-1]))
    bias = tf.reshape(tf.where(source_mask, 0.0, _NEG), (shape[0], 1, 1, shape[1]))
    encoder = parts.encoder
    pre_norm = encoder.final_norm is not None
    for layer in encoder.transformer_layers:
        x = _residual(
            pre_norm,
            x,
            layer.self_attention_norm,
            lambda y, a=layer.self_attention: _encoder_attention(a, y, shape, bias),
        )
        x = _residual(
            pre_norm, x, layer.feed_forward_norm, lambda y, f=layer.feed_forward: _ffn(f, y)
        )
    if pre_norm:
        x = _layer_norm(encoder.final_norm, x)
    return x, source_mask, shape


def _residual(pre_norm, x, norm, block):
    """x + block(norm(x)) (pre-norm) or norm(x + block(x)) (post-norm); a block that
    returns a tuple passes the rest (the written caches) through, as the Keras layers'
    `_residual` does."""
    out = block(_layer_norm(norm, x) if pre_norm else x)
    extra = ()
    if isinstance(out, tuple):
        out, extra = out[0], out[1:]
    out = x + out
    if not pre_norm:
        out = _layer_norm(norm, out)
    return (out, *extra) if extra else out


class LeanDecoder:
    """The decoder of one model, one token per row, for `lean_greedy_loop` and the beam
    loop (`beam_loop(..., lean=True)`).

    Built once per call from `encode`'s result for B sources, each decoded in `repeat`
    rows (the beams; row b * repeat + j belongs to source b): the cross-attention keys and
    values in (R, N, S, H) and the source mask as an additive (R, 1, 1, S) bias, R = B *
    repeat. A row of pads only (no source) attends to nothing, as in Keras: its values
    are zeroed so the context is 0. (Reshapes, not [:, None], everywhere: TFLite has no
    builtin for a strided slice that adds axes.)
    """

    def __init__(self, parts, encoded, max_length, pad_id, repeat=1):
        rows, source_mask, shape = encoded
        self.layers = parts.decoder.transformer_layers
        self.embedding = parts.decoder_embedding
        self.final_norm = parts.decoder.final_norm
        self.pre_norm = self.final_norm is not None
        self.max_length = max_length
        if repeat > 1:
            source_mask = tf.repeat(source_mask, repeat, axis=0)
        has_source = tf.cast(tf.reduce_any(source_mask, axis=1), tf.float32)
        has_source = tf.reshape(has_source, (-1, 1, 1, 1))
        self.cross = []
        for layer in self.layers:
            attention = layer.cross_attention
            pair = []
            for dense, size in (
                (attention.key_dense, attention.key_dim),
                (attention.value_dense, attention.value_dim),
            ):
                heads = tf.reshape(_dense(dense, rows), (shape[0], shape[1], -1, size))
                heads = tf.transpose(heads, [0, 2, 1, 3])  # (B, N, S, H)
                pair.append(tf.repeat(heads, repeat, axis=0) if repeat > 1 else heads)
            self.cross.append((pair[0], pair[1] * has_source))
        self.cross_bias = tf.reshape(
            tf.where(source_mask, 0.0, _NEG), (shape[0] * repeat, 1, 1, shape[1])
        )
        self.kernel, self.tied, self.logit_bias = _output_layer(parts, pad_id)
        self.token_scale = tf.constant(math.sqrt(int(self.embedding.hidden_dim)), tf.float32)
        self.slots = tf.range(max_length)  # (T,)

    def empty_caches(self, rows):
        """Zeros for each layer's keys and values: a tuple of 2L tensors (R, N, T, H)."""
        attention = self.layers[0].self_attention
        shape = tf.stack([rows, attention.num_heads, self.max_length, attention.key_dim])
        return tuple(tf.zeros(shape, tf.float32) for _ in range(2 * len(self.layers)))

    def _residual(self, x, norm, block):
        return _residual(self.pre_norm, x, norm, block)

    def step(self, last, step, caches):
        """(R,) tokens at position `step` -> float32 (R, V) logits (pad at about -1e9) and
        the caches with this position written."""
        x = tf.gather(self.embedding.token_embeddings, last) * self.token_scale  # (R, D)
        x = x + tf.gather(self.embedding.position_embeddings, step)
        length = self.max_length
        visible = tf.reshape(tf.where(self.slots <= step, 0.0, _NEG), (1, 1, 1, length))
        at = tf.stack([0, 0, step, 0])  # where this step's keys and values go
        new_caches = []
        for i, layer in enumerate(self.layers):
            x, keys, values = self._residual(
                x,
                layer.self_attention_norm,
                lambda y, a=layer.self_attention, c=caches[2 * i : 2 * i + 2]: _self_attention(
                    a, y, c, at, visible
                ),
            )
            new_caches += [keys, values]
            x = self._residual(
                x,
                layer.cross_attention_norm,
                lambda y, a=layer.cross_attention, kv=self.cross[i]: _cross_attention(
                    a, y, *kv, self.cross_bias
                ),
            )
            x = self._residual(
                x, layer.feed_forward_norm, lambda y, f=layer.feed_forward: _ffn(f, y)
            )
        if self.pre_norm:
            x = _layer_norm(self.final_norm, x)
        if self.tied is not None:
            logits = tf.matmul(x, self.tied, transpose_b=True)
        else:
            logits = tf.matmul(x, self.kernel)
        return logits + self.logit_bias, tuple(new_caches)


def lean_greedy_loop(parts, source, max_length, start_id, end_id, pad_id):
    """(B, S) source ids -> (B, T) greedy output ids, as `greedy_loop` for one model."""
    source = tf.cast(source, tf.int32)
    batch = tf.shape(source)[0]
    decoder = LeanDecoder(parts, encode(parts, source), max_length, pad_id)

    def body(step, token_ids, finished, last, caches):
        logits, caches = decoder.step(last, step, caches)  # (B, V)
        token = tf.argmax(logits, axis=-1, output_type=tf.int32)
        token = tf.where(finished, tf.constant(pad_id, tf.int32), token)  # (B,)
        token_ids = keras.ops.slice_update(token_ids, (0, step), tf.reshape(token, (-1, 1)))
        finished = tf.logical_or(finished, tf.equal(token, end_id))
        return step + 1, token_ids, finished, token, caches

    def cond(step, token_ids, finished, last, caches):
        return tf.logical_and(step < max_length, tf.logical_not(tf.reduce_all(finished)))

    initial = (
        tf.constant(0),
        tf.fill(tf.stack([batch, max_length]), pad_id),
        tf.zeros(tf.stack([batch]), tf.bool),
        tf.fill(tf.stack([batch]), start_id),
        decoder.empty_caches(batch),
    )
    return tf.while_loop(cond, body, initial)[1]
