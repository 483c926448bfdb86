"""The beam search loop (GNMT length penalty, fairseq's 2K candidates), one
`tf.while_loop` that stops once every input has K finished hypotheses.

Legend: B batch, S source length, T `max_length`, K beam size, V target vocabulary,
D model width.
"""

import collections

import tensorflow as tf

from tf_distill.decoding import lean as lean_lib
from tf_distill.decoding import steps

NEG = steps.NEG

BeamState = collections.namedtuple(
    "BeamState",
    [
        "step",  # () int32: the position being written
        "alive_ids",  # (B, K, T) int32: the live hypotheses
        "alive_log_p",  # (B, K) float32: their log-probabilities
        "last",  # (B, K) int32: the token each live hypothesis ends with
        "cache",  # tuple of each member's (B * K, 2L, T, N, H) self-attention cache
        "finished_ids",  # (B, K, T) int32: the best finished hypotheses so far
        "finished_scores",  # (B, K) float32: their length-penalised scores (NEG: none)
        "done",  # (B,) bool: the input needs no more steps
    ],
)


def beam_loop(members, source, max_length, beam_size, alpha, start_id, end_id, pad_id, lean=False):
    """(B, S) source ids -> the best hypothesis per input, int32 (B, T), and its score,
    float32 (B,), as `tf_distill.decoding.beam_search` defines them.

    `lean`: one model's steps run through `tf_distill.decoding.lean.LeanDecoder` (the same
    scores up to float rounding, about half the TFLite ops per step; for export)."""
    source = tf.cast(source, tf.int32)
    k = beam_size
    batch = tf.shape(source)[0]
    # Row b * K + j of the tiled tensors belongs to beam j of input b.
    if lean:
        (member,) = members
        encoded = lean_lib.encode(member, source)
        decoder = lean_lib.LeanDecoder(member, encoded, max_length, pad_id, repeat=k)
    else:
        encoded = [
            (tf.repeat(out, k, axis=0), tf.repeat(mask, k, axis=0))  # (B * K, S, D), (B * K, S)
            for out, mask in (steps.encode(p, source) for p in members)
        ]
        cross_caches = [
            p.decoder.compute_cross_attention_cache(out)
            for p, (out, _) in zip(members, encoded, strict=True)
        ]
    vocabulary_size = members[0].decoder_embedding.vocabulary_size
    positions = tf.range(max_length)  # (T,)
    rank_in_top_k = tf.range(2 * k) < k  # (2K,)
    beam_offsets = tf.range(batch)[:, tf.newaxis] * k  # (B, 1)

    def body(s):  # one loop variable: returns a 1-tuple
        i = s.step
        if lean:  # the pad token is forbidden by the logits' bias
            logits, cache = decoder.step(tf.reshape(s.last, [-1]), i, s.cache)  # (B * K, V)
        else:
            logits, cache = steps.members_step(
                members, tf.reshape(s.last, [-1, 1]), i, encoded, s.cache, cross_caches
            )
            logits = steps.forbid_pad(logits, pad_id)
        log_p = tf.nn.log_softmax(logits)
        log_p = tf.reshape(log_p, [batch, k, vocabulary_size])  # (B, K, V)
        flat = tf.reshape(s.alive_log_p[:, :, tf.newaxis] + log_p, [batch, k * vocabulary_size])
        # 2K candidates: at most K of them end (one per beam), so K always live on.
        cand_log_p, cand_index = tf.math.top_k(flat, k=2 * k)  # (B, 2K)
        cand_beam = cand_index // vocabulary_size
        cand_token = cand_index % vocabulary_size
        cand_ids = tf.gather(s.alive_ids, cand_beam, batch_dims=1)  # (B, 2K, T)
        cand_ids = tf.where(tf.equal(positions, i), cand_token[:, :, tf.newaxis], cand_ids)
        is_end = tf.equal(cand_token, end_id)

        # Finish the ended hypotheses among the K best candidates (all K at the last step).
        last_step = tf.equal(i, max_length - 1)
        finish = tf.logical_and(rank_in_top_k, tf.logical_or(is_end, last_step))
        finish = tf.logical_and(finish, cand_log_p > NEG / 2)
        finish = tf.logical_and(finish, tf.logical_not(s.done)[:, tf.newaxis])
        penalty = ((5.0 + tf.cast(i + 1, tf.float32)) / 6.0) ** alpha
        new_scores = tf.where(finish, cand_log_p / penalty, NEG)[:, :k]  # (B, K)
        # Earlier hypotheses come first, so they win ties (top_k keeps the lower index).
        merged_scores = tf.concat([s.finished_scores, new_scores], axis=1)  # (B, 2K)
        merged_ids = tf.concat([s.finished_ids, cand_ids[:, :k]], axis=1)  # (B, 2K, T)
        finished_scores, keep = tf.math.top_k(merged_scores, k=k)  # (B, K)
        finished_ids = tf.gather(merged_ids, keep, batch_dims=1)  # (B, K, T)

        # The K best candidates that did not end stay alive.
        alive_log_p, survivors = tf.math.top_k(tf.where(is_end, NEG, cand_log_p), k=k)
        parents = tf.gather(cand_beam, survivors, batch_dims=1) + beam_offsets  # (B, K)
        num_finished = tf.reduce_sum(tf.cast(finished_scores > NEG / 2, tf.int32), axis=1)
        return (
            BeamState(
                step=i + 1,
                alive_ids=tf.gather(cand_ids, survivors, batch_dims=1),  # (B, K, T)
                alive_log_p=alive_log_p,
                last=tf.gather(cand_token, survivors, batch_dims=1),  # (B, K)
                cache=tuple(tf.gather(c, tf.reshape(parents, [-1]), axis=0) for c in cache),
                finished_ids=finished_ids,
                finished_scores=finished_scores,
                done=tf.logical_or(s.done, tf.logical_or(num_finished >= k, last_step)),
            ),
        )

    def cond(s):
        return tf.logical_and(s.step < max_length, tf.logical_not(tf.reduce_all(s.done)))

    # Only beam 0 is possible at first: the K beams would otherwise all extend the same start.
    first = tf.concat([tf.zeros([1]), tf.fill([k - 1], NEG)], axis=0)
    initial = BeamState(
        step=tf.constant(0),
        alive_ids=tf.fill(tf.stack([batch, k, max_length]), pad_id),
        alive_log_p=tf.tile(first[tf.newaxis], tf.stack([batch, 1])),
        last=tf.fill(tf.stack([batch, k]), start_id),
        cache=(
            decoder.empty_caches(batch * k)
            if lean
            else steps.empty_caches(members, batch * k, max_length)
        ),
        finished_ids=tf.fill(tf.stack([batch, k, max_length]), pad_id),
        finished_scores=tf.fill(tf.stack([batch, k]), NEG),
        done=tf.zeros(tf.stack([batch]), tf.bool),
    )
    (final,) = tf.while_loop(cond, body, (initial,))
    return final.finished_ids[:, 0], final.finished_scores[:, 0]
