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

from tf_distill import distribution
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


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """`EarlyStopping` on the validation loss whose state (epochs waited, best loss and
    epoch, best weights) a checkpoint can save and a resumed run can put back."""

    def __init__(self, patience):
        super().__init__(monitor="val_loss", patience=patience, restore_best_weights=True)
        self._restored = None

    def state(self):
        return {
            "wait": self.wait,
            "best": None if self.best is None else float(self.best),
            "best_epoch": self.best_epoch,
            "stopped_epoch": self.stopped_epoch,
        }

    def restore(self, state, best_weights):
        self._restored = (state, best_weights)

    def stopped_before(self):
        """Whether the restored run had already stopped early (nothing left to train)."""
        return self._restored is not None and self._restored[0]["stopped_epoch"] > 0

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self._restored is not None:
            state, self.best_weights = self._restored
            self.wait, self.best = state["wait"], state["best"]
            self.best_epoch, self.stopped_epoch = state["best_epoch"], state["stopped_epoch"]


def _seed_states(model):
    """The state variables of the dropout layers' seed generators: `.keras` files do not
    keep them, and without them a resumed run would draw other dropout masks."""
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


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
        early_stopping: the `ResumableEarlyStopping` whose state is saved with each epoch
            (it must come before this callback, so that it has seen the epoch).
        extra_variables: variables trained beside the model's, in the optimizer's order
            after them (the Distiller's hidden-state projections), saved and restored too.
    """

    def __init__(
        self,
        role,
        model,
        optimizer,
        state_dir,
        valid_bleu,
        keep_epochs=1,
        early_stopping=None,
        extra_variables=(),
    ):
        super().__init__()
        self.extra_variables = list(extra_variables)
        self.role, self.trained, self.optimizer_ref = role, model, optimizer
        self.state_dir, self.valid_bleu = state_dir, valid_bleu
        self.early_stopping = early_stopping
        self.curves = empty_curves()
        self.recent = collections.deque(maxlen=keep_epochs) if keep_epochs > 1 else None

    def restore(self):
        """Loads the last checkpoint into the model and optimizer; returns its epoch."""
        state = json.loads((self.state_dir / "state.json").read_text())
        saved = keras.saving.load_model(self.state_dir / "model.keras")
        self.trained.set_weights(saved.get_weights())
        extra = self.state_dir / "extra.npz"
        if self.extra_variables:
            values = np.load(extra)
            for i, variable in enumerate(self.extra_variables):
                variable.assign(values[f"x{i}"])
        self.optimizer_ref.build(self.trained.trainable_variables + self.extra_variables)
        values = np.load(self.state_dir / "optimizer.npz")
        for i, variable in enumerate(self.optimizer_ref.variables):
            variable.assign(values[f"v{i}"])
        rng = self.state_dir / "rng.npz"
        if rng.exists():
            values = np.load(rng)
            for i, variable in enumerate(_seed_states(self.trained)):
                variable.assign(values[f"s{i}"])
        if self.early_stopping is not None and "early_stopping" in state:
            best = self.state_dir / "best.npz"
            best_weights = None
            if best.exists():
                values = np.load(best)
                best_weights = [values[f"w{i}"] for i in range(len(values.files))]
            self.early_stopping.restore(state["early_stopping"], best_weights)
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
            f"val_loss {curves['val_loss'][-1]:.4f}, val {_score_name(self.valid_bleu)} "
            f"{curves['val_bleu'][-1]:.2f}"
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
        if self.extra_variables:
            np.savez(
                tmp / "extra.npz",
                **{f"x{i}": np.asarray(v) for i, v in enumerate(self.extra_variables)},
            )
        np.savez(
            tmp / "rng.npz",
            **{f"s{i}": np.asarray(v) for i, v in enumerate(_seed_states(self.trained))},
        )
        state = {"role": self.role, "epoch": epoch + 1, "curves": curves}
        stopping = self.early_stopping
        if stopping is not None:
            state["early_stopping"] = stopping.state()
            if stopping.best_weights is not None:
                np.savez(
                    tmp / "best.npz",
                    **{f"w{i}": w for i, w in enumerate(stopping.best_weights)},
                )
        (tmp / "state.json").write_text(json.dumps(state))
        (tmp / "curves.json").write_text(json.dumps(curves))
        # The previous checkpoint is replaced only once the new one is complete.
        run_dir_lib.replace_dir(tmp, self.state_dir)


def _score_name(valid_score):
    """What a validation score function measures (its `score_name`; BLEU by default)."""
    return getattr(valid_score, "score_name", "BLEU")


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


def model_precision(model):
    """The dtype policy `model`'s layers compute in: "float32", or the mixed policy some
    of them use (the logits layer of a mixed model stays float32). Layers of other
    policies (a keras-hub preprocessor's int32 / string tokenizer) do not count."""
    names = {layer.dtype_policy.name for layer in [model, *model._flatten_layers()]}
    mixed = sorted(name for name in names if name.startswith("mixed_"))
    return mixed[0] if mixed else "float32"


def float32_copy(model):
    """`model` with every layer computing in float32: itself when it already does, else a
    clone under the float32 policy holding its weights (mixed-precision variables are
    float32 already, so nothing is rounded). What a run saves, evaluates and exports."""
    if model_precision(model) == "float32":
        return model

    def clone(layer):
        config = layer.get_config()
        if "dtype" in config:
            config["dtype"] = "float32"
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


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
    note=None,
):
    """Trains `trainer` (a compiled-to-be `Distiller` around the model of `role`) for
    `epochs` with per-epoch checkpoints in `run_dir`, continuing a killed run's checkpoint
    when `resume`; saves `<role>.keras` and returns a `TrainedModel`.

    Args:
        training: the config's `training` section (optimizer, schedule, early stopping).
        valid_bleu: a function of a model giving its validation BLEU (curves, averaging).
        pairs: how many training pairs `train_ds` holds (for the log and the report).
        note: a dict stored inside the saved `.keras` file (`run_dir.save_model`), e.g.
            the fingerprints of the tokenizers the model reads and writes.
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
    stopping = ResumableEarlyStopping(training.early_stopping_patience)
    checkpoint = EpochCheckpoint(
        role,
        model,
        optimizer,
        state_dir,
        valid_bleu,
        average_epochs,
        early_stopping=stopping,
        extra_variables=getattr(trainer, "distillation_variables", []),
    )
    initial_epoch = 0
    if resume and (state_dir / "state.json").exists():
        initial_epoch = checkpoint.restore()
        _LOG.info(f"{role}: resuming after epoch {initial_epoch}")
    callbacks = [
        stopping,  # before the checkpoint, which saves its state of the same epoch
        checkpoint,
        keras.callbacks.TensorBoard(
            log_dir=str(run_dir.logs_dir(role)), write_graph=False, profile_batch=0
        ),
    ]
    precision = model_precision(model)
    _LOG.info(
        f"{role}: {model.count_params():,} parameters, {pairs:,} training pairs, "
        f"{epochs} epochs of {steps} steps"
        + ("" if precision == "float32" else f", {precision} compute")
    )
    if initial_epoch < epochs and not stopping.stopped_before():
        # Epoch i trains on pass i of `train_ds` (each pass shuffles anew, in an order
        # fixed by the seed and the pass number); a resumed run skips the finished
        # epochs' passes (data only, no training), so it sees the batches an
        # uninterrupted run would.
        epoch_passes = train_ds.repeat().skip(initial_epoch * steps)
        trainer.fit(
            distribution.split_global_batches(epoch_passes),
            steps_per_epoch=steps,
            validation_data=distribution.split_global_batches(valid_ds),
            epochs=epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            shuffle=False,  # the dataset shuffles itself, within length buckets
            verbose=2,
        )
    else:  # nothing left to train: what `fit` would have done at its end
        stopping.set_model(trainer)
        stopping.on_train_begin()
        stopping.on_train_end()
    summary = {
        "pairs": int(pairs),
        "epochs": len(checkpoint.curves["loss"]),
        "steps": int(optimizer.iterations.numpy()),
        "precision": precision,
    }
    averaging = None
    if average_epochs > 1:
        averaging = average_weights(role, model, checkpoint.recent, valid_bleu)
    model = float32_copy(model)  # trained in mixed precision or not: kept in float32
    run_dir_lib.save_model(model, run_dir.model_file(role), note=note)
    run_dir_lib.write_json(
        run_dir.summary_file(role), {"training": summary, "averaging": averaging}
    )
    return TrainedModel(model, checkpoint.curves, summary, averaging)
