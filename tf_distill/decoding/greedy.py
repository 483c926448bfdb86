"""The greedy decoding loop: the most likely next token at every step, one
`tf.while_loop` over at most `max_length` steps that stops once every row has ended.

Legend: B batch, T `max_length`, V target vocabulary.
"""

import collections

import tensorflow as tf

from tf_distill.decoding import steps

GreedyState = collections.namedtuple(
    "GreedyState",
    [
        "step",  # () int32: the position being written
        "token_ids",  # (B, T) int32: the output so far, pad after it
        "finished",  # (B,) bool: the row has produced the end token
        "last",  # (B, 1) int32: the token the next step reads
        "cache",  # tuple of each member's (B, 2L, T, N, H) self-attention cache
    ],
)


def greedy_loop(members, source, max_length, start_id, end_id, pad_id, use_cache):
    """(B, S) source ids -> (B, T) greedy output ids (the module's output format).

    Args:
        members: the `Seq2SeqParts` of one model or of each model of an ensemble.
        use_cache: decode with the key/value cache, or (False) re-run the decoder on the
            whole prefix at each step (the slow reference the cache is tested against).
    """
    source = tf.cast(source, tf.int32)
    batch = tf.shape(source)[0]
    encoded = [steps.encode(p, source) for p in members]
    positions = tf.range(max_length)[tf.newaxis]  # (1, T)
    start = tf.fill(tf.stack([batch, 1]), start_id)  # (B, 1)
    if use_cache:
        cache = steps.empty_caches(members, batch, max_length)
        cross_caches = [
            p.decoder.compute_cross_attention_cache(out)
            for p, (out, _) in zip(members, encoded, strict=True)
        ]
    else:
        cache = tf.zeros(())  # unused

    def next_logits(state):
        if use_cache:
            return steps.members_step(
                members, state.last, state.step, encoded, state.cache, cross_caches
            )
        prefix = tf.concat([start, state.token_ids[:, : state.step]], axis=1)  # (B, i + 1)
        logits = [
            steps.full_step(p, prefix, out, mask)
            for p, (out, mask) in zip(members, encoded, strict=True)
        ]
        return steps.combine(logits), state.cache

    def body(state):  # one loop variable: returns a 1-tuple
        logits, cache = next_logits(state)  # (B, V)
        # tf.argmax, not keras.ops.argmax: the latter needs a Flex op in TFLite.
        token = tf.argmax(steps.forbid_pad(logits, pad_id), axis=-1, output_type=tf.int32)
        token = tf.where(state.finished, tf.constant(pad_id, tf.int32), token)  # (B,)
        written = tf.equal(positions, state.step)
        return (
            GreedyState(
                step=state.step + 1,
                token_ids=tf.where(written, token[:, tf.newaxis], state.token_ids),
                finished=tf.logical_or(state.finished, tf.equal(token, end_id)),
                last=token[:, tf.newaxis],
                cache=cache,
            ),
        )

    def cond(state):
        return tf.logical_and(
            state.step < max_length, tf.logical_not(tf.reduce_all(state.finished))
        )

    initial = GreedyState(
        step=tf.constant(0),
        token_ids=tf.fill(tf.stack([batch, max_length]), pad_id),
        finished=tf.zeros(tf.stack([batch]), tf.bool),
        last=start,
        cache=cache,
    )
    (final,) = tf.while_loop(cond, body, (initial,))
    return final.token_ids
