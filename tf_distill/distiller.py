"""`Distiller`: trains a student against data and a frozen teacher with `model.fit`.

Legend: B batch, T target length, V vocabulary, C classes.
"""

import numbers

import keras
import tensorflow as tf

from tf_distill import features as features_lib
from tf_distill import losses

# Keys of a batch's input dict that carry the teacher's cached top-k outputs (see
# `tf_distill.teacher_cache`): int (B, T, k) ids and float (B, T, k) log probabilities.
TEACHER_TOP_IDS = "teacher_top_ids"
TEACHER_TOP_LOG_PROBS = "teacher_top_log_probs"
# Optional float (B,) column: the temperature the cache was made at (`teacher_top_k` adds
# it); a Distiller at another temperature stops with an error instead of learning from
# the wrong distribution.
TEACHER_TEMPERATURE = "teacher_temperature"
# Optional nested dict in a batch's input dict: what a teacher with a tokenizer of its own
# reads (e.g. a keras-hub classifier's token_ids / segment_ids / padding_mask); the student
# reads the rest of the dict. Made by `make_classification_dataset(teacher_inputs=...)`.
TEACHER_INPUTS = "teacher_inputs"
# Prefix of the input-dict keys that carry the teacher's cached features, one key per
# tensor the feature terms read: "teacher_features/<stack>/<kind>/<teacher layer>", e.g.
# "teacher_features/encoder/hidden/2" (B, S, D) or ".../decoder/cross_attention/3"
# (B, N, T, S). `Distiller.teacher_feature_names()` lists what a Distiller needs and
# `tf_distill.teacher_cache.teacher_features` computes them once.
TEACHER_FEATURES = "teacher_features/"


