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


def ensemble_logits(logits, temperature):
    """Logits whose softmax at `temperature` is the mean of the members' softmaxes at it.

    For members z_1..z_n: `T * log(mean_i softmax(z_i / T))`, computed with
    `reduce_logsumexp` over log softmaxes (no log(0)). One member is returned unchanged.

    Args:
        logits: a list of n same-shape logits tensors, (..., V).
        temperature: T > 0.

    Returns:
        float32 tensor of the members' shape.
    """
    if len(logits) == 1:
        return logits[0]
    t = float(temperature)
    log_probs = tf.stack(
        [tf.nn.log_softmax(tf.cast(z, tf.float32) / t, axis=-1) for z in logits], axis=0
    )
    count = tf.math.log(float(len(logits)))
    return t * (tf.reduce_logsumexp(log_probs, axis=0) - count)


def top_k_kl_per_token(top_ids, top_log_probs, student_logits, temperature):
    """T^2 * KL(p_t || softmax(z_s / T)) with the teacher kept as its k most likely tokens.

    `top_log_probs` are the teacher's log softmax(z_t / T) at `top_ids` (at the same T).
    The probability they leave, r = 1 - sum(p_t over the k), is spread evenly over the other
    V - k tokens, so the cost per token is one log_softmax of the student, a gather and a
    sum, and a cached teacher needs k ids and k values per token instead of V. With k = V
    this is exactly `kl_per_token`; with k < V it differs from it only in the shape of the
    teacher's tail (mass r), not in its size. Keeping only the teacher's top entries is the
    "top-K distillation" of Tan et al. (2019, "Multilingual Neural Machine Translation with
    Knowledge Distillation"). The gradient with respect to z_s is T * (softmax(z_s / T) -
    the teacher's probabilities as above, spread onto the vocabulary).

    Args:
        top_ids: int (B, T, k) vocabulary ids of the teacher's most likely tokens.
        top_log_probs: (B, T, k) the teacher's log probabilities (at temperature T) there.
        student_logits: (B, T, V).
        temperature: T > 0.

    Returns:
        float32 (B, T).
    """
    t = tf.constant(float(temperature), tf.float32)
    teacher_log_probs = tf.stop_gradient(tf.cast(top_log_probs, tf.float32))
    teacher_probs = tf.exp(teacher_log_probs)
    student_log_probs = tf.nn.log_softmax(tf.cast(student_logits, tf.float32) / t, axis=-1)
    ids = tf.cast(top_ids, tf.int32)
    at_ids = tf.gather(student_log_probs, ids, batch_dims=len(student_logits.shape) - 1)
    kl = tf.reduce_sum(teacher_probs * (teacher_log_probs - at_ids), axis=-1)
    # The tail: mass r over V - k tokens, r / (V - k) each.
    rest = tf.cast(tf.shape(student_log_probs)[-1] - tf.shape(ids)[-1], tf.float32)
    r = tf.maximum(1.0 - tf.reduce_sum(teacher_probs, axis=-1), 0.0)
    r = tf.where(rest > 0, r, 0.0)  # k = V: no tail, whatever the rounding left in r
    each = tf.math.divide_no_nan(r, rest)
    rest_log_probs = tf.reduce_sum(student_log_probs, axis=-1) - tf.reduce_sum(at_ids, axis=-1)
    kl += tf.math.xlogy(r, each) - each * rest_log_probs
    return t * t * kl


