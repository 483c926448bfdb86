"""The pipeline's model stages: teachers (trained or loaded), the student architecture
trained three ways, and the teacher's outputs the student learns from (its translations,
its cached top-k logits)."""

import dataclasses
import logging
from pathlib import Path

import keras

from tf_distill import config as config_lib
from tf_distill import data as data_lib
from tf_distill import distribution
from tf_distill.data import DataError
from tf_distill.data.shards import ShardedExamples
from tf_distill.distiller import Distiller
from tf_distill.errors import ConfigError
from tf_distill.initialization import init_from_teacher
from tf_distill.models import build_transformer, seq2seq_parts
from tf_distill.pipeline.data_stages import decode_length, training_dataset
from tf_distill.run_dir import read_note, write_text
from tf_distill.sequence_kd import teacher_translations
from tf_distill.teacher_cache import feature_cache_bytes, teacher_features
from tf_distill.training import TrainedModel, empty_curves, fit_model, load_trained

_LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RunContext:
    """What every stage that writes to the run directory needs: the config, the
    `RunDirectory`, and whether this process continues an earlier one."""

    config: config_lib.Config
    run_dir: object  # tf_distill.run_dir.RunDirectory
    resume: bool = False


def build_model(config, role, tokenizers):
    """The teacher or student architecture of `config`, named `role`."""
    m = config.teacher if role.startswith("teacher") else config.student
    return build_transformer(
        vocabulary_size=tokenizers.source.vocabulary_size,
        target_vocabulary_size=tokenizers.target.vocabulary_size,
        max_sequence_length=config.training.max_sequence_length + 1,
        num_layers=m.num_layers,
        num_heads=m.num_heads,
        hidden_dim=m.hidden_dim,
        intermediate_dim=m.intermediate_dim,
        dropout=m.dropout,
        num_encoder_layers=m.num_encoder_layers,
        num_decoder_layers=m.num_decoder_layers,
        tie_embeddings=m.tie_embeddings,
        position_embedding=m.position_embedding,
        normalize_first=m.normalize_first,
        dtype=training_dtype(config),
        name=role,
    )


def training_dtype(config):
    """The dtype policy models train in (`training.mixed_precision`), or None for float32."""
    policy = config_lib.resolve_mixed_precision(config.training.mixed_precision)
    return None if policy == "float32" else policy


@dataclasses.dataclass
class Teachers:
    """The teachers by role ("teacher", or "teacher_1" ... "teacher_n" of an ensemble)
    and the `.keras` file each lives in."""

    trained: dict  # role -> TrainedModel (a loaded teacher has no curves)
    files: dict  # role -> Path

    @property
    def teacher(self):
        """What the student distils from: the one teacher, or the list of an ensemble."""
        models = [t.model for t in self.trained.values()]
        return models[0] if len(models) == 1 else models


def load_teacher(path, tokenizers, max_sequence_length):
    """Loads a `teacher.path` file and checks that this run can distil from it: a
    `build_transformer` model, of this run's vocabularies (their fingerprints, not only
    their sizes: the same size can hold other words), taking sources as long as the run's.

    Raises:
        ConfigError: naming the file, what is wrong and the fix.
    """
    where = f"teacher.path {str(path)!r}"
    fix = "Load a teacher trained on this data with these tokenizer settings, or remove "
    fix += "teacher.path to train one."
    teacher = load_teacher_file(path)
    try:
        parts = seq2seq_parts(teacher)
    except ValueError as error:
        raise ConfigError(f"{where}: {error}") from None
    sizes = {
        "source": (parts.encoder_embedding.vocabulary_size, tokenizers.source),
        "target": (parts.decoder_embedding.vocabulary_size, tokenizers.target),
    }
    for side, (size, tokenizer) in sizes.items():
        if size != tokenizer.vocabulary_size:
            raise ConfigError(
                f"{where} has a vocabulary of {size} but this run's {side} tokenizer has "
                f"{tokenizer.vocabulary_size}. {fix}"
            )
    if parts.max_sequence_length < max_sequence_length + 1:
        raise ConfigError(
            f"{where} takes sequences of at most {parts.max_sequence_length - 1} tokens, "
            f"but training.max_sequence_length is {max_sequence_length}. Lower "
            "training.max_sequence_length to match, or remove teacher.path."
        )
    recorded = teacher_vocabularies(path)
    if recorded is None:
        _LOG.warning(
            f"{where} carries no tokenizer fingerprint and has no tokenizer/ beside it: "
            "its vocabulary cannot be checked beyond its size."
        )
    for side, fingerprint in (recorded or {}).items():
        expected = tokenizers.note[f"{side}_tokenizer"]
        if fingerprint != expected:
            raise ConfigError(
                f"{where} was trained with another {side} vocabulary of the same size "
                f"(fingerprint {fingerprint}, this run's {expected}): its token ids mean "
                f"other words. {fix}"
            )
    _LOG.info(f"teacher loaded from {path}")
    return teacher


