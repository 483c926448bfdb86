"""The main job for `"task": "classification"`: labelled texts -> stratified splits ->
tokenizers (the student's, and the teacher's own for a keras-hub teacher) -> teacher ->
baseline -> teacher class probabilities -> student -> evaluation -> export -> report.

The same run directory, lock, resume and export as translation: every model checkpoints
each epoch (`training.fit_model`), a resumed run reuses what is finished, bad input stops a
fresh run with nothing left behind.
"""

import dataclasses
import json
import logging
import shutil
import time
from pathlib import Path

import keras
import numpy as np

from tf_distill import classification_metrics as metrics
from tf_distill import data as data_lib
from tf_distill import distribution, hub_teacher
from tf_distill.data import DataError
from tf_distill.data.labelled import LabelledTexts, augment, read_labelled, stratified_split
from tf_distill.data.synthetic_reviews import LABEL_NAMES, generate_reviews
from tf_distill.distiller import (
    TEACHER_TEMPERATURE,
    TEACHER_TOP_IDS,
    TEACHER_TOP_LOG_PROBS,
    Distiller,
)
from tf_distill.errors import ConfigError
from tf_distill.evaluation import file_size
from tf_distill.export import ExportError
from tf_distill.models import build_classifier
from tf_distill.pipeline.model_stages import (
    RunContext,
    cached_features,
    distiller_for,
    load_teacher_file,
    training_dtype,
)
from tf_distill.pipeline.run import _Timer
from tf_distill.run_dir import read_dir, replace_dir, write_json, write_text
from tf_distill.teacher_cache import teacher_features_of_inputs
from tf_distill.training import fit_model

_LOG = logging.getLogger(__name__)
LABELS_FILE = "labels.json"


# Data. --------------------------------------------------------------------------------


def read_texts(config):
    """All labelled texts of the config's data (before the split)."""
    d = config.data
    if d.source == "synthetic":
        texts, labels = generate_reviews(d.num_pairs, seed=d.seed, noise=d.label_noise)
        return LabelledTexts(texts, labels, list(LABEL_NAMES))
    if d.source == "tfds":
        data = _read_tfds(d)
    else:
        data = read_labelled(
            d.path,
            text_column=d.text_column,
            label_column=d.label_column,
            header=d.header,
            delimiter=d.delimiter if d.source == "tsv" or d.delimiter else None,
        )
    if d.max_pairs is not None and len(data.texts) > d.max_pairs:
        rows = sorted(np.random.default_rng(d.seed).permutation(len(data.texts))[: d.max_pairs])
        data = LabelledTexts(
            [data.texts[i] for i in rows], [data.labels[i] for i in rows], data.label_names
        )
    return data


def _read_tfds(d):
    """A tfds text classification set (e.g. imdb_reviews), all its splits together."""
    import tensorflow_datasets as tfds

    text_key = d.text_column if isinstance(d.text_column, str) else "text"
    label_key = d.label_column if isinstance(d.label_column, str) else "label"
    try:
        builder = tfds.builder(d.tfds_name, data_dir=d.data_dir)
        if d.download:
            builder.download_and_prepare()
        label_feature = builder.info.features[label_key]
        texts, labels = [], []
        for split in builder.info.splits:
            for example in tfds.as_numpy(builder.as_dataset(split=split)):
                texts.append(example[text_key].decode("utf-8").strip())
                labels.append(int(example[label_key]))
    except Exception as error:  # tfds raises many kinds: missing data, unknown name or key
        raise DataError(
            f"tfds {d.tfds_name!r}: {type(error).__name__}: {str(error).splitlines()[0][:200]} "
            "(set data.download to true to fetch it once, or data.data_dir to where it is)."
        ) from None
    names = list(getattr(label_feature, "names", None) or sorted(set(labels)))
    return LabelledTexts(texts, labels, [str(n) for n in names])


@dataclasses.dataclass
class Prepared:
    splits: object  # LabelledSplits
    label_names: list
    summary: dict


