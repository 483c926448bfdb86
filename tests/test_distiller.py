import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import random_token_ids
from tests.test_losses import dense_top_k_teacher, log_softmax, numpy_reference
from tf_distill import Distiller
from tf_distill.distiller import TEACHER_TOP_IDS, TEACHER_TOP_LOG_PROBS
from tf_distill.models import build_classifier, build_transformer

V, L = 30, 12


def seq2seq_data(seed=0, batch=8, src=7, tgt=6):
    rng = np.random.default_rng(seed)
    encoder = random_token_ids(rng, batch, src, V, min_length=2)
    target = random_token_ids(rng, batch, tgt, V, min_length=1)
    decoder = np.concatenate([np.full((batch, 1), 2, "int32"), target[:, :-1]], axis=1)
    decoder[target == 0] = 0
    return {"encoder_token_ids": encoder, "decoder_token_ids": decoder}, target


@pytest.fixture(scope="module")
def models():
    keras.utils.set_random_seed(0)
    teacher = build_transformer(V, L, 2, 2, 32, 64, dropout=0.3)
    student = build_transformer(V, L, 1, 2, 16, 32, dropout=0.0)
    return teacher, student


def test_evaluate_loss_matches_numpy_reference(models):
    teacher, student = models
    x, y = seq2seq_data(1)
    for alpha, temperature in [(0.5, 2.0), (0.1, 4.0), (1.0, 1.0)]:
        distiller = Distiller(teacher, student, alpha=alpha, temperature=temperature)
        distiller.compile(optimizer="sgd")
        result = distiller.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
        zs = student(x, training=False).numpy()
        zt = teacher(x, training=False).numpy()
        loss, ce, kd = numpy_reference(y, zs, zt, alpha, temperature)
        np.testing.assert_allclose(result["loss"], loss, rtol=1e-4)
        np.testing.assert_allclose(result["student_loss"], ce, rtol=1e-4)
        np.testing.assert_allclose(result["distillation_loss"], kd, rtol=1e-4)
        accuracy = (zs.argmax(-1) == y)[y != 0].mean()
        np.testing.assert_allclose(result["token_accuracy"], accuracy, atol=1e-6)


def test_appending_padding_leaves_loss_unchanged(models):
    teacher, student = models
    distiller = Distiller(teacher, student)
    distiller.compile(optimizer="sgd")
    x, y = seq2seq_data(2)
    base = distiller.evaluate(x, y, verbose=0, return_dict=True)
    x_pad = {k: np.pad(v, ((0, 0), (0, 4))) for k, v in x.items()}
    padded = distiller.evaluate(x_pad, np.pad(y, ((0, 0), (0, 4))), verbose=0, return_dict=True)
    for key in ("loss", "student_loss", "distillation_loss", "token_accuracy"):
        np.testing.assert_allclose(padded[key], base[key], rtol=1e-5)


def test_kl_is_zero_when_student_is_the_teacher():
    keras.utils.set_random_seed(3)
    teacher = build_transformer(V, L, 1, 2, 16, 32, dropout=0.2)
    student = keras.Model.from_config(teacher.get_config())
    student.set_weights(teacher.get_weights())
    distiller = Distiller(teacher, student, temperature=3.0)
    distiller.compile(optimizer="sgd")
    result = distiller.evaluate(*seq2seq_data(3), verbose=0, return_dict=True)
    assert abs(result["distillation_loss"]) < 1e-6
    assert result["student_loss"] > 1.0