@keras.saving.register_keras_serializable(package="tf_distill")
class Distiller(keras.Model):
    """Teacher-student knowledge distillation (Hinton et al., 2015) as a `keras.Model`.

    `fit` minimizes, per batch,

        loss = alpha * student_loss + (1 - alpha) * distillation_loss

    where `student_loss` is the cross-entropy of the student against the labels and
    `distillation_loss` is T^2 * KL(teacher || student) at temperature T, both averaged
    over real target tokens only (labels equal to `pad_token_id` are ignored) and
    computed with `log_softmax` in float32. Under a `tf.distribute` strategy the averages
    are global: each replica divides its sums by the token count of the *whole* global
    batch, and the replicas' gradients are summed, so the result equals a single-device
    step on the same global batch (not a mean of per-replica means).

    The teacher is frozen (`teacher.trainable = False`) and always runs with
    `training=False` (no dropout) outside the gradient tape; only the student's variables
    get gradients. `call()` returns the student's logits, and `distiller.student` is the
    artifact to save or export: the teacher is never saved with it.

    Works for token logits (B, T, V) with integer targets (B, T) and for class logits
    (B, C) with integer labels (B,). Metrics reported by `fit` / `evaluate`: `loss`,
    `student_loss`, `distillation_loss`, and a masked `token_accuracy` (for token logits)
    or `accuracy` (for class logits), plus any metrics given to `compile`. Metrics given as
    `weighted_metrics=` see the padding mask as their sample weight; `metrics=` do not
    (Keras ignores sample weights for them).

    Several teachers (a list) distil as an ensemble: the target is the mean of the
    teachers' probabilities at temperature T, `p_t = mean_i softmax(z_i / T)` (the usual
    ensemble of Hinton et al., 2015), passed to the loss as the logits `T * log p_t`.

    With `teacher=None` the same machinery trains a model on the labels alone (masked
    cross-entropy, same metrics, `alpha` must be 1): that is how tf_distill trains the
    teacher itself and the no-teacher baseline, so all three are measured alike.

    A teacher with a tokenizer of its own (e.g. a keras-hub BERT classifier distilled into
    a student with a small vocabulary: class logits do not depend on the tokenizer): put
    its inputs in the batch's input dict under `"teacher_inputs"` (a nested dict;
    `make_classification_dataset(teacher_inputs=...)` does this). The teacher reads them,
    the student reads the rest of the dict.

    Cached teacher outputs: when a batch's input dict also holds `"teacher_top_ids"` and
    `"teacher_top_log_probs"` (the teacher's k most likely tokens per position and their
    log probabilities at this Distiller's temperature, as made by
    `tf_distill.teacher_cache.teacher_top_k`), the teacher does not run for that batch and
    the KD term is `losses.top_k_kl_per_token` against them. Computing them once saves the
    teacher's forward pass in every later epoch. Batches without them (e.g. the validation
    data) run the teacher as usual.

    Feature distillation (on top of the logit terms; models built by `build_transformer`
    or `build_classifier`, one teacher, both reading the same token ids): with positive
    weights the loss gains

        + hidden_weight * hidden_loss + attention_weight * attention_loss
        + value_weight * value_loss

    each a mean over real positions and over the mapped layer pairs of every stack the
    two models share (encoder; decoder for translation). Student layer m learns from
    teacher layer `layer_map[stack][m - 1]` (default `features.uniform_layer_map`).
    `hidden_loss`: MSE (or 1 - cosine) between the student's hidden states, through a
    learned linear projection when the widths differ (TinyBERT; the embeddings' output
    counts as layer 0), and the teacher's. `attention_loss`: KL(teacher || student) of the
    self-attention (and cross-attention) distributions, per head, or between the heads'
    means when the head counts differ. `value_loss`: KL between MiniLM's value relations
    softmax(V V^T / sqrt(H)) of the self-attentions. The student's forward pass runs once
    per step (`features.model_features` returns its logits with its features). The
    teacher's features run live, unless the batch carries them under the
    `"teacher_features/..."` keys that `teacher_feature_names()` lists (computed once by
    `tf_distill.teacher_cache.teacher_features`; the top-k logit cache can ride beside
    them, and then the teacher does not run at all). The projections are trained with
    the student but are not part of it (`distiller.distillation_variables`). Each term is
    reported as its own metric.

    Args:
        teacher: a built `keras.Model` returning logits, a list of them (an ensemble), or
            None (no teacher).
        student: a built `keras.Model` with the same inputs, returning logits of the same
            vocabulary or class count.
        alpha: weight of the hard-label loss, in [0, 1]; 1 trains without the teacher.
            Default: 0.5 with a teacher, 1 without one (`Distiller(None, model)`).
        temperature: softmax temperature T > 0 of the distillation term.
        pad_token_id: label id that marks padding (token logits only).
        label_smoothing: eps in [0, 1) of the hard-label CE target (Szegedy et al., 2016);
            the KD term is unaffected. Typically used to train a teacher (`teacher=None`).
        hidden_weight, attention_weight, value_weight: weights >= 0 of the feature terms
            (0: off).
        hidden_loss: `"mse"` or `"cosine"`.
        layer_map: None (uniform), or a dict `{"encoder": [...], "decoder": [...]}` with
            the teacher layer (1-based) of each student layer; stacks left out are uniform.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Example:
    >>> distiller = Distiller(teacher, student, alpha=0.5, temperature=2.0)
    >>> distiller.compile(optimizer="adam")
    >>> distiller.fit(dataset, epochs=3)
    >>> distiller.student.save("student.keras")
    """

    def __init__(
        self,
        teacher,
        student,
        alpha=None,
        temperature=2.0,
        pad_token_id=0,
        label_smoothing=0.0,
        hidden_weight=0.0,
        attention_weight=0.0,
        value_weight=0.0,
        hidden_loss="mse",
        layer_map=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        teachers = _teacher_list(teacher)
        for role, model in [("teacher", t) for t in teachers] + [("student", student)]:
            if not isinstance(model, keras.Model):
                raise ValueError(
                    f"`{role}` must be a keras.Model. Received: {role}={type(model).__name__}."
                )
        if any(t is student for t in teachers):
            raise ValueError("`teacher` and `student` must be two different models.")
        if len({id(t) for t in teachers}) != len(teachers):
            raise ValueError("The teachers of an ensemble must be different models.")
        if (
            isinstance(label_smoothing, bool)
            or not isinstance(label_smoothing, numbers.Real)
            or not 0 <= label_smoothing < 1
        ):
            raise ValueError(
                f"`label_smoothing` must be a number in [0, 1). Received: {label_smoothing!r}."
            )
        if alpha is None:
            alpha = 1.0 if teacher is None else 0.5
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 <= alpha <= 1:
            raise ValueError(f"`alpha` must be a number in [0, 1]. Received: alpha={alpha!r}.")
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, numbers.Real)
            or not temperature > 0
        ):
            raise ValueError(
                f"`temperature` must be a positive number. Received: temperature={temperature!r}."
            )
        if teacher is None and alpha != 1:
            raise ValueError(
                f"Without a teacher `alpha` must be 1 (labels only). Received: alpha={alpha!r}."
            )
        for t in teachers:
            _check_outputs_agree(t, student)
        _check_outputs_agree(None, student)
        self.teacher = teacher if not isinstance(teacher, list | tuple) else list(teachers)
        self.teachers = teachers
        self.student = student
        self.label_smoothing = float(label_smoothing)
        self.alpha = float(alpha)
        self.temperature = float(temperature)
        self.pad_token_id = int(pad_token_id)
        for t in teachers:
            t.trainable = False
        self.token_logits = len(student.outputs[0].shape) == 3
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.student_loss_tracker = keras.metrics.Mean(name="student_loss")
        self.distillation_loss_tracker = keras.metrics.Mean(name="distillation_loss")
        self.accuracy_tracker = keras.metrics.Mean(
            name="token_accuracy" if self.token_logits else "accuracy"
        )
        self._init_feature_terms(hidden_weight, attention_weight, value_weight, hidden_loss)
        self.layer_map = None
        self.projections = []
        self._projection_index = {}
        if self.feature_weights:
            self._init_feature_models(layer_map)
        elif layer_map is not None:
            raise ValueError(
                "`layer_map` is set but no feature term is on: give hidden_weight, "
                "attention_weight or value_weight > 0, or drop layer_map."
            )
        # Teacher and student arrive built, so the Distiller is too: weight saving and
        # loading (ModelCheckpoint with save_weights_only, BackupAndRestore) work before
        # and during the first fit.
        self.built = True

    def _init_feature_terms(self, hidden_weight, attention_weight, value_weight, hidden_loss):
        weights = {}
        for name, weight in (
            ("hidden", hidden_weight),
            ("attention", attention_weight),
            ("value", value_weight),
        ):
            if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or weight < 0:
                raise ValueError(f"`{name}_weight` must be a number >= 0. Received: {weight!r}.")
            if weight > 0:
                weights[name] = float(weight)
        if hidden_loss not in losses.HIDDEN_LOSSES:
            raise ValueError(
                f"`hidden_loss` must be one of {losses.HIDDEN_LOSSES}. Received: {hidden_loss!r}."
            )
        self.feature_weights = weights
        self.hidden_weight = weights.get("hidden", 0.0)
        self.attention_weight = weights.get("attention", 0.0)
        self.value_weight = weights.get("value", 0.0)
        self.hidden_loss = hidden_loss
        self.feature_trackers = {name: keras.metrics.Mean(name=f"{name}_loss") for name in weights}

    def _init_feature_models(self, layer_map):
        if len(self.teachers) != 1:
            raise ValueError(
                "Feature distillation (hidden / attention / value terms) needs exactly one "
                f"teacher; received {len(self.teachers)}. Distil an ensemble through its "
                "logits only."
            )
        teacher = self.teachers[0]
        features_lib.check_same_kind(teacher, self.student)
        student_shapes = features_lib.stack_shapes(self.student)
        teacher_shapes = features_lib.stack_shapes(teacher)
        self._stack_shapes = {"student": student_shapes, "teacher": teacher_shapes}
        self.layer_map = features_lib.resolve_layer_map(layer_map, student_shapes, teacher_shapes)
        if "hidden" in self.feature_weights:
            for stack, mapped in self.layer_map.items():
                student_width = student_shapes[stack][1]
                teacher_width = teacher_shapes[stack][1]
                for m in range(len(mapped) + 1):  # 0: the embeddings
                    projection = features_lib.projection_layer(
                        student_width, teacher_width, f"{stack}_hidden_projection_{m}"
                    )
                    if projection is not None:
                        self._projection_index[(stack, m)] = len(self.projections)
                        self.projections.append(projection)

    @property
    def distillation_variables(self):
        """Trainable variables of the Distiller beside the student's: the hidden-state
        projections (empty without them). The optimizer updates both."""
        return [v for layer in self.projections for v in layer.trainable_variables]

    def teacher_feature_names(self):
        """The input-dict keys of the teacher features this Distiller's terms read (empty
        without feature terms): what a batch must carry for the teacher's features not to
        run live. For attention with other head counts than the student's, the cached map
        is the mean over the teacher's heads (all the loss reads then)."""
        names = []
        for stack, mapped in (self.layer_map or {}).items():
            kinds = []
            if "hidden" in self.feature_weights:
                kinds += [("hidden", g) for g in [0, *mapped]]
            if "attention" in self.feature_weights:
                kinds += [("self_attention", g) for g in mapped]
                if stack == "decoder":
                    kinds += [("cross_attention", g) for g in mapped]
            if "value" in self.feature_weights:
                kinds += [("self_values", g) for g in mapped]
            names += [f"{TEACHER_FEATURES}{stack}/{kind}/{g}" for kind, g in kinds]
        return list(dict.fromkeys(names))  # a layer map may name a teacher layer twice

    def teacher_feature_columns(self, inputs):
        """`{name: tensor}` for every name of `teacher_feature_names()`, from one inference
        pass of the teacher on `inputs` (the student's input dict)."""
        if not self.feature_weights:
            raise ValueError("This Distiller has no feature terms: there is nothing to cache.")
        _, stacks = features_lib.model_features(
            self.teachers[0], inputs, training=False, logits=False
        )
        columns = {}
        for name in self.teacher_feature_names():
            stack, kind, layer = name[len(TEACHER_FEATURES) :].split("/")
            layer = int(layer)
            if kind == "hidden":
                value = stacks[stack].hidden[layer]
            else:
                value = getattr(stacks[stack], kind)[layer - 1]
                heads = self._stack_shapes["teacher"][stack][2]
                if kind != "self_values" and heads != self._stack_shapes["student"][stack][2]:
                    value = tf.reduce_mean(value, axis=1, keepdims=True)
            columns[name] = tf.cast(value, tf.float32)
        return columns

    def _cached_teacher_features(self, cached_features):
        """{stack: StackFeatures} from a batch's cached teacher features (each list holds
        only the mapped layers, at their teacher index); the mask is the student's."""
        missing = [name for name in self.teacher_feature_names() if name not in cached_features]
        if missing:
            raise ValueError(
                f"The batch carries cached teacher features but not {missing[0]!r} (and "
                f"{len(missing) - 1} more) that this Distiller's terms and layer map need. "
                "Make the cache with teacher_cache.teacher_features(distiller, ...) for this "
                "Distiller."
            )
        stacks = {}
        for name, value in cached_features.items():
            stack, kind, layer = name[len(TEACHER_FEATURES) :].split("/")
            layer = int(layer) - (0 if kind == "hidden" else 1)
            parts = stacks.setdefault(stack, {})
            parts.setdefault(kind, {})[layer] = tf.stop_gradient(tf.cast(value, tf.float32))
        return {
            stack: features_lib.StackFeatures(
                hidden=parts.get("hidden", {}),
                self_attention=parts.get("self_attention", {}),
                self_values=parts.get("self_values", {}),
                cross_attention=parts.get("cross_attention", {}),
                mask=None,
            )
            for stack, parts in stacks.items()
        }

    def _feature_loss(self, student_features, teacher_features):
        """`(weighted sum of the feature terms, {term: (local sum, local count)})`: each term
        is a mean over real positions and mapped layer pairs of every shared stack, divided
        by the count of the global batch (as the logit terms are)."""
        if not self.feature_weights:
            return 0.0, {}
        sums = {name: [] for name in self.feature_weights}
        counts = {name: [] for name in self.feature_weights}

        def add(name, per_position, mask):
            sums[name].append(tf.reduce_sum(per_position * mask))
            counts[name].append(tf.reduce_sum(mask))

        for stack, mapped in self.layer_map.items():
            s, t = student_features[stack], teacher_features[stack]
            mask = s.mask
            if "hidden" in sums:
                pairs = [(0, 0)] + [(m + 1, g) for m, g in enumerate(mapped)]
                for m, g in pairs:
                    student_hidden = s.hidden[m]
                    if (stack, m) in self._projection_index:
                        student_hidden = self.projections[self._projection_index[(stack, m)]](
                            student_hidden
                        )
                    per = losses.hidden_state_per_position(
                        student_hidden, tf.stop_gradient(t.hidden[g]), self.hidden_loss
                    )
                    add("hidden", per, mask)
            for m, g in enumerate(mapped):
                if "attention" in sums:
                    add(
                        "attention",
                        losses.attention_kl_per_query(t.self_attention[g - 1], s.self_attention[m]),
                        mask,
                    )
                    if s.cross_attention:
                        add(
                            "attention",
                            losses.attention_kl_per_query(
                                t.cross_attention[g - 1], s.cross_attention[m]
                            ),
                            mask,
                        )
                if "value" in sums:
                    add(
                        "value",
                        losses.attention_kl_per_query(
                            losses.value_relation(t.self_values[g - 1], mask),
                            losses.value_relation(s.self_values[m], mask),
                        ),
                        mask,
                    )
        total = 0.0
        terms = {}
        context = tf.distribute.get_replica_context()
        for name, weight in self.feature_weights.items():
            local_sum, local_count = tf.add_n(sums[name]), tf.add_n(counts[name])
            global_count = context.all_reduce(tf.distribute.ReduceOp.SUM, local_count)
            total += weight * local_sum / tf.maximum(global_count, 1.0)
            terms[name] = (local_sum, local_count)
        return total, terms

    def _student_forward(self, x, training):
        """The student's logits, and its features when a feature term is on (one pass)."""
        if not self.feature_weights:
            return tf.cast(self.student(x, training=training), tf.float32), None
        logits, student_features = features_lib.model_features(self.student, x, training)
        return tf.cast(logits, tf.float32), student_features

    def _teacher_outputs(self, x, teacher_x, cached, cached_features=None):
        """The teacher's logits (None when `cached` gives the KD term) and features (None
        without feature terms; read from `cached_features` when the batch carries them),
        outside the gradient."""
        if not self.feature_weights:
            return (None if cached is not None else self._teacher_logits(teacher_x)), None
        if teacher_x is not x:
            raise ValueError(
                "Feature distillation compares the teacher's and the student's states "
                "position by position, so both must read the same token ids; this batch "
                "gives the teacher inputs of its own ('teacher_inputs'). Turn the hidden / "
                "attention / value terms off for a teacher with its own tokenizer."
            )
        if cached_features:
            logits = None if cached is not None else self._teacher_logits(teacher_x)
            return logits, self._cached_teacher_features(cached_features)
        logits, teacher_features = features_lib.model_features(
            self.teachers[0], teacher_x, training=False, logits=cached is None
        )
        teacher_features = {
            stack: features_lib.stop_gradient(stack_features)
            for stack, stack_features in teacher_features.items()
        }
        logits = None if cached is not None else tf.stop_gradient(tf.cast(logits, tf.float32))
        return logits, teacher_features

    def call(self, inputs, training=None):
        inputs, _ = _split_cached(inputs)
        inputs, _ = _split_cached_features(inputs)
        inputs, _ = _split_teacher_inputs(inputs)
        return self.student(inputs, training=training)

    def compile(self, optimizer="adam", metrics=None, weighted_metrics=None, **kwargs):
        if kwargs.get("loss") is not None:
            raise ValueError(
                "Distiller computes its own loss; do not pass `loss` to compile(). "
                "Set `alpha` and `temperature` on the Distiller instead."
            )
        kwargs.pop("loss", None)
        super().compile(
            optimizer=optimizer, metrics=metrics, weighted_metrics=weighted_metrics, **kwargs
        )

    @property
    def metrics(self):
        trackers = [self.loss_tracker, self.student_loss_tracker]
        if self.teacher is not None:  # without a teacher there is no distillation term
            trackers.append(self.distillation_loss_tracker)
        trackers.append(self.accuracy_tracker)
        trackers.extend(self.feature_trackers.values())
        compiled = getattr(self, "_compile_metrics", None)
        return trackers + ([compiled] if compiled is not None else [])

    def _teacher_logits(self, x):
        """The frozen teacher's logits (inference mode), or None without a teacher; for an
        ensemble, `T * log mean_i softmax(z_i / T)`, whose softmax at T is the mean."""
        if not self.teachers:
            return None
        logits = [t(x, training=False) for t in self.teachers]
        return tf.stop_gradient(losses.ensemble_logits(logits, self.temperature))

    def _loss_terms(self, y, student_logits, teacher_logits, sample_weight, cached=None):
        """Per-replica loss for the gradient, plus the values the trackers need.

        `cached`: the teacher's `(top_ids, top_log_probs)` for this batch, or None.
        """
        y = self._labels(y, student_logits)
        mask = losses.token_mask(y, student_logits, self.pad_token_id, sample_weight)
        ce, kd, correct = losses.token_terms(
            y,
            student_logits,
            teacher_logits,
            self.temperature,
            xla=bool(self.jit_compile),
            label_smoothing=self.label_smoothing,
        )
        if cached is not None and self.teachers:
            kd = losses.top_k_kl_per_token(*cached, student_logits, self.temperature)
        local_count = tf.reduce_sum(mask)
        ce_sum = tf.reduce_sum(ce * mask)
        kd_sum = tf.reduce_sum(kd * mask)
        # Divide by the token count of the global batch: summing the replicas' gradients
        # (which the optimizer does) then gives the gradient of the global mean.
        global_count = tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.SUM, local_count
        )
        global_count = tf.maximum(global_count, 1.0)
        loss = self._combine(ce_sum, kd_sum) / global_count
        return loss, y, mask, local_count, ce_sum, kd_sum, tf.reduce_sum(correct * mask)

    def _combine(self, student_term, distillation_term):
        if not self.teachers:
            return student_term
        return self.alpha * student_term + (1.0 - self.alpha) * distillation_term

    def _labels(self, y, logits):
        y = tf.cast(y, tf.int32)
        if not self.token_logits and y.shape.rank == 2:
            y = tf.squeeze(y, axis=-1)  # (B, 1) class labels
        return y

    def _update_trackers(self, local_count, ce_sum, kd_sum, correct_sum, feature_terms=None):
        # Each tracker is a token-weighted mean: over an epoch it is the mean over all real
        # tokens seen, on every replica (the trackers' sums are aggregated across replicas).
        def mean(total):
            return total / tf.maximum(local_count, 1.0)

        # The loss tracker holds the logit terms; `_step_results` adds the weighted feature
        # trackers, each a mean over its own positions (a count of its own).
        loss = self._combine(mean(ce_sum), mean(kd_sum))
        for name, (term_sum, term_count) in (feature_terms or {}).items():
            term = term_sum / tf.maximum(term_count, 1.0)
            self.feature_trackers[name].update_state(term, sample_weight=term_count)
        self.loss_tracker.update_state(loss, sample_weight=local_count)
        self.student_loss_tracker.update_state(mean(ce_sum), sample_weight=local_count)
        if self.teacher is not None:
            self.distillation_loss_tracker.update_state(mean(kd_sum), sample_weight=local_count)
        self.accuracy_tracker.update_state(mean(correct_sum), sample_weight=local_count)

    def get_metrics_result(self):
        # `loss`: the logit terms' tracker plus the weighted feature trackers (what `fit`
        # logs every step and `evaluate` returns).
        results = super().get_metrics_result()
        for name, weight in self.feature_weights.items():
            if f"{name}_loss" in results and "loss" in results:
                results["loss"] = results["loss"] + weight * results[f"{name}_loss"]
        return results

    def _step_results(self, x, y, student_logits, mask):
        if getattr(self, "_compile_metrics", None) is not None:
            self._compile_metrics.update_state(y, student_logits, sample_weight=mask)
        results = self.get_metrics_result()
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras 3.15 averages step results across workers with
            # `strategy.reduce("MEAN", value, axis=0)`, which fails on scalars; give it (1,).
            results = {name: tf.reshape(value, (1,)) for name, value in results.items()}
        return results

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x, cached = _split_cached(x, self.temperature)
        x, cached_features = _split_cached_features(x)
        x, teacher_x = _split_teacher_inputs(x)
        # The teacher runs before the tape opens: nothing of its forward pass is recorded.
        teacher_logits, teacher_features = self._teacher_outputs(
            x, teacher_x, cached, cached_features
        )
        with tf.GradientTape() as tape:
            student_logits, student_features = self._student_forward(x, training=True)
            loss, y, mask, *sums = self._loss_terms(
                y, student_logits, teacher_logits, sample_weight, cached
            )
            feature_loss, feature_terms = self._feature_loss(student_features, teacher_features)
            scaled = self.optimizer.scale_loss(loss + feature_loss)
        variables = self.student.trainable_variables + self.distillation_variables
        gradients = self._clipped_across_replicas(tape.gradient(scaled, variables))
        self.optimizer.apply_gradients(zip(gradients, variables, strict=True))
        self._update_trackers(*sums, feature_terms)
        return self._step_results(x, y, student_logits, mask)

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x, cached = _split_cached(x, self.temperature)
        x, cached_features = _split_cached_features(x)
        x, teacher_x = _split_teacher_inputs(x)
        student_logits, student_features = self._student_forward(x, training=False)
        teacher_logits, teacher_features = self._teacher_outputs(
            x, teacher_x, cached, cached_features
        )
        _, y, mask, *sums = self._loss_terms(
            y, student_logits, teacher_logits, sample_weight, cached
        )
        _, feature_terms = self._feature_loss(student_features, teacher_features)
        self._update_trackers(*sums, feature_terms)
        return self._step_results(x, y, student_logits, mask)

    def _clipped_across_replicas(self, gradients):
        """With several replicas and a clipping optimizer, the clipped *global* gradient
        (divided by the replica count), so that training equals one device's.

        Keras clips each replica's gradient (clipnorm / global_clipnorm / clipvalue) before
        it sums them across replicas, which is not the single-device result whenever the
        clip acts. Here the replicas' gradients are summed first and clipped as Keras
        clips one device's, with TensorFlow's norms: a sparse (IndexedSlices) gradient's
        norm is that of its slices, so across replicas the root of the summed squares of
        every replica's slices. Each replica then hands on 1/N of the result, which Keras'
        own clip leaves alone (N times below its bounds) and its sum across replicas
        restores. clipvalue clips the summed gradient element-wise (one device clips a
        sparse gradient's slices before repeated rows add up: equal unless the batch
        repeats a token). Costs one more all-reduce per step. Left to Keras under loss
        scaling (mixed_float16), whose clip acts after unscaling.
        """
        optimizer = self.optimizer
        context = tf.distribute.get_replica_context()
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        clipnorm = getattr(optimizer, "clipnorm", None)
        global_clipnorm = getattr(optimizer, "global_clipnorm", None)
        clipvalue = getattr(optimizer, "clipvalue", None)
        if (
            replicas == 1
            or context is None
            or not (clipnorm or global_clipnorm or clipvalue)
            or isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        ):
            return gradients
        present = [i for i, g in enumerate(gradients) if g is not None]
        local = [gradients[i] for i in present]
        squares = [
            tf.reduce_sum(tf.square(g.values)) if isinstance(g, tf.IndexedSlices) else None
            for g in local
        ]
        sparse = [i for i, sq in enumerate(squares) if sq is not None]
        dense = [tf.convert_to_tensor(g) for g in local]
        total = context.all_reduce(tf.distribute.ReduceOp.SUM, dense)
        if sparse:
            summed = context.all_reduce(tf.distribute.ReduceOp.SUM, [squares[i] for i in sparse])
            squares = list(squares)
            for i, value in zip(sparse, summed, strict=True):
                squares[i] = value
        squares = [
            tf.reduce_sum(tf.square(g)) if sq is None else sq
            for g, sq in zip(total, squares, strict=True)
        ]
        if clipnorm:
            total = [
                g * clipnorm / tf.maximum(tf.sqrt(sq), clipnorm)
                for g, sq in zip(total, squares, strict=True)
            ]
        elif global_clipnorm:
            norm = tf.sqrt(tf.add_n(squares))
            total = [g * global_clipnorm / tf.maximum(norm, global_clipnorm) for g in total]
        else:
            total = [tf.clip_by_value(g, -clipvalue, clipvalue) for g in total]
        found = list(gradients)
        for i, g in zip(present, total, strict=True):
            found[i] = g / float(replicas)
        return found

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras 3.15 builds a distributed model from `next()` of the training iterator,
        # which (with steps_per_epoch, where Keras keeps one iterator across epochs) loses
        # that first batch: a distributed fit then trains on the batches one process
        # would, shifted by one. It also averages that batch across replicas, which
        # MultiWorkerMirroredStrategy cannot do for dict inputs. The build only needs
        # shapes and dtypes: take them from the dataset's element spec instead.
        strategy = self._distribute_strategy
        if strategy is None or iterator is None or data_batch is not None:
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        spec = iterator._distributed_dataset.element_spec

        def placeholder(value_spec):
            value_spec = getattr(value_spec, "_value_specs", [value_spec])[0]  # PerReplicaSpec
            shape = [1 if size is None else size for size in value_spec.shape]
            return tf.zeros(shape, value_spec.dtype)

        data_batch = tf.nest.map_structure(placeholder, spec)
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    def save(self, filepath, overwrite=True, **kwargs):
        """Saves the student (the model you ship) as a `.keras` file; the teacher stays
        out. So `keras.callbacks.ModelCheckpoint("best.keras")` keeps the best student,
        and `keras.saving.load_model` (or `tf_distill.load_model`) reads it back as one."""
        return self.student.save(filepath, overwrite=overwrite, **kwargs)

    def get_config(self):
        serialize = keras.saving.serialize_keras_object
        if isinstance(self.teacher, list):
            teacher = [serialize(t) for t in self.teacher]
        else:
            teacher = None if self.teacher is None else serialize(self.teacher)
        return {
            "teacher": teacher,
            "student": serialize(self.student),
            "alpha": self.alpha,
            "temperature": self.temperature,
            "pad_token_id": self.pad_token_id,
            "label_smoothing": self.label_smoothing,
            "hidden_weight": self.hidden_weight,
            "attention_weight": self.attention_weight,
            "value_weight": self.value_weight,
            "hidden_loss": self.hidden_loss,
            "layer_map": (
                None if self.layer_map is None else {k: list(v) for k, v in self.layer_map.items()}
            ),
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        deserialize = keras.saving.deserialize_keras_object
        if isinstance(config["teacher"], list):
            config["teacher"] = [deserialize(t) for t in config["teacher"]]
        elif config["teacher"] is not None:
            config["teacher"] = deserialize(config["teacher"])
        config["student"] = keras.saving.deserialize_keras_object(config["student"])
        return cls(**config)


def _teacher_list(teacher):
    """`teacher` as a list: [] for None, the models of a list or tuple, else [teacher]."""
    if teacher is None:
        return []
    if isinstance(teacher, list | tuple):
        if not teacher:
            raise ValueError("`teacher` is an empty list: give at least one model, or None.")
        return list(teacher)
    return [teacher]


def _split_cached(x, temperature=None):
    """`(inputs without the cached teacher outputs, (top_ids, top_log_probs) or None)`;
    with `temperature`, also checks the cache's recorded temperature against it."""
    if not isinstance(x, dict) or TEACHER_TOP_IDS not in x:
        return x, None
    x = dict(x)
    made_at = x.pop(TEACHER_TEMPERATURE, None)
    if made_at is not None and temperature is not None:
        tf.debugging.assert_near(
            tf.cast(made_at, tf.float32),
            tf.constant(temperature, tf.float32),
            atol=1e-6,
            message=(
                f"The cached teacher outputs were made at another temperature than this "
                f"Distiller's T={temperature:g} (values below). Make the cache with "
                f"teacher_top_k(..., temperature={temperature:g}), or give the Distiller "
                "the cache's temperature."
            ),
        )
    return x, (x.pop(TEACHER_TOP_IDS), x.pop(TEACHER_TOP_LOG_PROBS))


def _split_cached_features(x):
    """`(inputs without the cached teacher features, {name: tensor} of them, or None)`."""
    if not isinstance(x, dict) or not any(str(k).startswith(TEACHER_FEATURES) for k in x):
        return x, None
    x = dict(x)
    cached = {k: x.pop(k) for k in list(x) if str(k).startswith(TEACHER_FEATURES)}
    return x, cached


def _split_teacher_inputs(x):
    """`(the student's inputs, the teacher's)`: the teacher reads `x["teacher_inputs"]`
    when the batch carries it (a tokenizer of its own), else the same inputs as the student."""
    if not isinstance(x, dict) or TEACHER_INPUTS not in x:
        return x, x
    x = dict(x)
    teacher_x = x.pop(TEACHER_INPUTS)
    return x, teacher_x


def _check_outputs_agree(teacher, student):
    """Teacher and student must both return logits of one rank and width."""
    shapes = {}
    for role, model in (("teacher", teacher), ("student", student)):
        if model is None:
            continue
        if len(model.outputs or []) != 1:
            raise ValueError(
                f"`{role}` must be a built functional model with exactly one logits output. "
                f"Received {len(model.outputs or [])} outputs."
            )
        shape = tuple(model.outputs[0].shape)
        if len(shape) not in (2, 3):
            raise ValueError(
                f"`{role}` must return class logits (B, C) or token logits (B, T, V). "
                f"Received output shape {shape}."
            )
        shapes[role] = shape
        if _ends_in_probabilities(model):
            raise ValueError(
                f"`{role}` ends in a softmax / sigmoid, so it returns probabilities, but the "
                "Distiller needs logits (it applies the temperature and log_softmax itself). "
                "Give the model without its final activation, e.g. rebuild the last layer "
                "with activation=None."
            )
    if "teacher" not in shapes:
        return
    teacher_shape, student_shape = shapes["teacher"], shapes["student"]
    if len(teacher_shape) != len(student_shape) or teacher_shape[-1] != student_shape[-1]:
        raise ValueError(
            "Teacher and student outputs must agree in rank and vocabulary/class count. "
            f"Received teacher {shapes['teacher']}, student {shapes['student']}. "
            "Build both with the same tokenizer (vocabulary_size) or number of classes."
        )


def _ends_in_probabilities(model):
    """Whether the layer that makes the model's output is a softmax or sigmoid."""
    history = getattr(model.outputs[0], "_keras_history", None)
    layer = getattr(history, "operation", None)
    if isinstance(layer, keras.layers.Softmax):
        return True
    activation = getattr(layer, "activation", None)
    return activation in (keras.activations.softmax, keras.activations.sigmoid)
