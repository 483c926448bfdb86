"""Greedy decoding and beam search for `build_transformer` models, with a key/value cache.

Every decoder runs as a `tf.function` around one `tf.while_loop` over a fixed `max_length`.
With the cache each step embeds one token, writes its keys/values into a (B, 2L, T, N, H)
self-attention buffer of fixed size and reads the encoder keys/values projected once, so
every new token costs the same whatever its position. Without the cache each step re-runs
the whole decoder on the prefix (cost grows with the position); it is kept as the reference
the cached path is tested against.

Output format, shared by every function here: int32 (B, max_length) ids that do not include
the start token; a row keeps its first end token and holds `pad_id` after it; a row that
never produced the end token is simply `max_length` tokens long. The pad id is never
generated (its logit is masked out: it marks "no token", and training never scores it).

Legend: B batch, S source length, T `max_length`, K beam size, V target vocabulary,
D model width, L decoder layers, N heads, H head size.
"""

import collections
import numbers
import warnings
import weakref

import keras
import numpy as np
import tensorflow as tf

from tf_distill.errors import TFDistillWarning
from tf_distill.layers import Decoder, Encoder, PaddingMask, PositionalEmbedding

# Log-probability of an impossible hypothesis. Finite, so that sums and the length penalty
# never produce NaN; anything below _NEG / 2 counts as impossible.
_NEG = -1.0e9

Seq2SeqParts = collections.namedtuple(
    "Seq2SeqParts",
    [
        "encoder_embedding",
        "encoder_padding_mask",
        "encoder",
        "decoder_embedding",
        "decoder",
        "output_projection",
    ],
)
Seq2SeqParts.__doc__ = """The layers of a `build_transformer` model that decoding calls.

`output_projection` is the `Dense` layer, or None when the model ties its output projection
to `decoder_embedding` (logits = `decoder_embedding(states, reverse=True)`).
"""


def seq2seq_parts(model):
    """Returns the `Seq2SeqParts` of a model built by `build_transformer`.

    Raises:
        ValueError: if `model` lacks one of the named layers `build_transformer` creates,
            or has a layer of that name of another type.
    """
    expected = {
        "encoder_embedding": PositionalEmbedding,
        "encoder_padding_mask": PaddingMask,
        "encoder": Encoder,
        "decoder_embedding": PositionalEmbedding,
        "decoder": Decoder,
    }
    get_layer = getattr(model, "get_layer", None)
    names = {layer.name for layer in getattr(model, "layers", ())}
    problems = []
    found = {}
    for name, cls in expected.items():
        if get_layer is None or name not in names:
            problems.append(f"no layer named {name!r}")
            continue
        found[name] = get_layer(name)
        if not isinstance(found[name], cls):
            problems.append(f"{name!r} is a {type(found[name]).__name__}, not a {cls.__name__}")
    projection = None
    if get_layer is not None and "output_projection" in names:
        projection = get_layer("output_projection")
        if not isinstance(projection, keras.layers.Dense):
            problems.append(f"'output_projection' is a {type(projection).__name__}, not a Dense")
    if problems:
        raise ValueError(
            "Decoding needs a sequence-to-sequence model built by "
            "`tf_distill.build_transformer`. Received: "
            f"{type(model).__name__} {getattr(model, 'name', '')!r} with "
            f"{'; '.join(problems)}."
        )
    return Seq2SeqParts(output_projection=projection, **found)


def greedy_decode(
    model, encoder_token_ids, max_length, start_id=2, end_id=3, pad_id=0, use_cache=True
):
    """Decodes a batch greedily (the most likely next token at every step).

    Args:
        model: a seq2seq model built by `build_transformer`, or a list of them sharing one
            target vocabulary (an ensemble: each step takes the mean of their probabilities).
        encoder_token_ids: (B, S) int source ids padded with `pad_id` (list, array or tensor).
        max_length: number of target tokens to produce, at most the model's
            `max_sequence_length`.
        start_id: the token the decoder starts from (not part of the output).
        end_id: the token that ends a sequence (kept in the output).
        pad_id: padding id; it must be the model's own pad id, is written after the end
            token and is never generated.
        use_cache: decode incrementally with the key/value cache (True) or re-run the
            decoder on the whole prefix at each step (False, the slow reference).

    Returns:
        int32 tensor (B, max_length) in the module's output format. The loop stops as soon
        as every row has produced the end token; the shape does not change.

    Example:
    >>> model = build_transformer(vocabulary_size=50, max_sequence_length=16, num_layers=1,
    ...                           num_heads=2, hidden_dim=16, intermediate_dim=32)
    >>> greedy_decode(model, [[5, 6, 7, 0]], max_length=8).shape
    TensorShape([1, 8])
    """
    source = _check_source(encoder_token_ids)
    parts = _check_members(model, max_length, start_id, end_id, pad_id, source)
    key = ("greedy", max_length, start_id, end_id, pad_id, bool(use_cache), _member_ids(model))

    def make():
        return tf.function(
            lambda ids: _greedy(parts, ids, max_length, start_id, end_id, pad_id, use_cache),
            input_signature=[tf.TensorSpec((None, None), tf.int32)],
        )

    return _function(model, key, make)(source)