def test_teacher_is_frozen_and_runs_without_dropout(models):
    teacher, student = models
    x, y = seq2seq_data(4)
    np.testing.assert_array_equal(teacher(x, training=False), teacher(x, training=False))
    before = [w.copy() for w in teacher.get_weights()]
    student_before = [w.copy() for w in student.get_weights()]
    distiller = Distiller(teacher, student, alpha=0.0)
    # Learning rate 0: the student does not move either, so two steps on one batch give the
    # same distillation loss only if the teacher is deterministic (dropout 0.3 is off).
    distiller.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0))
    first = distiller.train_on_batch(x, y, return_dict=True)
    second = distiller.train_on_batch(x, y, return_dict=True)
    assert first["distillation_loss"] == second["distillation_loss"]
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2))
    distiller.fit(x, y, epochs=2, batch_size=4, verbose=0)
    for a, b in zip(before, teacher.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(
        np.abs(a - b).max() > 0 for a, b in zip(student_before, student.get_weights(), strict=True)
    )
    assert not teacher.trainable
    assert len(distiller.trainable_weights) == len(student.trainable_weights)


def test_fit_reduces_loss_with_callbacks_and_jit(models):
    _, student = models
    keras.utils.set_random_seed(5)
    teacher = build_transformer(V, L, 1, 2, 16, 32, dropout=0.0)
    x, y = seq2seq_data(5, batch=16)
    distiller = Distiller(teacher, keras.Model.from_config(student.get_config()))
    distiller.compile(optimizer=keras.optimizers.Adam(5e-3), jit_compile=True)
    seen = []
    history = distiller.fit(
        x,
        y,
        epochs=4,
        batch_size=8,
        verbose=0,
        validation_data=(x, y),
        callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(e))],
    )
    assert seen == [0, 1, 2, 3]
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert {"val_loss", "val_token_accuracy", "val_distillation_loss"} <= set(history.history)


def test_class_logits_with_integer_labels():
    keras.utils.set_random_seed(6)
    teacher = build_classifier(V, 4, L, 1, 2, 16, 32)
    student = build_classifier(V, 4, L, 1, 2, 8, 16)
    rng = np.random.default_rng(6)
    x = {"token_ids": random_token_ids(rng, 12, 8, V)}
    labels = rng.integers(0, 4, size=12)
    distiller = Distiller(teacher, student, alpha=0.3, temperature=2.0)
    distiller.compile(optimizer="adam")
    result = distiller.evaluate(x, labels, verbose=0, return_dict=True)
    zs = student(x, training=False).numpy()
    zt = teacher(x, training=False).numpy()
    # Class label 0 is a real class, not padding: the reference counts every row.
    loss = numpy_reference(labels, zs, zt, 0.3, 2.0, pad=-1)[0]
    np.testing.assert_allclose(result["loss"], loss, rtol=1e-4)
    assert "accuracy" in result and "token_accuracy" not in result
    history = distiller.fit(x, labels[:, None], epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_mixed_precision_student():
    keras.utils.set_random_seed(7)
    teacher = build_transformer(V, L, 1, 2, 16, 32)
    student = build_transformer(V, L, 1, 2, 16, 32, dtype="mixed_float16")
    assert student.get_layer("decoder").compute_dtype == "float16"
    assert student.outputs[0].dtype == "float32"
    distiller = Distiller(teacher, student)
    distiller.compile(optimizer=keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam()))
    history = distiller.fit(*seq2seq_data(7), epochs=2, verbose=0)
    assert all(np.isfinite(v) for v in history.history["loss"])


def student_copy(model):
    return keras.Model.from_config(model.get_config())


def test_without_teacher_is_plain_masked_cross_entropy(models):
    _, student = models
    x, y = seq2seq_data(8)
    trainer = Distiller(None, student)  # alpha defaults to 1 without a teacher
    with_teacher = Distiller(
        student_copy(student), student_copy(student)
    )  # fixture stays trainable
    assert trainer.alpha == 1.0 and with_teacher.alpha == 0.5
    trainer.compile(optimizer="sgd")
    result = trainer.evaluate(x, y, verbose=0, return_dict=True)
    zs = student(x, training=False).numpy()
    np.testing.assert_allclose(result["loss"], numpy_reference(y, zs, zs, 1.0, 1.0)[1], rtol=1e-4)
    assert set(result) == {"loss", "student_loss", "token_accuracy"}  # no KD metric at all