def load_teacher_file(path):
    """The model in the `teacher.path` file.

    Raises:
        ConfigError: the file is not a Keras model file (Keras' reason quoted).
    """
    try:
        return keras.saving.load_model(path)
    except Exception as error:  # Keras raises many kinds for a file it cannot read
        raise ConfigError(
            f"teacher.path {str(path)!r} is not a Keras model file tf_distill can load "
            f"({type(error).__name__}: {str(error).splitlines()[0][:160]}). Give a "
            "teacher.keras written by `tf-distill train`, or remove teacher.path."
        ) from None


def teacher_vocabularies(path):
    """{"source": fingerprint, "target": fingerprint} of the tokenizers a teacher file was
    trained with: from the note inside the file, else from the `tokenizer/` folder of the
    run directory it sits in; None if neither says."""
    note = read_note(path)
    if note and "target_tokenizer" in note:
        return {side: note[f"{side}_tokenizer"] for side in ("source", "target")}
    folder = Path(path).parent / "tokenizer"
    try:
        return {
            side: data_lib.Tokenizer.load(folder, side).fingerprint for side in ("source", "target")
        }
    except (DataError, OSError, ValueError):
        return None


def train_teachers(ctx, tokenizers, datasets, valid_bleu):
    """Loads the `teacher.path` files, then trains the rest of the teachers, each from a
    seed of its own, on the labelled training pairs."""
    config = ctx.config
    paths = config_lib.teacher_paths(config)
    count = config_lib.teacher_count(config)
    roles = ["teacher"] if count == 1 else [f"teacher_{i + 1}" for i in range(count)]
    t = config.training
    trained, files = {}, {}
    for i, role in enumerate(roles):
        if i < len(paths):
            teacher = load_teacher(paths[i], tokenizers, t.max_sequence_length)
            trained[role] = TrainedModel(teacher, empty_curves(), {})
            files[role] = Path(paths[i])
            continue
        files[role] = ctx.run_dir.model_file(role)
        if ctx.resume and files[role].exists():
            trained[role] = load_trained(role, ctx.run_dir)
            continue
        keras.utils.set_random_seed(t.seed + 1000 * i)
        trained[role] = distribution.distributed(
            _train_teacher, ctx, role, tokenizers, datasets, valid_bleu
        )
    return Teachers(trained, files)


def _train_teacher(ctx, role, tokenizers, datasets, valid_bleu):
    config, t = ctx.config, ctx.config.training
    model = build_model(config, role, tokenizers)
    if t.teacher_label_smoothing:
        _LOG.info(f"{role}: label smoothing {t.teacher_label_smoothing}")
    trainer = Distiller(None, model, alpha=1.0, label_smoothing=t.teacher_label_smoothing)
    # A dataset of its own (made after the seed is set, like the students'): its
    # passes shuffle in an order fixed by the seed, whatever trained before it.
    train_ds = training_dataset(datasets, datasets.train_split, t.seed)
    return fit_model(
        role,
        trainer,
        train_ds,
        datasets.valid,
        epochs=t.teacher_epochs or t.epochs,
        pairs=datasets.train_pairs,
        training=dataclasses.replace(t, learning_rate=t.teacher_learning_rate or t.learning_rate),
        run_dir=ctx.run_dir,
        resume=ctx.resume,
        valid_bleu=valid_bleu,
        average_epochs=t.teacher_average_epochs,
        note=tokenizers.note,
    )