def beam_search(
    model,
    encoder_token_ids,
    max_length,
    beam_size=4,
    length_penalty=0.6,
    start_id=2,
    end_id=3,
    pad_id=0,
    return_scores=False,
):
    """Decodes a batch with beam search, using the key/value cache.

    Hypotheses are ranked by their GNMT score (Wu et al., 2016, eq. 14, without coverage):
    `log p(y | x) / ((5 + |y|) / 6) ** length_penalty`, where |y| counts the generated tokens
    including the end token (not the start token), and `log p` is the sum of the model's
    log-softmax over the non-pad tokens. `length_penalty=0` ranks by plain log-probability;
    larger values favour longer outputs.

    Each step extends the K live hypotheses by every token and keeps the 2K best
    extensions. As in fairseq, one that ends with the end token becomes a finished
    hypothesis only if it is among the K best extensions; the K best that did not end live
    on. An input stops once it has K finished hypotheses (later, longer hypotheses that the
    length penalty might prefer are not searched for), and at `max_length` the K best
    extensions finish whether they ended or not. Hence `beam_size=1` is exactly greedy
    decoding, and a beam large enough to keep every hypothesis is exhaustive search.

    Args:
        model: a seq2seq model built by `build_transformer`, or a list of them (an
            ensemble, scored by the log of the mean of their probabilities).
        encoder_token_ids: (B, S) int source ids padded with `pad_id`.
        max_length: number of target tokens to produce at most.
        beam_size: number of hypotheses K kept per input.
        length_penalty: the GNMT exponent alpha (>= 0).
        start_id, end_id, pad_id: as in `greedy_decode`.
        return_scores: also return the score of each best hypothesis.

    Returns:
        int32 tensor (B, max_length) of the best hypothesis per input, in the module's
        output format; with `return_scores`, also float32 (B,) scores as defined above.
    """
    source = _check_source(encoder_token_ids)
    parts = _check_members(model, max_length, start_id, end_id, pad_id, source)
    _check_positive_int("beam_size", beam_size)
    if (
        isinstance(length_penalty, bool)
        or not isinstance(length_penalty, numbers.Real)
        or not length_penalty >= 0
    ):
        raise ValueError(
            "`length_penalty` must be a number >= 0 (the GNMT exponent; 0 disables it). "
            f"Received: length_penalty={length_penalty!r}."
        )
    alpha = float(length_penalty)
    key = ("beam", max_length, beam_size, alpha, start_id, end_id, pad_id, _member_ids(model))

    def make():
        return tf.function(
            lambda ids: _beam(parts, ids, max_length, beam_size, alpha, start_id, end_id, pad_id),
            input_signature=[tf.TensorSpec((None, None), tf.int32)],
        )

    token_ids, scores = _function(model, key, make)(source)
    return (token_ids, scores) if return_scores else token_ids