def test_call_returns_student_logits_and_save_writes_the_student(models, tmp_path):
    teacher, student = models
    distiller = Distiller(teacher, student)
    x, _ = seq2seq_data(9)
    np.testing.assert_array_equal(distiller(x), student(x))
    distiller.save(tmp_path / "d.keras")  # the student alone: the teacher stays out
    saved = keras.saving.load_model(tmp_path / "d.keras")
    assert saved.count_params() == student.count_params() < teacher.count_params()
    np.testing.assert_array_equal(saved(x), student(x))


def _callback_setup(seed=11):
    keras.utils.set_random_seed(seed)
    teacher = build_transformer(V, L, 1, 2, 16, 32, dropout=0.0)
    student = build_transformer(V, L, 1, 2, 8, 16, dropout=0.0)
    distiller = Distiller(teacher, student)
    distiller.compile(optimizer=keras.optimizers.Adam(5e-3))
    return distiller


def test_model_checkpoint_keeps_the_student_whole_or_as_weights(tmp_path):
    """keras.callbacks.ModelCheckpoint both ways: a `.keras` file of the student, and a
    weights file that a fresh Distiller loads back."""
    distiller = _callback_setup()
    x, y = seq2seq_data(5, batch=16)
    distiller.fit(
        x,
        y,
        epochs=2,
        batch_size=8,
        verbose=0,
        validation_data=(x, y),
        callbacks=[
            keras.callbacks.ModelCheckpoint(tmp_path / "best.keras", monitor="val_loss"),
            keras.callbacks.ModelCheckpoint(tmp_path / "last.weights.h5", save_weights_only=True),
        ],
    )
    best = keras.saving.load_model(tmp_path / "best.keras")
    np.testing.assert_allclose(best(x), distiller.student(x), atol=1e-6)
    fresh = _callback_setup(seed=12)  # other initial weights
    assert not np.allclose(fresh.student(x), distiller.student(x))
    fresh.load_weights(tmp_path / "last.weights.h5")
    np.testing.assert_allclose(fresh.student(x), distiller.student(x), atol=1e-6)


class _Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt  # as if the process were stopped after epoch 2


def test_backup_and_restore_resumes_an_interrupted_fit(tmp_path):
    """Stopped after 2 of 4 epochs and fitted again with the same BackupAndRestore, the
    student ends where an uninterrupted fit ends (weights and optimizer restored)."""
    x, y = seq2seq_data(6, batch=16)
    fit = dict(epochs=4, batch_size=8, verbose=0, shuffle=False)
    straight = _callback_setup()
    straight.fit(x, y, **fit)
    backup = keras.callbacks.BackupAndRestore(tmp_path / "backup")
    first = _callback_setup()
    with pytest.raises(KeyboardInterrupt):
        first.fit(x, y, callbacks=[backup, _Interrupt()], **fit)
    resumed = _callback_setup(seed=13)  # a new process would start from other weights
    seen = []
    resumed.fit(
        x,
        y,
        callbacks=[
            keras.callbacks.BackupAndRestore(tmp_path / "backup"),
            keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: seen.append(e)),
        ],
        **fit,
    )
    assert seen == [2, 3]
    np.testing.assert_allclose(resumed.student(x), straight.student(x), atol=1e-5)