def train_student(ctx, role, tokenizers, datasets, pairs, valid_bleu, teacher=None, cache=None):
    """Trains the student architecture as `role` on `pairs`: with `teacher`, distilled
    (CE + T^2 KL, from `cache`'s top-k logits when given); without, on CE alone."""
    return distribution.distributed(
        _train_student, ctx, role, tokenizers, datasets, pairs, valid_bleu, teacher, cache
    )


def _train_student(ctx, role, tokenizers, datasets, pairs, valid_bleu, teacher, cache):
    if ctx.resume and ctx.run_dir.model_file(role).exists():
        return load_trained(role, ctx.run_dir)
    t = ctx.config.training
    # Every role starts from identical weights: only their data and loss differ.
    keras.utils.set_random_seed(t.seed + 1)
    model = build_model(ctx.config, role, tokenizers)
    if teacher is None:
        trainer = Distiller(None, model, alpha=1.0)
    else:
        trainer = distiller_for(ctx.config, teacher, model)
        options = datasets.options
        width = (options.get("bucket_lengths") or [options["max_sequence_length"]])[-1]
        features = None
        if isinstance(pairs, ShardedExamples):
            if getattr(trainer, "feature_weights", None):
                _LOG.info("teacher features: run on every batch with data.streaming")
        else:
            features = cached_features(
                ctx.config,
                trainer,
                len(pairs),
                width,
                lambda dtype: teacher_features(
                    trainer,
                    pairs,
                    options["source_tokenizer"],
                    options["target_tokenizer"],
                    options["max_sequence_length"],
                    options.get("bucket_lengths"),
                    ctx.config.distillation.teacher_batch_size,
                    dtype,
                ),
            )
        if features:
            cache = {**(cache or {}), **features}
    # A dataset of its own, made after the seed is set: each sees its batches in the
    # same order whether or not other models trained before it in this process.
    train_ds = training_dataset(datasets, pairs, t.seed, cache)
    epochs = t.epochs if role == "baseline" else (t.student_epochs or t.epochs)
    return fit_model(
        role,
        trainer,
        train_ds,
        datasets.valid,
        epochs=epochs,
        pairs=len(pairs),
        training=t,
        run_dir=ctx.run_dir,
        resume=ctx.resume,
        valid_bleu=valid_bleu,
        note=tokenizers.note,
    )


def cached_features(config, trainer, num_rows, width, compute):
    """The teacher's features for `num_rows` training examples padded to `width`
    (`compute(dtype)`, in float16) when the trainer has a feature term and they fit in
    `distillation.feature_cache_mb`; else None, and the teacher runs live on every batch."""
    budget = config.distillation.feature_cache_mb
    if not getattr(trainer, "feature_weights", None) or not budget:
        return None
    size = feature_cache_bytes(trainer, num_rows, width, "float16")
    if size > budget * 2**20:
        _LOG.info(
            f"teacher features: {size / 2**20:.0f} MB for {num_rows} examples, more than "
            f"distillation.feature_cache_mb = {budget:g}: the teacher runs on every batch"
        )
        return None
    return compute("float16")