def prepare_data(config):
    data = read_texts(config)
    splits = stratified_split(data, config.data.valid_size, config.data.test_size, config.data.seed)
    counts = {
        name: np.bincount(part.labels, minlength=len(data.label_names)).tolist()
        for name, part in zip(("train", "valid", "test"), splits, strict=True)
    }
    summary = {
        "source": config.data.source,
        "examples": len(data.texts),
        "label_names": data.label_names,
        "train": len(splits.train.texts),
        "valid": len(splits.valid.texts),
        "test": len(splits.test.texts),
        "per_class": counts,
    }
    _LOG.info(
        f"data: {len(data.texts)} texts, {len(data.label_names)} classes "
        f"{data.label_names}, split {summary['train']} / {summary['valid']} / {summary['test']}"
    )
    return Prepared(splits, data.label_names, summary)


def transfer_texts(config, splits):
    """Unlabelled texts for the teacher to label: perturbed copies of the training texts
    (`distillation.augment_copies`), then `distillation.transfer_size` / `transfer_path`;
    none of them a text of any split; [] when the config asks for none."""
    d = config.distillation
    exclude = {t for part in splits for t in part.texts}
    augmented = []
    if d.augment_copies:
        augmented = augment(splits.train.texts, d.augment_copies, config.data.seed, exclude=exclude)
        exclude |= set(augmented)
    return augmented + _transfer_texts(config, exclude)


def _transfer_texts(config, exclude):
    from tf_distill import transfer

    d = config.distillation
    if d.transfer_path is not None:
        texts = transfer.select_sources(
            transfer.read_sources(d.transfer_path, d.transfer_column), exclude, d.transfer_size
        )
        if not texts:
            raise DataError(
                f"distillation.transfer_path {d.transfer_path!r}: every text is also in the "
                "labelled data, so the transfer set is empty. Give other texts, or remove the key."
            )
        return texts
    if d.transfer_size is None:
        return []
    wanted = d.transfer_size + len(exclude)  # enough even if every split text comes again
    texts, _ = generate_reviews(wanted, seed=config.data.seed + transfer.SYNTHETIC_SEED_OFFSET)
    return transfer.select_sources(texts, exclude, d.transfer_size)


@dataclasses.dataclass
class Tokenizers:
    student: object  # tf_distill Tokenizer
    teacher: object  # keras-hub preprocessor (bert / preset teacher) or None (shared)