def translate_texts(
    model,
    texts,
    source_tokenizer,
    target_tokenizer=None,
    max_length=None,
    beam_size=1,
    length_penalty=0.6,
    batch_size=64,
):
    """Translations of a list of strings by a Keras model (or an ensemble: a list).

    Tokenizes `texts`, cuts any longer than the model's encoder takes (with a
    `TFDistillWarning` naming how many), decodes them in batches (greedy, or beam search
    with `beam_size` > 1) and detokenizes.

    Args:
        model: a `build_transformer` model or a list of them.
        texts: a list of source sentences.
        source_tokenizer, target_tokenizer: `tf_distill.data.Tokenizer`s (the target one
            defaults to the source one: a shared vocabulary).
        max_length: most target tokens (default: the decoder's `max_sequence_length`).
        beam_size, length_penalty: as for `beam_search`.
        batch_size: sentences per call.

    Returns:
        A list of `len(texts)` strings.
    """
    target_tokenizer = target_tokenizer or source_tokenizer
    first = model[0] if isinstance(model, list | tuple) else model
    parts = seq2seq_parts(first)
    limit = parts.encoder_embedding.max_sequence_length
    max_length = max_length or parts.decoder_embedding.max_sequence_length
    _check_positive_int("beam_size", beam_size)
    _check_positive_int("batch_size", batch_size)
    texts = list(texts)
    cut = sum(len(row) > limit for row in source_tokenizer.tokenize(texts))
    if cut:
        warnings.warn(
            f"{cut} of {len(texts)} sentences are longer than the model's {limit} source "
            "tokens and were cut to that length.",
            TFDistillWarning,
            stacklevel=2,
        )
    special = target_tokenizer.special_ids
    out = []
    for start in range(0, len(texts), batch_size):
        ids = source_tokenizer.encode_batch(texts[start : start + batch_size], limit)
        if beam_size > 1:
            decoded = beam_search(model, ids, max_length, beam_size, length_penalty, **special)
        else:
            decoded = greedy_decode(model, ids, max_length, **special)
        out.extend(target_tokenizer.decode_batch(np.asarray(decoded)))
    return out


def make_translate_function(
    model, max_length, start_id=2, end_id=3, pad_id=0, beam_size=1, length_penalty=0.6
):
    """Returns a `tf.function` (B, S) int32 source ids -> (B, max_length) int32 greedy ids
    (with `beam_size` > 1: the best beam-search hypothesis, as `beam_search` gives it; the
    beam loop converts to builtin TFLite ops just as well).

    Its input signature is `tf.TensorSpec((None, None), tf.int32, name="encoder_token_ids")`
    (any batch, any source length up to the model's `max_sequence_length`) and the cached
    greedy loop runs inside the graph, so it serves as a SavedModel signature and converts
    to TFLite with `supported_ops=[tf.lite.OpsSet.TFLITE_BUILTINS]` (no Flex or custom ops;
    the loop becomes a WHILE, the cache update a SCATTER_ND). Output format as in
    `greedy_decode`.

    Give the converter (or `tf.saved_model.save`) the `tf.Variable`s under the Keras
    variables to track, not the Keras model: with the model as `trackable_obj` the weights
    stay uninitialized resource variables in the .tflite file (NaN or a failed
    READ_VARIABLE inside the loop).

    Example:
    >>> translate = make_translate_function(model, max_length=16)
    >>> holder = tf.Module()
    >>> holder.weights = [weight.value for weight in model.weights]
    >>> converter = tf.lite.TFLiteConverter.from_concrete_functions(
    ...     [translate.get_concrete_function()], holder)
    >>> converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    >>> tflite_bytes = converter.convert()
    """
    parts = [_check(model, max_length, start_id, end_id, pad_id)]
    _check_positive_int("beam_size", beam_size)
    alpha = float(length_penalty)

    @tf.function(input_signature=[tf.TensorSpec((None, None), tf.int32, "encoder_token_ids")])
    def translate(encoder_token_ids):
        if beam_size > 1:
            out = _beam(
                parts, encoder_token_ids, max_length, beam_size, alpha, start_id, end_id, pad_id
            )
            return out[0] if isinstance(out, tuple) else out
        return _greedy(parts, encoder_token_ids, max_length, start_id, end_id, pad_id, True)

    return translate


def truncate_after_end(token_ids, end_id=3, pad_id=0):
    """Sets every id after the first `end_id` of each row to `pad_id` (the end id stays).

    Args:
        token_ids: (B, T) int ids.

    Returns:
        int32 tensor (B, T).
    """
    token_ids = tf.cast(token_ids, tf.int32)
    is_end = tf.cast(tf.equal(token_ids, end_id), tf.int32)
    after_end = tf.cumsum(is_end, axis=1, exclusive=True) > 0
    return tf.where(after_end, tf.constant(pad_id, tf.int32), token_ids)


# Graph code. Everything below runs inside a tf.function. `members` is a list of
# `Seq2SeqParts`: one model, or the models of an ensemble, each with its own caches.


def _encode(parts, source):
    """(B, S) ids -> encoder output (B, S, D) and padding mask (B, S)."""
    padding_mask = parts.encoder_padding_mask(source)
    x = parts.encoder_embedding(source)
    return parts.encoder(x, padding_mask=padding_mask, training=False), padding_mask