def distiller_for(config, teacher, model):
    """The `Distiller` that distils `model` from `teacher` with the config's logit and
    feature terms, after starting `model` from the teacher's layers when
    `distillation.init_from_teacher` asks (a resumed run's checkpoint then overwrites
    them, as it does any starting weights).

    Raises:
        ConfigError: the teacher and student cannot be paired this way (e.g. a loaded
            teacher of another width than the student, for init_from_teacher).
    """
    d = config.distillation
    layer_map = {
        stack: chosen
        for stack, chosen in (("encoder", d.encoder_layer_map), ("decoder", d.decoder_layer_map))
        if chosen is not None
    }
    try:
        if d.init_from_teacher:
            layers = {
                stack: chosen
                for stack, chosen in (
                    ("encoder", d.init_encoder_layers),
                    ("decoder", d.init_decoder_layers),
                )
                if chosen is not None
            }
            init_from_teacher(teacher, model, layers or None)
        return Distiller(
            teacher,
            model,
            alpha=d.alpha,
            temperature=d.temperature,
            hidden_weight=d.hidden_weight,
            attention_weight=d.attention_weight,
            value_weight=d.value_weight,
            hidden_loss=d.hidden_loss,
            layer_map=layer_map or None,
        )
    except ValueError as error:
        raise ConfigError(f"distillation: {error}") from None


def translate_with_teacher(ctx, teacher, sources, tokenizers, name, what):
    """`sources` paired with the teacher's translations (greedy, or beam search with
    `distillation.sequence_level_beam`), kept in the run as `<name>.tsv` and read back
    from it on `--resume`; pairs with an empty translation are left out."""
    path = ctx.run_dir.translations_file(name)
    if ctx.resume and path.exists():
        _LOG.info(f"teacher translations loaded from {path}")
        return data_lib.read_tsv(path)
    d = ctx.config.distillation
    how = (
        "greedily"
        if d.sequence_level_beam == 1
        else f"with beam search ({d.sequence_level_beam} beams)"
    )
    who = "teacher ensemble" if isinstance(teacher, list) else "teacher"
    _LOG.info(f"{who} translating {len(sources)} {what} {how}")
    # Each finished batch is appended to a progress file, which a resumed run continues
    # from; a fresh run starts it anew.
    progress = path.with_suffix(".partial")
    if not ctx.resume:
        progress.unlink(missing_ok=True)
    hypotheses = teacher_translations(
        teacher,
        sources,
        tokenizers.source,
        tokenizers.target,
        ctx.config.training.max_sequence_length,
        decode_length(ctx.config),
        batch_size=d.translation_batch_size,
        beam_size=d.sequence_level_beam,
        progress_path=progress,
    )
    # Empty outputs (no target) and stray tabs / newlines (no TSV line) are dropped.
    pairs = [
        (s, h)
        for s, h in zip(sources, hypotheses, strict=True)
        if h.strip() and not {"\t", "\n"} & set(s + h)
    ]
    if not pairs:
        raise DataError(
            f"The teacher translated none of the {len(sources)} {what} into a usable "
            "sentence (every output was empty): it is not trained enough. Raise "
            "training.teacher_epochs or give more labelled pairs."
        )
    write_text(path, "".join(f"{s}\t{h}\n" for s, h in pairs))
    progress.unlink(missing_ok=True)
    return pairs


def cache_teacher_outputs(config, teacher, pairs, tokenizers, run_dir=None):
    """The teacher's top-k logits on every training pair, once for all epochs
    (`distillation.teacher_top_k`; tf_distill.teacher_cache): arrays in memory, or, for
    pairs in shards (data.streaming), shards in the run directory holding the pairs and
    the teacher's outputs (resumable)."""
    from tf_distill.teacher_cache import teacher_top_k, teacher_top_k_shards

    d, t = config.distillation, config.training
    _LOG.info(
        f"teacher: top {d.teacher_top_k} tokens on {len(pairs)} training pairs, once for all epochs"
    )
    if isinstance(pairs, ShardedExamples):
        return teacher_top_k_shards(
            teacher,
            pairs,
            run_dir.shards_dir("teacher_top_k"),
            d.teacher_top_k,
            temperature=d.temperature,
            batch_size=d.teacher_batch_size,
        )
    return teacher_top_k(
        teacher,
        pairs,
        tokenizers.source,
        tokenizers.target,
        t.max_sequence_length,
        d.teacher_top_k,
        temperature=d.temperature,
        bucket_lengths=t.bucket_lengths,
        batch_size=d.teacher_batch_size,
    )
