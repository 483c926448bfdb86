"""Loss terms of knowledge distillation, per target token, in float32.

For each real (non-pad) target token, with student logits z_s, teacher logits z_t,
true id y and temperature T (Hinton et al., 2015):

    CE = -log softmax(z_s)[y]
    KD = T^2 * sum_v p_t(v) * (log p_t(v) - log p_s(v)),   p = softmax(z / T)

Everything is computed from `log_softmax`, never from probabilities, so no clipping and no
log(0). The T^2 factor keeps the soft-target gradients on the same scale as the hard-target
ones when T changes (their magnitude shrinks as 1/T^2).

Legend: B batch, T target length, V vocabulary (or classes C).
"""

import tensorflow as tf


def token_mask(y_true, logits, pad_token_id=0, sample_weight=None):
    """Float32 weights of shape `y_true.shape`: 0 for pads, 1 (or `sample_weight`) otherwise.

    Class labels (rank-2 logits) have no padding, so every row counts.
    """
    if len(logits.shape) == 3:
        mask = tf.cast(tf.not_equal(tf.cast(y_true, tf.int32), pad_token_id), tf.float32)
    else:
        mask = tf.ones(tf.shape(y_true), tf.float32)
    if sample_weight is not None:
        weight = tf.cast(sample_weight, tf.float32)
        if len(weight.shape) < len(mask.shape):
            weight = tf.reshape(weight, tf.concat([tf.shape(weight), [1]], 0))
        mask = mask * weight
    return mask


def cross_entropy_per_token(y_true, logits):
    """-log softmax(logits)[y]: (B, T) for (B, T, V) logits, (B,) for (B, C)."""
    logits = tf.cast(logits, tf.float32)
    # Ids outside the vocabulary can only sit at masked positions (pads); clip them so the
    # fused op, which rejects them, still runs. The fused op never builds a (B, T, V)
    # one-hot: that dense product cost ~8% of a distillation step at V = 8000.
    labels = tf.clip_by_value(tf.cast(y_true, tf.int32), 0, tf.shape(logits)[-1] - 1)
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)


def kl_per_token(teacher_logits, student_logits, temperature):
    """T^2 * KL(softmax(z_t / T) || softmax(z_s / T)) over the last axis (V or C)."""
    t = tf.constant(float(temperature), tf.float32)
    teacher_log_probs = tf.nn.log_softmax(tf.cast(teacher_logits, tf.float32) / t, axis=-1)
    student_log_probs = tf.nn.log_softmax(tf.cast(student_logits, tf.float32) / t, axis=-1)
    kl = tf.reduce_sum(tf.exp(teacher_log_probs) * (teacher_log_probs - student_log_probs), axis=-1)
    return t * t * kl


def masked_mean(values, mask):
    """sum(values * mask) / sum(mask), 0 when the mask is empty."""
    total = tf.reduce_sum(values * mask)
    return tf.math.divide_no_nan(total, tf.reduce_sum(mask))


def distillation_loss(
    y_true,
    student_logits,
    teacher_logits,
    alpha=0.5,
    temperature=2.0,
    pad_token_id=0,
    sample_weight=None,
):
    """The full objective on one batch, as scalars: `(loss, student_loss, distillation_loss)`.

    `loss = alpha * student_loss + (1 - alpha) * distillation_loss`, where both terms are
    means over real tokens and `distillation_loss` already includes T^2.
    """
    y_true = tf.convert_to_tensor(y_true)
    student_logits = tf.convert_to_tensor(student_logits)
    mask = token_mask(y_true, student_logits, pad_token_id, sample_weight)
    student_loss = masked_mean(cross_entropy_per_token(y_true, student_logits), mask)
    kd = masked_mean(kl_per_token(teacher_logits, student_logits, temperature), mask)
    return alpha * student_loss + (1.0 - alpha) * kd, student_loss, kd