def _logits(parts, states):
    """(B, t, D) decoder states -> float32 (B, t, V) logits, as the model's `logits` layer."""
    if parts.output_projection is None:
        logits = parts.decoder_embedding(states, reverse=True)
    else:
        logits = parts.output_projection(states)
    return tf.cast(logits, tf.float32)


def _combine(logits):
    """One member's logits as they are; an ensemble's log of the mean probability."""
    if len(logits) == 1:
        return logits[0]
    log_probs = tf.stack([tf.nn.log_softmax(z) for z in logits], axis=0)  # (M, B, V)
    return tf.reduce_logsumexp(log_probs, axis=0) - tf.math.log(float(len(logits)))


def _cached_step(parts, tokens, index, encoder_out, encoder_mask, self_cache, cross_cache):
    """One new token per row: (B, 1) ids at position `index` -> (B, V) logits, new cache."""
    y = parts.decoder_embedding(tokens, start_index=index)  # (B, 1, D)
    y, self_cache = parts.decoder(
        y,
        encoder_out,
        encoder_padding_mask=encoder_mask,
        training=False,
        self_attention_cache=self_cache,
        self_attention_cache_update_index=index,
        cross_attention_cache=cross_cache,
    )
    return _logits(parts, y)[:, 0], self_cache


def _members_step(members, tokens, index, encoded, caches, cross_caches):
    """`_cached_step` for every member: (B, V) combined logits and the tuple of caches."""
    logits, new_caches = [], []
    for parts, (out, mask), cache, cross in zip(
        members, encoded, caches, cross_caches, strict=True
    ):
        step_logits, cache = _cached_step(parts, tokens, index, out, mask, cache, cross)
        logits.append(step_logits)
        new_caches.append(cache)
    return _combine(logits), tuple(new_caches)


def _full_step(parts, prefix, encoder_out, encoder_mask):
    """The whole prefix (B, t) again -> (B, V) logits of its last position."""
    y = parts.decoder_embedding(prefix)  # (B, t, D)
    # No decoder padding mask: rows still decoding hold no pad, as in the cached path.
    y = parts.decoder(y, encoder_out, encoder_padding_mask=encoder_mask, training=False)
    return _logits(parts, y[:, -1:])[:, 0]


def _empty_caches(members, batch, max_length):
    return tuple(
        p.decoder.empty_self_attention_cache(batch, max_length, dtype=p.decoder.compute_dtype)
        for p in members
    )  # each (B, 2L, T, N, H)


def _forbid_pad(logits, pad_id):
    vocabulary = tf.range(tf.shape(logits)[-1])
    return tf.where(tf.equal(vocabulary, pad_id), tf.constant(_NEG, logits.dtype), logits)


def _greedy(members, source, max_length, start_id, end_id, pad_id, use_cache):
    source = tf.cast(source, tf.int32)
    batch = tf.shape(source)[0]
    encoded = [_encode(p, source) for p in members]
    positions = tf.range(max_length)[tf.newaxis]  # (1, T)
    start = tf.fill(tf.stack([batch, 1]), start_id)  # (B, 1)
    if use_cache:
        cache = _empty_caches(members, batch, max_length)
        cross_caches = [
            p.decoder.compute_cross_attention_cache(out)
            for p, (out, _) in zip(members, encoded, strict=True)
        ]
    else:
        cache = tf.zeros(())  # unused loop variable

    def body(i, token_ids, finished, last, cache):
        if use_cache:
            logits, cache = _members_step(members, last, i, encoded, cache, cross_caches)
        else:
            prefix = tf.concat([start, token_ids[:, :i]], axis=1)  # (B, i + 1)
            logits = _combine(
                [
                    _full_step(p, prefix, out, mask)
                    for p, (out, mask) in zip(members, encoded, strict=True)
                ]
            )
        # tf.argmax, not keras.ops.argmax: the latter needs a Flex op in TFLite.
        token = tf.argmax(_forbid_pad(logits, pad_id), axis=-1, output_type=tf.int32)  # (B,)
        token = tf.where(finished, tf.constant(pad_id, tf.int32), token)
        token_ids = tf.where(tf.equal(positions, i), token[:, tf.newaxis], token_ids)
        finished = tf.logical_or(finished, tf.equal(token, end_id))
        return i + 1, token_ids, finished, token[:, tf.newaxis], cache

    def cond(i, token_ids, finished, last, cache):
        return tf.logical_and(i < max_length, tf.logical_not(tf.reduce_all(finished)))

    loop_vars = (
        tf.constant(0),
        tf.fill(tf.stack([batch, max_length]), pad_id),
        tf.zeros(tf.stack([batch]), tf.bool),
        start,
        cache,
    )
    return tf.while_loop(cond, body, loop_vars)[1]