def test_early_stopping_reduce_lr_and_tensorboard(tmp_path):
    distiller = _callback_setup()
    x, y = seq2seq_data(7, batch=16)
    history = distiller.fit(
        x,
        y,
        epochs=10,
        batch_size=8,
        verbose=0,
        validation_data=(x, y),
        callbacks=[
            # No epoch can improve by 100: training stops after patience + 1 epochs.
            keras.callbacks.EarlyStopping(monitor="val_loss", min_delta=100, patience=1),
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", min_delta=100, patience=0, factor=0.5
            ),
            keras.callbacks.TensorBoard(tmp_path / "tb"),
        ],
    )
    assert len(history.history["loss"]) == 2
    # Epoch 1 sets the best val_loss; epoch 2 fails to improve on it: one halving.
    assert float(distiller.optimizer.learning_rate) == pytest.approx(5e-3 * 0.5)
    assert list((tmp_path / "tb" / "train").glob("events.out.tfevents.*"))
    assert list((tmp_path / "tb" / "validation").glob("events.out.tfevents.*"))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(alpha=1.5), r"`alpha` must be a number in \[0, 1\]"),
        (dict(alpha=-0.1), r"`alpha` must be a number in \[0, 1\]"),
        (dict(temperature=0), "`temperature` must be a positive number"),
        (dict(temperature="hot"), "`temperature` must be a positive number"),
    ],
)
def test_bad_arguments(models, kwargs, match):
    with pytest.raises(ValueError, match=match):
        Distiller(*models, **kwargs)


def test_mismatched_models_are_rejected(models):
    teacher, _ = models
    with pytest.raises(ValueError, match="must agree in rank and vocabulary"):
        Distiller(teacher, build_transformer(V + 1, L, 1, 2, 16, 32))
    with pytest.raises(ValueError, match="must agree in rank and vocabulary"):
        Distiller(teacher, build_classifier(V, 3, L, 1, 2, 16, 32))
    with pytest.raises(ValueError, match="`student` must be a keras.Model"):
        Distiller(teacher, "student.keras")
    with pytest.raises(ValueError, match="Without a teacher `alpha` must be 1"):
        Distiller(None, teacher, alpha=0.5)
    with pytest.raises(ValueError, match="do not pass `loss`"):
        Distiller(*models).compile(optimizer="adam", loss="mse")


def with_cache(x, teacher, k, temperature):
    """`x` plus the teacher's top-k tokens, as `tf_distill.teacher_cache` supplies them."""
    log_probs = tf.nn.log_softmax(teacher(x, training=False) / temperature)
    values, ids = tf.math.top_k(log_probs, k=k)
    return {**x, TEACHER_TOP_IDS: ids.numpy(), TEACHER_TOP_LOG_PROBS: values.numpy()}


def test_cached_top_k_with_every_token_trains_like_the_live_teacher(models):
    teacher, student = models
    x, y = seq2seq_data(10)
    weights = {}
    for name, inputs in (("live", x), ("cached", with_cache(x, teacher, V, 2.0))):
        trainee = keras.Model.from_config(student.get_config())
        trainee.set_weights(student.get_weights())
        distiller = Distiller(teacher, trainee, alpha=0.3, temperature=2.0)
        distiller.compile(optimizer=keras.optimizers.SGD(learning_rate=0.5))
        history = distiller.fit(inputs, y, epochs=3, batch_size=8, verbose=0)
        weights[name] = (trainee.get_weights(), history.history)
    for live, cached in zip(weights["live"][0], weights["cached"][0], strict=True):
        np.testing.assert_allclose(cached, live, atol=1e-5)
    for key in ("loss", "distillation_loss", "student_loss"):
        np.testing.assert_allclose(weights["cached"][1][key], weights["live"][1][key], rtol=1e-5)
    assert weights["live"][0][0].tolist() != student.get_weights()[0].tolist()  # it trained


def test_cached_top_k_loss_and_teacher_is_not_called(models):
    teacher, student = models
    x, y = seq2seq_data(11)
    k, temperature = 4, 2.0
    cached = with_cache(x, teacher, k, temperature)

    class Refusing(keras.Model):
        def call(self, *args, **kwargs):
            raise AssertionError("the teacher ran despite cached outputs")

    distiller = Distiller(teacher, student, alpha=0.0, temperature=temperature)
    distiller.teacher = Refusing()
    distiller.compile(optimizer="sgd")
    result = distiller.evaluate(cached, y, verbose=0, return_dict=True)
    zs = student(x, training=False).numpy().astype("float64")
    p = dense_top_k_teacher(cached[TEACHER_TOP_IDS], cached[TEACHER_TOP_LOG_PROBS], V)
    kd = temperature**2 * (p * (np.log(p) - log_softmax(zs / temperature))).sum(-1)
    np.testing.assert_allclose(result["distillation_loss"], kd[y != 0].mean(), rtol=1e-4)
    np.testing.assert_allclose(result["loss"], kd[y != 0].mean(), rtol=1e-4)
    np.testing.assert_array_equal(distiller(cached), student(x))  # call() drops the cache