def prepare_tokenizers(ctx, prepared):
    """The student's tokenizer (saved as the run's `tokenizer/`, with the label names) and,
    for a keras-hub teacher, its own WordPiece vocabulary (`teacher_tokenizer/`)."""
    config, run_dir = ctx.config, ctx.run_dir
    directory = read_dir(run_dir.tokenizer_dir)
    texts = prepared.splits.train.texts
    if ctx.resume and (directory / "source_vocab.txt").exists():
        student = data_lib.Tokenizer.load(directory, "source")
    else:
        student = data_lib.Tokenizer.train(texts, config.tokenizer.vocabulary_size)
        tmp = directory.with_name(directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        student.save(tmp, "source")
        write_json(tmp / LABELS_FILE, {"label_names": prepared.label_names}, indent=2)
        replace_dir(tmp, directory)
    _LOG.info(f"student vocabulary: {student.vocabulary_size}")
    teacher = None
    t = config.teacher
    if t.preset is not None:
        model = hub_teacher.load_preset_teacher(t.preset, len(prepared.label_names))
        teacher = model.preprocessor
    elif t.architecture == "bert":
        path = run_dir.path / "teacher_tokenizer" / "vocab.txt"
        if ctx.resume and path.exists():
            vocabulary = path.read_text(encoding="utf-8").splitlines()
        else:
            size = t.vocabulary_size or 4 * config.tokenizer.vocabulary_size
            vocabulary = hub_teacher.bert_vocabulary(texts, size)
            path.parent.mkdir(exist_ok=True)
            write_text(path, "".join(token + "\n" for token in vocabulary))
        teacher = hub_teacher.bert_preprocessor(vocabulary, config.training.max_sequence_length + 2)
        _LOG.info(f"teacher vocabulary (keras-hub WordPiece): {len(vocabulary)}")
    return Tokenizers(student, teacher)


@dataclasses.dataclass
class Split:
    """One split as arrays: the student's ids, the teacher's inputs (None when shared)."""

    texts: list
    labels: np.ndarray
    token_ids: np.ndarray  # (N, max_sequence_length) padded
    teacher_inputs: dict | None
    truncated: int


def make_split(part, tokenizers, max_length):
    rows = tokenizers.student.tokenize(part.texts)
    truncated = sum(len(r) > max_length for r in rows)
    ids = np.zeros((len(rows), max_length), np.int32)
    for i, row in enumerate(rows):
        row = row[:max_length] or [tokenizers.student.unk_id]
        ids[i, : len(row)] = row
    teacher = None
    if tokenizers.teacher is not None:
        teacher = hub_teacher.teacher_inputs(tokenizers.teacher, part.texts)
    return Split(part.texts, np.asarray(part.labels, np.int32), ids, teacher, truncated)


# Models. ------------------------------------------------------------------------------


# The run's config, directory and resume flag, as for translation.
Context = RunContext


def build_student(config, role, tokenizers, num_classes):
    m = config.teacher if role == "teacher" else config.student
    return build_classifier(
        vocabulary_size=tokenizers.student.vocabulary_size,
        num_classes=num_classes,
        max_sequence_length=config.training.max_sequence_length,
        num_layers=m.num_encoder_layers or m.num_layers,
        num_heads=m.num_heads,
        hidden_dim=m.hidden_dim,
        intermediate_dim=m.intermediate_dim,
        dropout=m.dropout,
        pooling=m.pooling,
        position_embedding=m.position_embedding,
        normalize_first=m.normalize_first,
        dtype=training_dtype(config),
        name=role,
    )


def build_teacher(config, tokenizers, num_classes):
    t = config.teacher
    if t.preset is not None:
        return hub_teacher.load_preset_teacher(t.preset, num_classes)
    if t.architecture == "bert":
        return hub_teacher.build_bert_teacher(
            tokenizers.teacher,
            num_classes,
            t.num_encoder_layers or t.num_layers,
            t.num_heads,
            t.hidden_dim,
            t.intermediate_dim,
            t.dropout,
        )
    return build_student(config, "teacher", tokenizers, num_classes)


def load_teacher(path, tokenizers, label_names, training):
    """A classifier teacher from `teacher.path` (the teacher.keras of an earlier run),
    checked against this run: a `build_classifier` model reading this run's vocabulary
    (the tokenizer/ folder beside the file, when there is one) and predicting this run's
    labels in the same order, taking texts as long as `training.max_sequence_length`.

    Raises:
        ConfigError: naming the file, what differs and the fix.
    """
    from tf_distill.features import CLASSIFIER, model_kind
    from tf_distill.training import TrainedModel, empty_curves

    where = f"teacher.path {str(path)!r}"
    fix = "Load the teacher.keras of a run on the same data and tokenizer settings, or remove "
    fix += "teacher.path to train one."
    model = load_teacher_file(path)
    if model_kind(model) != CLASSIFIER:
        raise ConfigError(
            f"{where} is not a classifier built by tf_distill (build_classifier). {fix}"
        )
    embedding = model.get_layer("embedding")
    head = model.get_layer("classifier_head")
    problems = []
    if embedding.vocabulary_size != tokenizers.student.vocabulary_size:
        problems.append(
            f"its vocabulary has {embedding.vocabulary_size} entries, this run's "
            f"{tokenizers.student.vocabulary_size}"
        )
    if head.units != len(label_names):
        problems.append(f"it predicts {head.units} classes, this run has {len(label_names)}")
    if embedding.max_sequence_length < training.max_sequence_length:
        problems.append(
            f"it takes at most {embedding.max_sequence_length} tokens, "
            f"training.max_sequence_length is {training.max_sequence_length}"
        )
    folder = Path(path).parent / "tokenizer"
    if (folder / "source_vocab.txt").exists():
        saved = data_lib.Tokenizer.load(folder, "source")
        if saved.fingerprint != tokenizers.student.fingerprint:
            problems.append("its tokenizer/ holds another vocabulary (ids mean other words)")
        if (folder / LABELS_FILE).exists() and read_label_names(folder) != list(label_names):
            problems.append(
                f"its labels are {read_label_names(folder)}, this run's {list(label_names)}"
            )
    else:
        _LOG.warning(f"{where} has no tokenizer/ beside it: its vocabulary cannot be checked")
    if problems:
        raise ConfigError(f"{where} does not fit this run: {'; '.join(problems)}. {fix}")
    _LOG.info(f"teacher loaded from {path}")
    return TrainedModel(model, empty_curves(), {})


def _inputs_of(model, split):
    """What `model` reads of `split`: the teacher's own inputs for a keras-hub model."""
    if hub_teacher.is_hub_model(model):
        return split.teacher_inputs
    return {"token_ids": split.token_ids}


def predict_logits(model, inputs, batch_size=256):
    """Float32 (N, C) logits of `model` on a dict of (N, ...) arrays, in batches."""
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def run(batch):
        return tf.cast(model(batch, training=False), tf.float32)

    n = len(next(iter(inputs.values())))
    out = [
        run({k: v[i : i + batch_size] for k, v in inputs.items()}).numpy()
        for i in range(0, n, batch_size)
    ]
    return np.concatenate(out)


def valid_score(split, num_classes):
    """A function of a model giving its validation macro-F1 in points (the curves)."""

    def score(model):
        predictions = predict_logits(model, _inputs_of(model, split)).argmax(-1)
        return 100 * metrics.macro_f1(split.labels, predictions, num_classes)

    score.score_name = "macro-F1"  # the curves' key stays "val_bleu", read by plot_curves
    return score


def _dataset(model_inputs, labels, batch_size, seed, shuffle):
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((model_inputs, labels))
    if shuffle:
        dataset = dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _built_and_trained(ctx, role, build, *args, **kwargs):
    """`train_model` of the model `build()` makes, both under the run's tf.distribute
    strategy (`tf_distill.distribution`); the result holds a local copy of the model."""
    return distribution.distributed(lambda: train_model(ctx, role, build(), *args, **kwargs))


def train_model(ctx, role, model, train, valid, num_classes, teacher=None, extra=None):
    """Trains `model` as `role` with per-epoch checkpoints: on the labels alone, or
    distilled from `teacher` (through `extra`: cached teacher outputs, or teacher inputs)."""
    t = ctx.config.training
    if teacher is None:
        trainer = Distiller(
            None,
            model,
            alpha=1.0,
            label_smoothing=t.teacher_label_smoothing if role == "teacher" else 0.0,
        )
    else:
        trainer = distiller_for(ctx.config, teacher, model)

    def inputs(split, columns):
        x = dict(_inputs_of(model, split))
        x.update(columns or {})
        return x

    train_extra, valid_extra = extra or (None, None)
    if teacher is not None:
        train_extra = _with_feature_cache(ctx, trainer, train, train_extra)
        valid_extra = _with_feature_cache(ctx, trainer, valid, valid_extra)
    train_ds = _dataset(inputs(train, train_extra), train.labels, t.batch_size, t.seed, True)
    valid_ds = _dataset(inputs(valid, valid_extra), valid.labels, t.batch_size, None, False)
    training = t
    if role == "teacher":
        epochs = t.teacher_epochs or t.epochs
        training = dataclasses.replace(t, learning_rate=t.teacher_learning_rate or t.learning_rate)
    elif role == "baseline":
        epochs = t.epochs
    else:
        epochs = t.student_epochs or t.epochs
    return fit_model(
        role,
        trainer,
        train_ds,
        valid_ds,
        epochs=epochs,
        pairs=len(train.labels),
        training=training,
        run_dir=ctx.run_dir,
        resume=ctx.resume,
        valid_bleu=valid_score(valid, num_classes),
    )


def _with_feature_cache(ctx, trainer, split, columns):
    """`columns` plus the teacher's features on `split` when the trainer has a feature
    term and `distillation.feature_cache_mb` allows (see model_stages.cached_features)."""
    token_ids = split.token_ids
    features = cached_features(
        ctx.config,
        trainer,
        len(token_ids),
        token_ids.shape[1],
        lambda dtype: teacher_features_of_inputs(
            trainer,
            {"token_ids": token_ids},
            ctx.config.distillation.teacher_batch_size,
            dtype,
        ),
    )
    return {**(columns or {}), **features} if features else columns


def teacher_columns(ctx, teacher, split):
    """What the student's batches carry for the teacher: with `distillation.teacher_top_k`
    its class log probabilities at T, computed once (all C classes: a class logit vector
    is small); without, its own inputs (it then runs on every batch), or nothing when it
    reads the student's ids."""
    d = ctx.config.distillation
    if d.teacher_top_k is None:
        if split.teacher_inputs is None:
            return None
        return {"teacher_inputs": split.teacher_inputs}
    logits = predict_logits(teacher, _inputs_of(teacher, split), d.teacher_batch_size)
    scaled = logits.astype(np.float64) / d.temperature
    top = scaled.max(-1, keepdims=True)
    log_probs = scaled - top - np.log(np.exp(scaled - top).sum(-1, keepdims=True))
    n, c = logits.shape
    return {
        TEACHER_TOP_IDS: np.tile(np.arange(c, dtype=np.int32), (n, 1)),
        TEACHER_TOP_LOG_PROBS: log_probs.astype(np.float32),
        TEACHER_TEMPERATURE: np.full((n,), d.temperature, np.float32),
    }


def label_transfer(ctx, teacher, texts, tokenizers, train):
    """The training split plus the transfer texts, each labelled with the teacher's most
    likely class (the hard label of the student's CE term; its KD term sees the teacher's
    whole distribution, as on the labelled texts). The baseline never sees them."""
    part = LabelledTexts(list(texts), [0] * len(texts), [])
    extra = make_split(part, tokenizers, ctx.config.training.max_sequence_length)
    labels = predict_logits(teacher, _inputs_of(teacher, extra)).argmax(-1).astype(np.int32)
    counts = np.bincount(labels, minlength=int(teacher.outputs[0].shape[-1])).tolist()
    _LOG.info(f"transfer set: {len(texts)} texts labelled by the teacher, per class {counts}")
    teacher_inputs = None
    if train.teacher_inputs is not None:
        teacher_inputs = {
            k: np.concatenate([v, extra.teacher_inputs[k]]) for k, v in train.teacher_inputs.items()
        }
    return Split(
        train.texts + extra.texts,
        np.concatenate([train.labels, labels]),
        np.concatenate([train.token_ids, extra.token_ids]),
        teacher_inputs,
        train.truncated + extra.truncated,
    )


def round_student(ctx, student, test):
    """Rounds the student's weights to the int8 grid (`export.round_to_int8_grid`) before
    it is evaluated, so that the figures are those of the weights the int8 file stores;
    returns the share of test labels the rounding left unchanged (on resume, what was
    measured then: rounding twice changes nothing)."""
    from tf_distill.run_dir import save_model
    from tf_distill.tflite import round_to_int8_grid

    record = ctx.run_dir.record_file("int8_rounding")
    if ctx.resume and record.exists():
        round_to_int8_grid(student)
        save_model(student, ctx.run_dir.model_file("student"))
        return json.loads(record.read_text())
    before = predict_logits(student, _inputs_of(student, test)).argmax(-1)
    tensors = round_to_int8_grid(student)
    after = predict_logits(student, _inputs_of(student, test)).argmax(-1)
    summary = {"tensors": tensors, "same_label": round(float(np.mean(before == after)), 4)}
    _LOG.info(
        f"student: {tensors} weight tensors rounded to the int8 grid; test labels unchanged "
        f"on {summary['same_label']:.1%}"
    )
    write_json(record, summary)
    save_model(student, ctx.run_dir.model_file("student"))
    return summary


# Evaluation. --------------------------------------------------------------------------


def evaluate(ctx, models, test, label_names, latency_messages):
    """Scores, size and latency of each model on the test split, and the paired bootstrap
    of student - baseline and student - teacher."""
    import tensorflow as tf

    e = ctx.config.evaluation
    num_classes = len(label_names)
    results, predictions = {}, {}
    for role, model in models.items():
        inputs = _inputs_of(model, test)
        predictions[role] = predict_logits(model, inputs).argmax(-1)
        found = metrics.scores(test.labels, predictions[role], num_classes)
        run = tf.function(lambda b, m=model: m(b, training=False), reduce_retracing=True)
        times = []
        for i in range(min(latency_messages, len(test.labels)) + 1):
            one = {k: v[i : i + 1] for k, v in inputs.items()}
            start = time.perf_counter()
            run(one)
            times.append((time.perf_counter() - start) * 1000)
        path = ctx.run_dir.model_file(role)
        found.update(
            parameters=int(model.count_params()),
            bytes=file_size(path) if path.exists() else None,
            latency_ms=round(float(np.median(times[1:])), 3),  # the first call traces
        )
        results[role] = found
        _LOG.info(f"{role}: accuracy {found['accuracy']:.4f}, macro-F1 {found['macro_f1']:.4f}")
    comparisons = {}
    for a, b in (("student", "baseline"), ("student", "teacher"), ("baseline", "teacher")):
        if a in predictions and b in predictions:
            comparisons[f"{a}_vs_{b}"] = metrics.paired_bootstrap(
                test.labels,
                predictions[a],
                predictions[b],
                num_classes,
                samples=e.bootstrap_samples,
                seed=ctx.config.training.seed,
            )
    return results, comparisons


def export_model(ctx, student, test, label_names):
    from tf_distill import export

    e = ctx.config.export
    rows = test.token_ids[: e.parity_sentences]
    metadata = export.export_student(
        student,
        ctx.run_dir.path,
        rows,
        formats=e.formats,
        tokenizer_dir=ctx.run_dir.tokenizer_dir,
        extra_metadata={"label_names": label_names},
        min_sequence_agreement=e.min_sequence_agreement,
        int8_mode=e.int8_mode,
    )
    figures = {
        "files": {k: v["bytes"] for k, v in metadata["files"].items()},
        "parity": metadata["parity"],
    }
    int8 = ctx.run_dir.export_dir / "student_int8.tflite"
    if int8.exists():
        figures["int8_latency_ms"] = tflite_latency(
            int8, rows[: ctx.config.evaluation.latency_sentences]
        )
    return figures


def export_finished_run(config, run_dir, student_path):
    """`tf-distill export` for a classification run: the test split rebuilt from the
    config (deterministic), the run's tokenizer, `student.keras` exported again."""
    prepared = prepare_data(config)
    tokenizer = data_lib.Tokenizer.load(read_dir(run_dir.tokenizer_dir), "source")
    test = make_split(
        prepared.splits.test, Tokenizers(tokenizer, None), config.training.max_sequence_length
    )
    try:
        student = keras.saving.load_model(student_path)
    except Exception as error:  # a truncated or foreign file fails in Keras' own way
        raise ConfigError(
            f"{student_path} cannot be loaded ({type(error).__name__}: "
            f"{str(error).splitlines()[0][:160]}). Finish the run with `tf-distill train "
            "--config ... --resume`, which writes it again."
        ) from None
    return export_model(Context(config, run_dir), student, test, prepared.label_names)


def tflite_latency(path, rows):
    """Median ms per message of a TFLite classifier at batch 1 on one thread (pads cut)."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path), num_threads=1).get_signature_runner("classify")
    times = []
    for row in list(rows) + [rows[0]]:
        ids = row[: max(1, int(np.count_nonzero(row)))][None]
        start = time.perf_counter()
        runner(token_ids=ids.astype(np.int32))
        times.append((time.perf_counter() - start) * 1000)
    return round(float(np.median(times[1:])), 3)


# The run. -----------------------------------------------------------------------------


def run_stages(ctx):
    """Every classification stage in order, in `ctx.run_dir` (set up by `run_pipeline`)."""
    from tf_distill import classification_report

    config, run_dir = ctx.config, ctx.run_dir
    t = config.training
    if config.teacher.architecture == "bert" or config.teacher.preset:
        import keras_hub  # noqa: F401  (registers its classes, to load a saved teacher)
    stage = _Timer(run_dir.record_file("timings"), ctx.resume)
    write_json(run_dir.config_file, config.to_dict(), indent=2)
    keras.utils.set_random_seed(t.seed)

    prepared = stage("data", prepare_data, config)
    transfer = transfer_texts(config, prepared.splits)  # a bad file stops the run now
    label_names = prepared.label_names
    num_classes = len(label_names)
    tokenizers = stage("tokenizer", prepare_tokenizers, ctx, prepared)
    splits = stage(
        "datasets",
        lambda: [make_split(p, tokenizers, t.max_sequence_length) for p in prepared.splits],
    )
    train, valid, test = splits
    share = train.truncated / max(1, len(train.labels))
    if share > t.max_truncated_share:
        raise DataError(
            f"training.max_sequence_length {t.max_sequence_length} cuts {share:.1%} of the "
            f"training texts (more than training.max_truncated_share "
            f"{t.max_truncated_share:.0%}). Raise training.max_sequence_length."
        )
    prepared.summary["truncated_train_share"] = round(share, 4)

    trained = {}
    keras.utils.set_random_seed(t.seed)
    if config.teacher.path is not None:
        trained["teacher"] = stage(
            "teacher", load_teacher, config.teacher.path, tokenizers, label_names, t
        )
    else:
        trained["teacher"] = stage(
            "teacher",
            _built_and_trained,
            ctx,
            "teacher",
            lambda: build_teacher(config, tokenizers, num_classes),
            train,
            valid,
            num_classes,
        )
    teacher = trained["teacher"].model
    if config.distillation.baseline:
        keras.utils.set_random_seed(t.seed + 1)
        trained["baseline"] = stage(
            "baseline",
            _built_and_trained,
            ctx,
            "baseline",
            lambda: build_student(config, "baseline", tokenizers, num_classes),
            train,
            valid,
            num_classes,
        )
    student_train = train
    if transfer:
        student_train = stage(
            "transfer_set", label_transfer, ctx, teacher, transfer, tokenizers, train
        )
        prepared.summary["transfer"] = len(transfer)
    columns = stage(
        "teacher_outputs",
        lambda: (
            teacher_columns(ctx, teacher, student_train),
            teacher_columns(ctx, teacher, valid),
        ),
    )
    keras.utils.set_random_seed(t.seed + 1)  # the same initial weights as the baseline
    trained["student"] = stage(
        "student",
        _built_and_trained,
        ctx,
        "student",
        lambda: build_student(config, "student", tokenizers, num_classes),
        student_train,
        valid,
        num_classes,
        teacher=teacher,
        extra=columns,
    )
    models = {role: result.model for role, result in trained.items()}
    e = config.export
    rounding = None
    if e.enabled and e.round_to_int8_grid and "tflite_int8" in e.formats:
        rounding = stage("int8_rounding", round_student, ctx, models["student"], test)
    results, comparisons = stage(
        "evaluation", evaluate, ctx, models, test, label_names, config.evaluation.latency_sentences
    )
    export, export_error = None, None
    if config.export.enabled:
        try:
            export = stage("export", export_model, ctx, models["student"], test, label_names)
        except ExportError as error:
            export_error, export = error, {"error": str(error)}
            _LOG.info(f"stage export: failed: {error}")
    report = {
        "task": "classification",
        "data": prepared.summary,
        "results": results,
        "comparisons": comparisons,
        "curves": {role: r.curves for role, r in trained.items()},
        "export": export,
        "int8_rounding": rounding,
        "timings_s": stage.seconds,
        "config": config.to_dict(),
        "samples": _samples(test, label_names, models, config.evaluation.num_samples),
    }
    stage("report", classification_report.write_report, run_dir, report)
    if export_error is not None:
        raise export_error
    return report


def _samples(test, label_names, models, count):
    rows = list(range(min(count, len(test.labels))))
    out = []
    for role, model in models.items():
        sub = {k: v[rows] for k, v in _inputs_of(model, test).items()}
        for i, p in zip(rows, predict_logits(model, sub).argmax(-1), strict=True):
            if len(out) <= i:
                out.append({"text": test.texts[i], "label": label_names[test.labels[i]]})
            out[i][role] = label_names[int(p)]
    return out


def read_label_names(directory):
    """The label names a run or an export saved beside its tokenizer."""
    path = directory / LABELS_FILE
    return json.loads(path.read_text(encoding="utf-8"))["label_names"]