def _beam(members, source, max_length, beam_size, alpha, start_id, end_id, pad_id):
    source = tf.cast(source, tf.int32)
    k = beam_size
    batch = tf.shape(source)[0]
    # Row b * K + j of the tiled tensors belongs to beam j of input b.
    encoded = [
        (tf.repeat(out, k, axis=0), tf.repeat(mask, k, axis=0))  # (B * K, S, D), (B * K, S)
        for out, mask in (_encode(p, source) for p in members)
    ]
    cross_caches = [
        p.decoder.compute_cross_attention_cache(out)
        for p, (out, _) in zip(members, encoded, strict=True)
    ]
    cache = _empty_caches(members, batch * k, max_length)  # each (B * K, 2L, T, N, H)
    vocabulary_size = members[0].decoder_embedding.vocabulary_size
    positions = tf.range(max_length)  # (T,)
    rank_in_top_k = tf.range(2 * k) < k  # (2K,)
    beam_offsets = tf.range(batch)[:, tf.newaxis] * k  # (B, 1)

    def body(i, alive_ids, alive_log_p, last, cache, finished_ids, finished_scores, done):
        logits, cache = _members_step(
            members, tf.reshape(last, [-1, 1]), i, encoded, cache, cross_caches
        )  # (B * K, V)
        log_p = tf.nn.log_softmax(_forbid_pad(logits, pad_id))
        log_p = tf.reshape(log_p, [batch, k, vocabulary_size])  # (B, K, V)
        flat = tf.reshape(alive_log_p[:, :, tf.newaxis] + log_p, [batch, k * vocabulary_size])
        # 2K candidates: at most K of them end (one per beam), so K always live on.
        cand_log_p, cand_index = tf.math.top_k(flat, k=2 * k)  # (B, 2K)
        cand_beam = cand_index // vocabulary_size
        cand_token = cand_index % vocabulary_size
        cand_ids = tf.gather(alive_ids, cand_beam, batch_dims=1)  # (B, 2K, T)
        cand_ids = tf.where(tf.equal(positions, i), cand_token[:, :, tf.newaxis], cand_ids)
        is_end = tf.equal(cand_token, end_id)

        # Finish the ended hypotheses among the K best candidates (all K at the last step).
        last_step = tf.equal(i, max_length - 1)
        finish = tf.logical_and(rank_in_top_k, tf.logical_or(is_end, last_step))
        finish = tf.logical_and(finish, cand_log_p > _NEG / 2)
        finish = tf.logical_and(finish, tf.logical_not(done)[:, tf.newaxis])
        penalty = ((5.0 + tf.cast(i + 1, tf.float32)) / 6.0) ** alpha
        new_scores = tf.where(finish, cand_log_p / penalty, _NEG)[:, :k]  # (B, K)
        # Earlier hypotheses come first, so they win ties (top_k keeps the lower index).
        merged_scores = tf.concat([finished_scores, new_scores], axis=1)  # (B, 2K)
        merged_ids = tf.concat([finished_ids, cand_ids[:, :k]], axis=1)  # (B, 2K, T)
        finished_scores, keep = tf.math.top_k(merged_scores, k=k)  # (B, K)
        finished_ids = tf.gather(merged_ids, keep, batch_dims=1)  # (B, K, T)

        # The K best candidates that did not end stay alive.
        alive_log_p, survivors = tf.math.top_k(tf.where(is_end, _NEG, cand_log_p), k=k)
        alive_ids = tf.gather(cand_ids, survivors, batch_dims=1)  # (B, K, T)
        last = tf.gather(cand_token, survivors, batch_dims=1)  # (B, K)
        parents = tf.gather(cand_beam, survivors, batch_dims=1) + beam_offsets  # (B, K)
        cache = tuple(tf.gather(c, tf.reshape(parents, [-1]), axis=0) for c in cache)

        num_finished = tf.reduce_sum(tf.cast(finished_scores > _NEG / 2, tf.int32), axis=1)
        done = tf.logical_or(done, tf.logical_or(num_finished >= k, last_step))
        return i + 1, alive_ids, alive_log_p, last, cache, finished_ids, finished_scores, done

    def cond(i, *state):
        return tf.logical_and(i < max_length, tf.logical_not(tf.reduce_all(state[-1])))

    # Only beam 0 is possible at first: the K beams would otherwise all extend the same start.
    first = tf.concat([tf.zeros([1]), tf.fill([k - 1], _NEG)], axis=0)
    loop_vars = (
        tf.constant(0),
        tf.fill(tf.stack([batch, k, max_length]), pad_id),
        tf.tile(first[tf.newaxis], tf.stack([batch, 1])),
        tf.fill(tf.stack([batch, k]), start_id),
        cache,
        tf.fill(tf.stack([batch, k, max_length]), pad_id),
        tf.fill(tf.stack([batch, k]), _NEG),
        tf.zeros(tf.stack([batch]), tf.bool),
    )
    result = tf.while_loop(cond, body, loop_vars)
    return result[5][:, 0], result[6][:, 0]