def token_terms(
    y_true, student_logits, teacher_logits=None, temperature=1.0, xla=True, label_smoothing=0.0
):
    """Per-token CE, T^2 KL and correctness in one pass, with a hand-written gradient.

    Equal to `cross_entropy_per_token`, `kl_per_token` and `argmax(z_s) == y`, but the
    gradient with respect to z_s is written out instead of derived through two
    `log_softmax`s (using sum_v p_t(v) = 1):

        dCE/dz_s = softmax(z_s) - onehot(y),   dKD/dz_s = T * (softmax(z_s / T) - p_t)

    With `xla=True` (for a function compiled with `jit_compile=True`) the three terms share
    one max over the student's logits, which XLA fuses with the rest; that halves the time of
    the loss and its gradient at V = 8000. With `xla=False` the CE and its gradient come from
    TensorFlow's fused sparse softmax kernel instead, which is faster without XLA. Both give
    the same values (see bench/loss_step.py and docs/BENCHMARKS.md). Only the student's
    logits get a gradient.

    With `label_smoothing` eps > 0 the CE target is `(1 - eps) * onehot(y) + eps / V`
    (Szegedy et al., 2016), so `CE = (1 - eps) * CE_y + eps * mean_v(-log softmax(z_s)[v])`
    and `dCE/dz_s = softmax(z_s) - (1 - eps) * onehot(y) - eps / V`. The KD term is unchanged.

    Args:
        y_true: int labels, (B, T) for token logits, (B,) for class logits.
        student_logits: (B, T, V) or (B, C).
        teacher_logits: same shape as `student_logits`, or None (then KD is 0).
        temperature: T > 0 of the KD term.
        xla: whether the caller runs under XLA (picks the faster form; same results).
        label_smoothing: eps in [0, 1) of the CE target (0: plain one-hot).

    Returns:
        `(ce, kd, correct)`, each float32 of the labels' shape. `correct` is 1 where the
        label's logit is the largest (under `xla=True` a tie for the largest counts too).
    """
    t = float(temperature)
    eps = float(label_smoothing)
    if not 0.0 <= eps < 1.0:
        raise ValueError(f"`label_smoothing` must be in [0, 1). Received: {label_smoothing!r}.")
    logits = tf.cast(student_logits, tf.float32)
    vocab = tf.shape(logits)[-1]
    # Ids outside the vocabulary can only sit at masked positions (pads); clip them.
    labels = tf.clip_by_value(tf.cast(y_true, tf.int32), 0, vocab - 1)
    if teacher_logits is not None:
        teacher_logits = tf.stop_gradient(tf.cast(teacher_logits, tf.float32))
        teacher_log_probs = tf.nn.log_softmax(teacher_logits / t, axis=-1)
        teacher_probs = tf.exp(teacher_log_probs)
    ce_terms = _ce_terms_xla if xla else _ce_terms_kernels

    @tf.custom_gradient
    def terms(logits):
        ce, correct, ce_gradient, soft_log_probs = ce_terms(logits, labels, vocab, t)
        if eps > 0.0:
            ce, ce_gradient = _smoothed(logits, labels, vocab, eps, ce, ce_gradient)
        if teacher_logits is None:
            kd = tf.zeros_like(ce)
        else:
            log_probs = soft_log_probs()
            kd = (t * t) * tf.reduce_sum(teacher_probs * (teacher_log_probs - log_probs), -1)

        def grad(d_ce, d_kd, d_correct):
            del d_correct  # an indicator: no gradient
            d_logits = d_ce[..., None] * ce_gradient()
            if teacher_logits is not None:
                d_logits += (t * d_kd)[..., None] * (tf.exp(log_probs) - teacher_probs)
            return d_logits

        return (ce, kd, correct), grad

    return terms(logits)


def _smoothed(logits, labels, vocab, eps, ce, ce_gradient):
    """CE and dCE/dz against the smoothed target, from the one-hot CE and its gradient:
    the uniform part adds eps * (logsumexp(z) - mean(z) - CE_y) and eps * (onehot - 1 / V)."""
    uniform_ce = tf.reduce_logsumexp(logits, axis=-1) - tf.reduce_mean(logits, axis=-1)
    smoothed_ce = (1.0 - eps) * ce + eps * uniform_ce
    inverse_vocab = 1.0 / tf.cast(vocab, tf.float32)

    def gradient():
        return ce_gradient() + eps * (tf.one_hot(labels, vocab, dtype=tf.float32) - inverse_vocab)

    return smoothed_ce, gradient


def _ce_terms_xla(logits, labels, vocab, t):
    """CE, correctness, and thunks for dCE/dz and log softmax(z / T), from one max."""
    shifted = logits - tf.reduce_max(logits, axis=-1, keepdims=True)  # max is 0
    log_sum = tf.math.log(tf.reduce_sum(tf.exp(shifted), axis=-1, keepdims=True))
    label_logit = tf.gather(shifted, labels[..., None], batch_dims=len(logits.shape) - 1)
    ce = tf.squeeze(log_sum - label_logit, -1)
    correct = tf.cast(tf.squeeze(label_logit >= 0.0, -1), tf.float32)

    def ce_gradient():
        one_hot = tf.one_hot(labels, vocab, dtype=tf.float32)
        return tf.exp(shifted - log_sum) - one_hot

    def soft_log_probs():
        # max(z / T) = max(z) / T: the same shift serves the softened softmax.
        scaled = shifted / t
        return scaled - tf.math.log(tf.reduce_sum(tf.exp(scaled), axis=-1, keepdims=True))

    return ce, correct, ce_gradient, soft_log_probs


