"""The teacher's outputs on the training data, computed once and kept as its top k logits.

Token-level distillation runs the frozen teacher on every batch of every epoch; at
`configs/small.json`'s sizes that forward pass is close to half of a student's step. The
teacher's logits for a given training pair never change, so `teacher_top_k` computes them
once and keeps the k most likely tokens per target position (ids and log probabilities
at the distillation temperature). Passed to `make_seq2seq_dataset(..., extra_columns=...)`,
they ride along in each batch, and `Distiller` then trains against them
(`losses.top_k_kl_per_token`) without calling the teacher. With k = V the loss equals the
live teacher's; with a smaller k the probability left outside the top k is spread evenly
over the other tokens.

Memory: 8 bytes per (pair, position, k): 17,000 pairs x 41 positions x k = 8 is 45 MB.
"""

import logging
import time

import numpy as np
import tensorflow as tf

from tf_distill import losses
from tf_distill.data import make_seq2seq_dataset
from tf_distill.distiller import TEACHER_TEMPERATURE, TEACHER_TOP_IDS, TEACHER_TOP_LOG_PROBS

_LOG = logging.getLogger(__name__)


def teacher_top_k(
    teacher,
    pairs,
    source_tokenizer,
    target_tokenizer,
    max_sequence_length,
    k,
    temperature=1.0,
    bucket_lengths=None,
    batch_size=128,
):
    """The teacher's k most likely tokens at every target position of every pair.

    Args:
        teacher: a Keras seq2seq model returning (B, T, V) logits, or a list of them (an
            ensemble: the mean of their probabilities at `temperature`, as `Distiller`
            uses it); runs with `training=False`.
        pairs: the `(source, target)` pairs the student will train on, in the order given
            to `make_seq2seq_dataset`.
        source_tokenizer, target_tokenizer, max_sequence_length, bucket_lengths: as for
            `make_seq2seq_dataset` (the teacher sees the same token ids as the student).
        k: how many tokens to keep per position, 1 <= k; more than V keeps V.
        temperature: T of the log probabilities, log softmax(z_t / T): the temperature the
            `Distiller` trains at.
        batch_size: pairs per teacher call.

    Returns:
        `{"teacher_top_ids": int32 (N, L, k), "teacher_top_log_probs": float32 (N, L, k),
        "teacher_temperature": float32 (N,)}` (the temperature, which `Distiller` checks),
        L = `bucket_lengths[-1]` (or `max_sequence_length`); positions past the pair's
        bucket length are 0 (padding, which the loss masks). Give it as `extra_columns`
        to `make_seq2seq_dataset` with the same pairs in the same order.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"`k` must be an integer >= 1. Received: k={k!r}.")
    if not float(temperature) > 0:
        raise ValueError(f"`temperature` must be positive. Received: {temperature!r}.")
    pairs = list(pairs)
    teachers = list(teacher) if isinstance(teacher, list | tuple) else [teacher]
    vocab = int(teachers[0].outputs[0].shape[-1])
    k = min(int(k), vocab)
    width = int(bucket_lengths[-1]) if bucket_lengths else int(max_sequence_length)
    dataset = make_seq2seq_dataset(
        pairs,
        source_tokenizer,
        target_tokenizer,
        batch_size=batch_size,
        max_sequence_length=max_sequence_length,
        bucket_lengths=bucket_lengths,
        shuffle=False,
        extra_columns={"row": np.arange(len(pairs), dtype="int64")},
    )

    @tf.function(reduce_retracing=True)
    def top(inputs):
        members = [tf.cast(t(inputs, training=False), tf.float32) for t in teachers]
        logits = losses.ensemble_logits(members, temperature)
        values, ids = tf.math.top_k(tf.nn.log_softmax(logits / float(temperature)), k=k)
        return ids, values

    top_ids = np.zeros((len(pairs), width, k), dtype="int32")
    top_log_probs = np.zeros((len(pairs), width, k), dtype="float32")
    batches = int(dataset.cardinality())
    start = last = time.perf_counter()
    for i, (inputs, _) in enumerate(dataset):
        rows = inputs.pop("row").numpy()
        ids, values = top(inputs)
        length = ids.shape[1]
        top_ids[rows, :length] = ids.numpy()
        top_log_probs[rows, :length] = values.numpy()
        if time.perf_counter() - last > 30 or i + 1 == batches:
            last = time.perf_counter()
            _LOG.info(f"teacher outputs: {i + 1}/{batches} batches, {last - start:.0f} s")
    return {
        TEACHER_TOP_IDS: top_ids,
        TEACHER_TOP_LOG_PROBS: top_log_probs,
        TEACHER_TEMPERATURE: np.full((len(pairs),), temperature, "float32"),
    }
