"""Training one model of a run: optimizer and schedule from the config, per-epoch
checkpoints that a killed run resumes from, early stopping, checkpoint averaging.

`fit_model` is what the pipeline's teacher, baseline and student stages call; it knows the
run directory only through `tf_distill.run_dir.RunDirectory`.
"""

import collections
import dataclasses
import json
import logging
import math
import shutil

import keras
import numpy as np

from tf_distill import run_dir as run_dir_lib
from tf_distill.config import resolve_jit_compile

_LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainedModel:
    """A model trained (or loaded back) by `fit_model`, with what its training recorded."""

    model: keras.Model
    curves: dict  # per-epoch loss, val_loss, ce, val_ce, val_bleu
    training: dict  # pairs, epochs, optimizer steps
    averaging: dict | None = None  # checkpoint averaging: validation BLEU before / after


def build_optimizer(training, total_steps):
    """AdamW with a linear warmup to `training.learning_rate`, then cosine decay to
    `training.cosine_final_fraction` of it over `total_steps`; `training.weight_decay` and
    `training.clipnorm` as given."""
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        decay_steps=total_steps,
        warmup_target=training.learning_rate,
        warmup_steps=min(training.warmup_steps, total_steps // 2),
        alpha=training.cosine_final_fraction,
    )
    return keras.optimizers.AdamW(
        learning_rate=schedule, weight_decay=training.weight_decay, clipnorm=training.clipnorm
    )


def empty_curves():
    return {"loss": [], "val_loss": [], "ce": [], "val_ce": [], "val_bleu": []}