def _ce_terms_kernels(logits, labels, vocab, t):
    """The same from the fused sparse softmax kernel, which also returns dCE/dz."""
    flat_ce, flat_gradient = tf.raw_ops.SparseSoftmaxCrossEntropyWithLogits(
        features=tf.reshape(logits, [-1, vocab]), labels=tf.reshape(labels, [-1])
    )
    ce = tf.reshape(flat_ce, tf.shape(labels))
    predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
    correct = tf.cast(tf.equal(predicted, labels), tf.float32)
    return (
        ce,
        correct,
        lambda: tf.reshape(flat_gradient, tf.shape(logits)),
        lambda: tf.nn.log_softmax(logits / t, axis=-1),
    )


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
    ce, kd, _ = token_terms(y_true, student_logits, teacher_logits, temperature)
    student_loss, kd = masked_mean(ce, mask), masked_mean(kd, mask)
    return alpha * student_loss + (1.0 - alpha) * kd, student_loss, kd


# Feature distillation (tf_distill.features): per-position terms that the Distiller
# averages over real positions. B batch, S positions, N heads, H head size, D width.

HIDDEN_LOSSES = ("mse", "cosine")


def hidden_state_per_position(student_hidden, teacher_hidden, kind="mse"):
    """(B, S) distance between two (B, S, D) hidden-state tensors of one width:
    `"mse"`: mean over D of the squared difference (TinyBERT); `"cosine"`: 1 - cosine
    similarity (DistilBERT's cosine embedding loss)."""
    student_hidden = tf.cast(student_hidden, tf.float32)
    teacher_hidden = tf.cast(teacher_hidden, tf.float32)
    if kind == "mse":
        return tf.reduce_mean(tf.square(student_hidden - teacher_hidden), axis=-1)
    if kind == "cosine":
        cosine = tf.reduce_sum(
            tf.math.l2_normalize(student_hidden, -1) * tf.math.l2_normalize(teacher_hidden, -1),
            axis=-1,
        )
        return 1.0 - cosine
    raise ValueError(f"hidden loss must be one of {HIDDEN_LOSSES}. Received: {kind!r}.")


def attention_kl_per_query(teacher_probs, student_probs):
    """(B, T) KL(teacher || student) between attention distributions (B, N, T, S) over the
    keys, averaged over heads. When the head counts differ, each model's heads are
    averaged first and the KL is taken between the two mean maps.

    Keys with teacher probability 0 (masked) add nothing; student probabilities are
    floored at 1e-12 so a key the student masks to exactly 0 stays finite.
    """
    teacher_probs = tf.cast(teacher_probs, tf.float32)
    student_probs = tf.cast(student_probs, tf.float32)
    if teacher_probs.shape[1] != student_probs.shape[1]:
        teacher_probs = tf.reduce_mean(teacher_probs, axis=1, keepdims=True)
        student_probs = tf.reduce_mean(student_probs, axis=1, keepdims=True)
    teacher_probs = tf.stop_gradient(teacher_probs)
    log_ratio = tf.math.log(tf.maximum(teacher_probs, 1e-12)) - tf.math.log(
        tf.maximum(student_probs, 1e-12)
    )
    kl = tf.reduce_sum(teacher_probs * log_ratio, axis=-1)  # (B, N, T)
    return tf.reduce_mean(kl, axis=1)


def value_relation(values, key_mask):
    """MiniLM's value relation (Wang et al., 2020): softmax(V V^T / sqrt(H)) per head over
    the real keys, (B, N, S, S), from value heads (B, S, N, H) and a (B, S) key mask."""
    from tf_distill.layers import masked_softmax

    values = tf.cast(values, tf.float32)
    head = values.shape[-1]
    scores = tf.einsum("bsnh,btnh->bnst", values, values) / tf.sqrt(float(head))
    mask = tf.cast(key_mask, tf.bool)[:, tf.newaxis, tf.newaxis, :]  # (B, 1, 1, S)
    return masked_softmax(scores, mask)