def test_ensemble_of_teachers_distils_the_mean_probability(models):
    teacher, student = models
    keras.utils.set_random_seed(11)
    second = build_transformer(V, L, 1, 2, 16, 32, dropout=0.3)
    x, y = seq2seq_data(9)
    temperature, alpha = 2.0, 0.4
    distiller = Distiller([teacher, second], student, alpha=alpha, temperature=temperature)
    distiller.compile(optimizer="sgd")
    result = distiller.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    zs = student(x, training=False).numpy().astype("float64")
    mean = np.mean(
        [
            np.exp(log_softmax(m(x, training=False).numpy().astype("float64") / temperature))
            for m in (teacher, second)
        ],
        axis=0,
    )
    kl = (mean * (np.log(mean) - log_softmax(zs / temperature))).sum(-1) * temperature**2
    real = y != 0
    np.testing.assert_allclose(result["distillation_loss"], kl[real].mean(), rtol=1e-4)
    ce = -np.take_along_axis(log_softmax(zs), y[..., None], -1)[..., 0]
    np.testing.assert_allclose(
        result["loss"], alpha * ce[real].mean() + (1 - alpha) * kl[real].mean(), rtol=1e-4
    )
    assert not second.trainable and distiller.teachers == [teacher, second]
    with pytest.raises(ValueError, match="empty list"):
        Distiller([], student)
    with pytest.raises(ValueError, match="different models"):
        Distiller([teacher, teacher], student)


def test_label_smoothing_changes_only_the_hard_label_term(models):
    _, student = models
    x, y = seq2seq_data(10)
    plain = Distiller(None, student, alpha=1.0)
    smooth = Distiller(None, student, alpha=1.0, label_smoothing=0.1)
    for d in (plain, smooth):
        d.compile(optimizer="sgd")
    got = smooth.evaluate(x, y, verbose=0, return_dict=True)
    zs = student(x, training=False).numpy().astype("float64")
    ls = log_softmax(zs)
    target = 0.9 * np.eye(V)[y] + 0.1 / V
    ce = -(target * ls).sum(-1)
    np.testing.assert_allclose(got["loss"], ce[y != 0].mean(), rtol=1e-4)
    assert got["loss"] > plain.evaluate(x, y, verbose=0, return_dict=True)["loss"]
    with pytest.raises(ValueError, match="label_smoothing"):
        Distiller(None, student, alpha=1.0, label_smoothing=1.0)


@pytest.mark.parametrize("ending", ["dense_softmax", "softmax_layer", "activation_sigmoid"])
def test_a_model_returning_probabilities_is_refused(models, ending):
    teacher, student = models
    inputs = keras.Input((4,))
    if ending == "dense_softmax":
        outputs = keras.layers.Dense(3, activation="softmax")(inputs)
    elif ending == "softmax_layer":
        outputs = keras.layers.Softmax()(keras.layers.Dense(3)(inputs))
    else:
        outputs = keras.layers.Activation("sigmoid")(keras.layers.Dense(3)(inputs))
    probabilities = keras.Model(inputs, outputs)
    logits = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    with pytest.raises(ValueError, match="returns probabilities, but the Distiller needs logits"):
        Distiller(probabilities, logits)
    with pytest.raises(ValueError, match="`student` ends in a softmax"):
        Distiller(logits, probabilities)
    Distiller(logits, keras.Model(inputs, keras.layers.Dense(3)(inputs)))  # logits: fine
