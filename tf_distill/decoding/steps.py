"""Graph pieces shared by the greedy and beam loops: encoding, one cached decoder step
per member of an ensemble, logits, combining members, the key/value caches.

Everything here runs inside a `tf.function`. `members` is a list of
`tf_distill.models.Seq2SeqParts`: one model, or the models of an ensemble, each with its
own caches.

Legend: B batch, S source length, T `max_length`, K beam size, V target vocabulary,
D model width, L decoder layers, N heads, H head size.
"""

import tensorflow as tf

# Log-probability of an impossible hypothesis. Finite, so that sums and the length penalty
# never produce NaN; anything below NEG / 2 counts as impossible.
NEG = -1.0e9


def encode(parts, source):
    """(B, S) ids -> encoder output (B, S, D) and padding mask (B, S)."""
    padding_mask = parts.encoder_padding_mask(source)
    x = parts.encoder_embedding(source)
    return parts.encoder(x, padding_mask=padding_mask, training=False), padding_mask


def logits(parts, states):
    """(B, t, D) decoder states -> float32 (B, t, V) logits, as the model's `logits` layer."""
    if parts.output_projection is None:
        logits = parts.decoder_embedding(states, reverse=True)
    else:
        logits = parts.output_projection(states)
    return tf.cast(logits, tf.float32)


def combine(logits):
    """One member's logits as they are; an ensemble's log of the mean probability."""
    if len(logits) == 1:
        return logits[0]
    log_probs = tf.stack([tf.nn.log_softmax(z) for z in logits], axis=0)  # (M, B, V)
    return tf.reduce_logsumexp(log_probs, axis=0) - tf.math.log(float(len(logits)))


def cached_step(parts, tokens, index, encoder_out, encoder_mask, self_cache, cross_cache):
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
    return logits(parts, y)[:, 0], self_cache


def members_step(members, tokens, index, encoded, caches, cross_caches):
    """`_cached_step` for every member: (B, V) combined logits and the tuple of caches."""
    logits, new_caches = [], []
    for parts, (out, mask), cache, cross in zip(
        members, encoded, caches, cross_caches, strict=True
    ):
        step_logits, cache = cached_step(parts, tokens, index, out, mask, cache, cross)
        logits.append(step_logits)
        new_caches.append(cache)
    return combine(logits), tuple(new_caches)


def full_step(parts, prefix, encoder_out, encoder_mask):
    """The whole prefix (B, t) again -> (B, V) logits of its last position."""
    y = parts.decoder_embedding(prefix)  # (B, t, D)
    # No decoder padding mask: rows still decoding hold no pad, as in the cached path.
    y = parts.decoder(y, encoder_out, encoder_padding_mask=encoder_mask, training=False)
    return logits(parts, y[:, -1:])[:, 0]


def empty_caches(members, batch, max_length):
    return tuple(
        p.decoder.empty_self_attention_cache(batch, max_length, dtype=p.decoder.compute_dtype)
        for p in members
    )  # each (B, 2L, T, N, H)


def forbid_pad(logits, pad_id):
    vocabulary = tf.range(tf.shape(logits)[-1])
    return tf.where(tf.equal(vocabulary, pad_id), tf.constant(NEG, logits.dtype), logits)