class EpochCheckpoint(keras.callbacks.Callback):
    """After every epoch: validation BLEU for the curves, then the model, the optimizer
    state, the epoch number and (for checkpoint averaging) the weights of the last
    `keep_epochs` epochs, written so that a killed run resumes from here.

    Args:
        role: the model's name in the run ("teacher", "student", ...).
        model: the model being trained.
        optimizer: its optimizer (its variables are saved).
        state_dir: the checkpoint directory (`RunDirectory.state_dir(role)`).
        valid_bleu: a function of the model giving its validation BLEU.
        keep_epochs: epochs of weights kept for averaging (1: none).
    """

    def __init__(self, role, model, optimizer, state_dir, valid_bleu, keep_epochs=1):
        super().__init__()
        self.role, self.trained, self.optimizer_ref = role, model, optimizer
        self.state_dir, self.valid_bleu = state_dir, valid_bleu
        self.curves = empty_curves()
        self.recent = collections.deque(maxlen=keep_epochs) if keep_epochs > 1 else None

    def restore(self):
        """Loads the last checkpoint into the model and optimizer; returns its epoch."""
        state = json.loads((self.state_dir / "state.json").read_text())
        saved = keras.saving.load_model(self.state_dir / "model.keras")
        self.trained.set_weights(saved.get_weights())
        self.optimizer_ref.build(self.trained.trainable_variables)
        values = np.load(self.state_dir / "optimizer.npz")
        for i, variable in enumerate(self.optimizer_ref.variables):
            variable.assign(values[f"v{i}"])
        self.curves = {**empty_curves(), **state["curves"]}
        path = self.state_dir / "recent.npz"
        if self.recent is not None and path.exists():
            values = np.load(path)
            epochs = sorted({int(key.split("_")[0][1:]) for key in values.files})
            count = len(self.trained.get_weights())
            for e in epochs:
                self.recent.append([values[f"e{e}_{i}"] for i in range(count)])
        return state["epoch"]

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        curves = self.curves
        curves["loss"].append(float(logs.get("loss", float("nan"))))
        curves["val_loss"].append(float(logs.get("val_loss", float("nan"))))
        # The cross-entropy on its own (the student's `loss` also holds the KL term), so
        # that every model's curve on the plot measures the same thing.
        curves["ce"].append(float(logs.get("student_loss", float("nan"))))
        curves["val_ce"].append(float(logs.get("val_student_loss", float("nan"))))
        curves["val_bleu"].append(round(self.valid_bleu(self.trained), 2))
        _LOG.info(
            f"{self.role} epoch {epoch + 1}: loss {curves['loss'][-1]:.4f}, "
            f"val_loss {curves['val_loss'][-1]:.4f}, val BLEU {curves['val_bleu'][-1]:.2f}"
        )
        tmp = self.state_dir.with_name(self.state_dir.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self.trained.save(tmp / "model.keras")
        np.savez(
            tmp / "optimizer.npz",
            **{f"v{i}": np.asarray(v) for i, v in enumerate(self.optimizer_ref.variables)},
        )
        if self.recent is not None:
            self.recent.append(self.trained.get_weights())
            np.savez(
                tmp / "recent.npz",
                **{
                    f"e{e}_{i}": w
                    for e, weights in enumerate(self.recent)
                    for i, w in enumerate(weights)
                },
            )
        state = {"role": self.role, "epoch": epoch + 1, "curves": curves}
        (tmp / "state.json").write_text(json.dumps(state))
        (tmp / "curves.json").write_text(json.dumps(curves))
        # The previous checkpoint is replaced only once the new one is complete.
        run_dir_lib.replace_dir(tmp, self.state_dir)


def average_weights(role, model, recent, valid_bleu):
    """Replaces the weights of `model` with their mean over the `recent` epochs when that
    scores at least as well on the validation sentences (selection on validation); returns
    what was measured, or None with fewer than two epochs."""
    if len(recent) < 2:
        return None
    last = model.get_weights()
    before = valid_bleu(model)
    model.set_weights([np.mean(ws, axis=0) for ws in zip(*recent, strict=True)])
    after = valid_bleu(model)
    kept = after >= before
    if not kept:
        model.set_weights(last)
    _LOG.info(
        f"{role}: weights averaged over the last {len(recent)} epochs: validation BLEU "
        f"{before:.2f} -> {after:.2f} ({'kept' if kept else 'not kept'})"
    )
    return {
        "epochs": len(recent),
        "valid_bleu_last": round(before, 2),
        "valid_bleu_average": round(after, 2),
        "kept": kept,
    }


def load_trained(role, run_dir):
    """The finished model of `role` from a previous process, with its records."""
    curves = json.loads((run_dir.state_dir(role) / "curves.json").read_text())
    summary = {}
    if run_dir.summary_file(role).exists():
        summary = json.loads(run_dir.summary_file(role).read_text())
    _LOG.info(f"{role}: already trained, loaded {run_dir.model_file(role)}")
    return TrainedModel(
        model=keras.saving.load_model(run_dir.model_file(role)),
        curves={**empty_curves(), **curves},
        training=summary.get("training", {}),
        averaging=summary.get("averaging"),
    )


def fit_model(
    role,
    trainer,
    train_ds,
    valid_ds,
    *,
    epochs,
    pairs,
    training,
    run_dir,
    resume,
    valid_bleu,
    average_epochs=1,
):
    """Trains `trainer` (a compiled-to-be `Distiller` around the model of `role`) for
    `epochs` with per-epoch checkpoints in `run_dir`, continuing a killed run's checkpoint
    when `resume`; saves `<role>.keras` and returns a `TrainedModel`.

    Args:
        training: the config's `training` section (optimizer, schedule, early stopping).
        valid_bleu: a function of a model giving its validation BLEU (curves, averaging).
        pairs: how many training pairs `train_ds` holds (for the log and the report).
    """
    if resume and run_dir.model_file(role).exists():
        return load_trained(role, run_dir)
    model = trainer.student
    steps = int(train_ds.cardinality())
    if steps <= 0:  # unknown (length buckets): estimated from the pairs
        steps = max(1, math.ceil(pairs / training.batch_size))
    total_steps = max(1, epochs * steps)
    optimizer = build_optimizer(training, total_steps)
    trainer.compile(optimizer=optimizer, jit_compile=resolve_jit_compile(training.jit_compile))
    state_dir = run_dir.state_dir(role)
    checkpoint = EpochCheckpoint(role, model, optimizer, state_dir, valid_bleu, average_epochs)
    initial_epoch = 0
    if resume and (state_dir / "state.json").exists():
        initial_epoch = checkpoint.restore()
        _LOG.info(f"{role}: resuming after epoch {initial_epoch}")
    callbacks = [
        checkpoint,
        keras.callbacks.EarlyStopping(
            monitor="val_loss",
            patience=training.early_stopping_patience,
            restore_best_weights=True,
        ),
        keras.callbacks.TensorBoard(
            log_dir=str(run_dir.logs_dir(role)), write_graph=False, profile_batch=0
        ),
    ]
    _LOG.info(
        f"{role}: {model.count_params():,} parameters, {pairs:,} training pairs, "
        f"{epochs} epochs of {steps} steps"
    )
    if initial_epoch < epochs:
        trainer.fit(
            train_ds,
            validation_data=valid_ds,
            epochs=epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            shuffle=False,  # the dataset shuffles itself, within length buckets
            verbose=2,
        )
    summary = {
        "pairs": int(pairs),
        "epochs": len(checkpoint.curves["loss"]),
        "steps": int(optimizer.iterations.numpy()),
    }
    averaging = None
    if average_epochs > 1:
        averaging = average_weights(role, model, checkpoint.recent, valid_bleu)
    run_dir_lib.save_model(model, run_dir.model_file(role))
    run_dir_lib.write_json(
        run_dir.summary_file(role), {"training": summary, "averaging": averaging}
    )
    return TrainedModel(model, checkpoint.curves, summary, averaging)