# Validation and function caching.

# model -> {settings: tf.function}. Weak keys: the functions close over the model's layers,
# not the model, so a model that goes away takes its traced functions with it.
_FUNCTIONS = weakref.WeakKeyDictionary()


def _function(model, key, make):
    if isinstance(model, list | tuple):
        model = model[0]  # the other members are in the key
    try:
        table = _FUNCTIONS.setdefault(model, {})
    except TypeError:  # not weak-referenceable: trace each time
        return make()
    if key not in table:
        table[key] = make()
    return table[key]


def _member_ids(model):
    """Identity of an ensemble's other members, for the function cache key."""
    return tuple(id(m) for m in model[1:]) if isinstance(model, list | tuple) else ()


def _check_members(model, max_length, start_id, end_id, pad_id, source):
    """`_check` for one model or each model of a list; a list of their `Seq2SeqParts`."""
    models = list(model) if isinstance(model, list | tuple) else [model]
    if not models:
        raise ValueError("`model` is an empty list: give a model or a list of models.")
    members = [_check(m, max_length, start_id, end_id, pad_id, source) for m in models]
    sizes = {p.decoder_embedding.vocabulary_size for p in members}
    if len(sizes) > 1:
        raise ValueError(
            "The models of an ensemble must share one target vocabulary. Received "
            f"vocabulary sizes {sorted(sizes)}."
        )
    return members


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}.")


def _check_source(encoder_token_ids):
    source = tf.convert_to_tensor(encoder_token_ids)
    if source.shape.rank != 2:
        raise ValueError(
            "`encoder_token_ids` must have shape (batch, length); for one sentence pass "
            f"[ids]. Received: shape={tuple(source.shape)}."
        )
    if not source.dtype.is_integer:
        raise ValueError(
            f"`encoder_token_ids` must hold integer ids. Received: dtype={source.dtype.name}."
        )
    return tf.cast(source, tf.int32)


def _check(model, max_length, start_id, end_id, pad_id, source=None):
    """Validates the shared arguments and returns the model's `Seq2SeqParts`."""
    _check_positive_int("max_length", max_length)
    parts = seq2seq_parts(model)
    limit = parts.decoder_embedding.max_sequence_length
    if max_length > limit:
        raise ValueError(
            f"`max_length` can be at most the model's `max_sequence_length` ({limit}): the "
            f"decoder has no position beyond it. Received: max_length={max_length}."
        )
    vocabulary_size = parts.decoder_embedding.vocabulary_size
    ids = {"start_id": start_id, "end_id": end_id, "pad_id": pad_id}
    for name, value in ids.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Integral)
            or not 0 <= value < vocabulary_size
        ):
            raise ValueError(
                f"`{name}` must be a token id in [0, {vocabulary_size}) (the target "
                f"vocabulary). Received: {name}={value!r}."
            )
    if len(set(ids.values())) < 3:
        raise ValueError(f"`start_id`, `end_id` and `pad_id` must differ. Received: {ids}.")
    model_pad = parts.encoder_padding_mask.pad_token_id
    if pad_id != model_pad:
        raise ValueError(
            f"`pad_id` must be the model's pad id ({model_pad}), which its padding masks "
            f"use. Received: pad_id={pad_id}."
        )
    if source is not None:
        length = source.shape[1]
        source_limit = parts.encoder_embedding.max_sequence_length
        if length is not None and length > source_limit:
            raise ValueError(
                f"`encoder_token_ids` can be at most {source_limit} tokens long (the "
                f"model's `max_sequence_length`); truncate them first. Received: "
                f"length={length}."
            )
    return parts
