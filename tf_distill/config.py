"""Run configuration: typed sections, strict JSON loading, `--set section.key=value` overrides.

Keys are named like the constructor arguments they feed (`num_layers`, `hidden_dim`,
`alpha`, ...). Unknown keys, wrong types and impossible values raise `ConfigError` with one
line that names the key, what was received and what is allowed. Nothing here imports
TensorFlow, so a bad config is reported at once.
"""

import dataclasses
import json
import typing
from pathlib import Path

from tf_distill.errors import ConfigError  # noqa: F401  (raised here; re-exported)
from tf_distill.run_dir import RunDirectory


@dataclasses.dataclass
class DataConfig:
    source: str = "synthetic"  # synthetic | tsv | parallel | tfds
    path: str | None = None  # tsv file, or the source-side file of a parallel corpus
    target_path: str | None = None  # target-side file of a parallel corpus
    source_column: int = 0
    target_column: int = 1
    reverse: bool = False  # swap source and target
    tfds_name: str | None = None  # e.g. "ted_hrlr_translate/pt_to_en"
    data_dir: str | None = None
    download: bool = False
    num_pairs: int = 20000  # synthetic corpus size
    ambiguity: float = 0.3  # synthetic: probability mass on alternative translations
    max_pairs: int | None = None  # cap on pairs read from a file / tfds
    # Cap on distinct source sentences read from a file / tfds, drawn at random (seeded)
    # with every pair of each one kept, so that a source keeps all its references: a count,
    # or a fraction (< 1) of the distinct sources.
    max_sources: float | None = None
    valid_size: float = 0.05  # fraction (< 1) or count of pairs (a source's pairs stay together)
    test_size: float = 0.05
    seed: int = 0


@dataclasses.dataclass
class TokenizerConfig:
    vocabulary_size: int = 2000
    shared: bool = True  # one vocabulary for source and target


@dataclasses.dataclass
class ModelConfig:
    num_layers: int = 2
    num_heads: int = 4
    hidden_dim: int = 128
    intermediate_dim: int = 512
    dropout: float = 0.1
    num_encoder_layers: int | None = None
    num_decoder_layers: int | None = None
    tie_embeddings: bool = False
    position_embedding: str = "learned"
    normalize_first: bool = True
    # Teacher only: a trained .keras file (or a list of them) to load instead of training.
    path: str | list[str] | None = None
    # Teacher only: how many teachers distil as an ensemble (the mean of their
    # probabilities); those not loaded from `path` are trained in the run, each with its
    # own seed. null: one per `path` file, or 1.
    ensemble_size: int | None = None


@dataclasses.dataclass
class DistillationConfig:
    alpha: float = 0.5
    temperature: float = 2.0
    baseline: bool = True  # also train the student without a teacher
    # Sequence-level KD (Kim & Rush, 2016): the student's targets are the teacher's greedy
    # translations of the training sources (the CE + T^2 KL loss stays).
    sequence_level: bool = False
    # Keep the teacher's k largest logits per training token, computed once before the
    # student trains, instead of running the teacher on every batch of every epoch
    # (tf_distill.teacher_cache). None: run the teacher live (exact KD).
    teacher_top_k: int | None = None
    # A transfer set (tf_distill.transfer): source sentences without references that the
    # teacher translates and the student trains on besides the labelled pairs; the
    # baseline cannot use them. transfer_path: a UTF-8 file, one source sentence per line;
    # without one (built-in corpus only), transfer_size new sentences are generated.
    # transfer_size also caps the file's sentences. null and null: no transfer set.
    transfer_size: int | None = None
    transfer_path: str | None = None
    # Which tab-separated column of transfer_path holds the source sentence (e.g. 0 to use
    # the source side of a Tatoeba file); null: the whole line is the sentence.
    transfer_column: int | None = None
    # Beam size of the teacher's translations (sequence-level KD and the transfer set);
    # 1 is greedy. Kim & Rush (2016) train the student on the teacher's beam output.
    sequence_level_beam: int = 1
    # Also train the student architecture on the teacher-labelled pairs with
    # cross-entropy alone (no KL term), to show what the KL term itself adds.
    ce_only_ablation: bool = False
    # Batch sizes of the teacher's passes over the student's data: pairs per call when its
    # top-k logits are cached, sources per call when it translates (sequence-level KD,
    # transfer set). Inference only, so larger than training.batch_size.
    teacher_batch_size: int = 128
    translation_batch_size: int = 256


@dataclasses.dataclass
class TrainingConfig:
    epochs: int = 10
    teacher_epochs: int | None = None  # defaults to `epochs`
    # The distilled student's epochs (defaults to `epochs`, the baseline's), e.g. fewer
    # passes over a student set enlarged by a transfer set.
    student_epochs: int | None = None
    batch_size: int = 64
    learning_rate: float = 1e-3
    warmup_steps: int = 200
    max_sequence_length: int = 32
    bucket_lengths: list[int] | None = None
    # "auto": XLA on when a GPU is visible. On CPU, at small.json's shapes, it measured
    # slower here (compile minutes per model, slower steps; docs/BENCHMARKS.md).
    jit_compile: bool | str = "auto"
    early_stopping_patience: int = 3
    seed: int = 0
    # Teacher recipe. Label smoothing eps of the teachers' CE target (Szegedy et al. 2016).
    teacher_label_smoothing: float = 0.0
    # Average the teachers' weights over their last N epochs (N = 1: no averaging); the
    # average is kept only when its validation BLEU is at least the last epoch's.
    teacher_average_epochs: int = 1
    # Optimizer and schedule (AdamW with warmup then cosine decay).
    weight_decay: float = 1e-4
    clipnorm: float = 1.0
    cosine_final_fraction: float = 0.05  # the learning rate ends at this share of its peak


@dataclasses.dataclass
class ExportConfig:
    enabled: bool = True
    formats: list[str] = dataclasses.field(
        default_factory=lambda: ["saved_model", "tflite_fp32", "tflite_fp16", "tflite_int8"]
    )
    max_decode_length: int | None = None  # defaults to training.max_sequence_length
    parity_sentences: int = 200  # test sentences decoded by every format at export time
    # Share of those sentences that fp16 / int8 files must decode exactly as Keras does
    # (fp32 files and the SavedModel must always agree on all of them).
    min_sequence_agreement: float = 0.97
    # Translation: fp16 / int8 files are judged by quality instead: their corpus BLEU on the
    # parity sentences may fall at most this far below the Keras student's (the Bergamot
    # int8 students lose about 0.5). null: require min_sequence_agreement instead.
    max_bleu_drop: float | None = 0.5
    # "dynamic": int8 weights, float activations. "full": activations in int8 too, their
    # ranges calibrated on the parity sentences (ops without an int8 kernel stay float).
    int8_mode: str = "dynamic"
    # Round the trained student's weights to the per-tensor int8 grid before it is
    # evaluated and exported (tflite.round_to_int8_grid): the int8 file then stores the
    # evaluated model's own weights, and only activation rounding separates the two.
    round_to_int8_grid: bool = True
    # Beam search on the device: a translate_beam signature with this many beams (GNMT
    # length penalty 0.6) in student_<precision>_beam.tflite beside each greedy file.
    # 1: greedy files only.
    beam_size: int = 4


@dataclasses.dataclass
class EvaluationConfig:
    beam_size: int = 4
    max_sentences: int = 500  # test sentences decoded for BLEU / chrF
    latency_sentences: int = 20
    num_samples: int = 5  # sample translations in the report
    valid_sentences: int = 100  # validation sources decoded for the per-epoch BLEU
    bootstrap_samples: int = 1000  # paired bootstrap resamples of the BLEU differences
    batch_size: int = 64  # test / validation sources decoded per call


@dataclasses.dataclass
class Config:
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = dataclasses.field(default_factory=TokenizerConfig)
    teacher: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    student: ModelConfig = dataclasses.field(
        default_factory=lambda: ModelConfig(num_layers=1, hidden_dim=64, intermediate_dim=256)
    )
    distillation: DistillationConfig = dataclasses.field(default_factory=DistillationConfig)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)
    evaluation: EvaluationConfig = dataclasses.field(default_factory=EvaluationConfig)
    output_dir: str = "saved_models/run"

    def to_dict(self):
        return dataclasses.asdict(self)


SECTIONS = {f.name: f for f in dataclasses.fields(Config) if f.name != "output_dir"}
DATA_SOURCES = ("synthetic", "tsv", "parallel", "tfds")
EXPORT_FORMATS = ("saved_model", "tflite_fp32", "tflite_fp16", "tflite_int8")


def _section_types(section_cls):
    hints = typing.get_type_hints(section_cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(section_cls)}


def _coerce(value, annotation, where):
    """Checks `value` against a field annotation; returns it (ints accepted for floats)."""
    args = typing.get_args(annotation)
    if type(None) in args:
        if value is None:
            return None
        args = tuple(a for a in args if a is not type(None))
        annotation = args[0]
    if len(args) > 1 and typing.get_origin(annotation) is not list:
        # A union such as `bool | str`: the first member the value fits.
        for member in args:
            try:
                return _coerce(value, member, where)
            except ConfigError:
                continue
        names = " or ".join(_type_name(a) for a in args)
        raise ConfigError(f"{where} must be {names}. Received: {value!r}.")
    origin = typing.get_origin(annotation)
    if origin is list:
        (item,) = typing.get_args(annotation)
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list of {item.__name__}. Received: {value!r}.")
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false. Received: {value!r}.")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer. Received: {value!r}.")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number. Received: {value!r}.")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string. Received: {value!r}.")
        return value
    raise ConfigError(f"{where}: unsupported type {annotation!r}.")  # pragma: no cover


def _type_name(annotation):
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        annotation, getattr(annotation, "__name__", str(annotation))
    )


def from_dict(raw):
    """Builds a validated `Config` from a JSON-like dict (missing keys take defaults)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"The config must be a JSON object. Received: {type(raw).__name__}.")
    config = Config()
    valid_top = sorted([*SECTIONS, "output_dir"])
    for key, value in raw.items():
        if key == "output_dir":
            config.output_dir = _coerce(value, str, "output_dir")
            continue
        if key not in SECTIONS:
            raise ConfigError(f"Unknown config section {key!r}. Valid sections: {valid_top}.")
        if not isinstance(value, dict):
            raise ConfigError(f"Config section {key!r} must be an object of keys.")
        section = getattr(config, key)
        types = _section_types(type(section))
        for name, item in value.items():
            if name not in types:
                raise ConfigError(
                    f"Unknown key {key}.{name}. Valid keys of {key!r}: {sorted(types)}."
                )
            setattr(section, name, _coerce(item, types[name], f"{key}.{name}"))
    validate(config)
    return config


def load(path, overrides=()):
    """Reads a JSON config file, applies `section.key=value` overrides, validates."""
    path = Path(path)
    if not path.is_file():
        candidate = Path("configs") / path.name
        if path.parent == Path(".") and candidate.is_file():
            path = candidate
        else:
            raise ConfigError(
                f"Config file {str(path)!r} not found. Pass a path such as configs/small.json."
            )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"{path}: invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}."
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the config as UTF-8 JSON.") from None
    for override in overrides:
        apply_override(raw, override)
    return from_dict(raw)


def apply_override(raw, override):
    """Applies one `section.key=value` (value parsed as JSON, else taken as a string)."""
    if "=" not in override:
        raise ConfigError(
            f"--set expects section.key=value, e.g. training.epochs=3. Received: {override!r}."
        )
    dotted, text = override.split("=", 1)
    parts = dotted.strip().split(".")
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    if parts == ["output_dir"]:
        raw["output_dir"] = value
        return
    if len(parts) != 2 or not all(parts):
        raise ConfigError(
            f"--set expects section.key=value, e.g. training.epochs=3. Received: {override!r}."
        )
    section, key = parts
    if section not in SECTIONS:
        raise ConfigError(
            f"Unknown config section {section!r} in --set {override!r}. "
            f"Valid sections: {sorted([*SECTIONS, 'output_dir'])}."
        )
    raw.setdefault(section, {})[key] = value


def _check(condition, message):
    if not condition:
        raise ConfigError(message)


def validate(config):
    """Cross-field checks; raises ConfigError naming the key and the allowed values."""
    data = config.data
    _check(
        data.source in DATA_SOURCES,
        f"data.source must be one of {list(DATA_SOURCES)}. Received: {data.source!r}.",
    )
    for key, value in (("data.seed", data.seed), ("training.seed", config.training.seed)):
        _check(value >= 0, f"{key} must be >= 0 (a random seed). Received: {value}.")
    if data.source == "tsv":
        _check(
            data.source_column >= 0 and data.target_column >= 0,
            "data.source_column and data.target_column must be >= 0 (0 is the first "
            f"column). Received: {data.source_column} and {data.target_column}.",
        )
        _check(
            data.source_column != data.target_column,
            "data.source_column and data.target_column must differ. Received: both "
            f"{data.source_column}.",
        )
    _check(
        config.export.max_decode_length is None or config.export.max_decode_length > 0,
        "export.max_decode_length must be positive, or null for training.max_sequence_length. "
        f"Received: {config.export.max_decode_length}.",
    )
    RunDirectory(config.output_dir).check_output_dir()
    if data.source in ("tsv", "parallel"):
        _check(data.path, f"data.path is required when data.source is {data.source!r}.")
        _check(
            Path(data.path).is_file(),
            f"data.path {data.path!r} does not exist. Point it at your data file.",
        )
    if data.source == "parallel":
        _check(data.target_path, "data.target_path is required when data.source is 'parallel'.")
        _check(
            Path(data.target_path).is_file(),
            f"data.target_path {data.target_path!r} does not exist.",
        )
    if data.source == "tfds":
        _check(data.tfds_name, "data.tfds_name is required when data.source is 'tfds'.")
    _check(data.num_pairs >= 100, f"data.num_pairs must be >= 100. Received: {data.num_pairs}.")
    _check(
        0 <= data.ambiguity <= 1, f"data.ambiguity must be in [0, 1]. Received: {data.ambiguity}."
    )
    for name in ("valid_size", "test_size"):
        value = getattr(data, name)
        _check(value > 0, f"data.{name} must be positive (a fraction < 1 or a count).")
    _check(
        config.tokenizer.vocabulary_size >= 50,
        f"tokenizer.vocabulary_size must be >= 50. Received: {config.tokenizer.vocabulary_size}.",
    )
    for role in ("teacher", "student"):
        model = getattr(config, role)
        for name in ("num_layers", "num_heads", "hidden_dim", "intermediate_dim"):
            value = getattr(model, name)
            _check(value > 0, f"{role}.{name} must be a positive integer. Received: {value}.")
        for name in ("num_encoder_layers", "num_decoder_layers"):
            value = getattr(model, name)
            _check(
                value is None or value > 0,
                f"{role}.{name} must be a positive integer. Received: {value}.",
            )
        if model.hidden_dim % model.num_heads:
            divisors = [n for n in range(1, model.hidden_dim + 1) if model.hidden_dim % n == 0]
            raise ConfigError(
                f"{role}.num_heads must divide {role}.hidden_dim. Received: hidden_dim="
                f"{model.hidden_dim}, num_heads={model.num_heads}. Valid num_heads: {divisors}."
            )
        _check(
            0 <= model.dropout < 1,
            f"{role}.dropout must be in [0, 1). Received: {model.dropout}.",
        )
        _check(
            model.position_embedding in ("learned", "sinusoidal"),
            f"{role}.position_embedding must be 'learned' or 'sinusoidal'. "
            f"Received: {model.position_embedding!r}.",
        )
    _check(config.student.path is None, "student.path is not supported: the student is trained.")
    _check(
        config.student.ensemble_size in (None, 1),
        "student.ensemble_size is not supported: only the teacher can be an ensemble.",
    )
    paths = teacher_paths(config)
    for path in paths:
        _check(
            Path(path).is_file(),
            f"teacher.path {path!r} does not exist. Give a trained .keras file "
            "or remove the key to train a teacher.",
        )
    size = config.teacher.ensemble_size
    _check(
        size is None or size >= max(1, len(paths)),
        f"teacher.ensemble_size must be at least 1 and at least the number of teacher.path "
        f"files ({len(paths)}). Received: {size}.",
    )
    d = config.distillation
    _check(0 <= d.alpha <= 1, f"distillation.alpha must be in [0, 1]. Received: {d.alpha}.")
    _check(
        d.temperature > 0,
        f"distillation.temperature must be positive. Received: {d.temperature}.",
    )
    _check(
        d.teacher_top_k is None or d.teacher_top_k >= 1,
        "distillation.teacher_top_k must be a positive integer, or null to run the teacher "
        f"on every batch. Received: {d.teacher_top_k}.",
    )
    _check(
        d.transfer_size is None or d.transfer_size >= 1,
        "distillation.transfer_size must be a positive integer, or null for no transfer set "
        f"(all of transfer_path's sentences with a file). Received: {d.transfer_size}.",
    )
    if d.transfer_path is not None:
        _check(
            Path(d.transfer_path).is_file(),
            f"distillation.transfer_path {d.transfer_path!r} does not exist. Point it at a "
            "text file with one source sentence per line, or remove the key.",
        )
    elif d.transfer_size is not None:
        _check(
            data.source == "synthetic",
            "distillation.transfer_size without distillation.transfer_path needs data.source "
            f"'synthetic' (only the built-in corpus can make new sentences). Received: "
            f"data.source {data.source!r}; add transfer_path, a file of source sentences.",
        )
    _check(
        d.transfer_column is None or d.transfer_column >= 0,
        f"distillation.transfer_column must be >= 0, or null for whole lines. "
        f"Received: {d.transfer_column}.",
    )
    _check(
        d.sequence_level_beam >= 1,
        f"distillation.sequence_level_beam must be >= 1 (1: greedy). "
        f"Received: {d.sequence_level_beam}.",
    )
    _check(
        data.max_sources is None or 0 < data.max_sources < 1 or data.max_sources >= 10,
        "data.max_sources must be a fraction in (0, 1), a count >= 10, or null for all. "
        f"Received: {data.max_sources}.",
    )
    t = config.training
    _check(
        0 <= t.teacher_label_smoothing < 1,
        f"training.teacher_label_smoothing must be in [0, 1). "
        f"Received: {t.teacher_label_smoothing}.",
    )
    _check(
        t.teacher_average_epochs >= 1,
        f"training.teacher_average_epochs must be >= 1 (1: no averaging). "
        f"Received: {t.teacher_average_epochs}.",
    )
    _check(t.weight_decay >= 0, f"training.weight_decay must be >= 0. Received: {t.weight_decay}.")
    _check(t.clipnorm > 0, f"training.clipnorm must be positive. Received: {t.clipnorm}.")
    _check(
        0 <= t.cosine_final_fraction <= 1,
        f"training.cosine_final_fraction must be in [0, 1]. Received: {t.cosine_final_fraction}.",
    )
    for name in ("epochs", "batch_size", "max_sequence_length"):
        value = getattr(t, name)
        _check(value > 0, f"training.{name} must be a positive integer. Received: {value}.")
    for name in ("teacher_epochs", "student_epochs"):
        value = getattr(t, name)
        _check(
            value is None or value > 0,
            f"training.{name} must be positive, or null for training.epochs. Received: {value}.",
        )
    _check(
        t.learning_rate > 0,
        f"training.learning_rate must be positive. Received: {t.learning_rate}.",
    )
    _check(t.warmup_steps >= 0, "training.warmup_steps must be >= 0.")
    _check(
        t.jit_compile in (True, False, "auto"),
        f'training.jit_compile must be true, false or "auto". Received: {t.jit_compile!r}.',
    )
    if t.bucket_lengths is not None:
        _check(
            t.bucket_lengths == sorted(set(t.bucket_lengths))
            and t.bucket_lengths
            and t.bucket_lengths[0] > 0
            and t.max_sequence_length <= t.bucket_lengths[-1] <= t.max_sequence_length + 1,
            "training.bucket_lengths must be increasing positive lengths, the last equal to "
            "max_sequence_length or max_sequence_length + 1. "
            f"Received: {t.bucket_lengths} with max_sequence_length={t.max_sequence_length}.",
        )
    for fmt in config.export.formats:
        _check(
            fmt in EXPORT_FORMATS,
            f"export.formats holds {fmt!r}; valid formats: {list(EXPORT_FORMATS)}.",
        )
    _check(
        0 <= config.export.min_sequence_agreement <= 1,
        "export.min_sequence_agreement must be in [0, 1].",
    )
    _check(config.export.parity_sentences > 0, "export.parity_sentences must be positive.")
    _check(
        config.export.beam_size >= 1,
        f"export.beam_size must be >= 1 (1: greedy files only). "
        f"Received: {config.export.beam_size}.",
    )
    _check(
        config.export.max_bleu_drop is None or config.export.max_bleu_drop >= 0,
        f"export.max_bleu_drop must be >= 0, or null to require exact agreement. "
        f"Received: {config.export.max_bleu_drop}.",
    )
    _check(
        config.export.int8_mode in ("dynamic", "full"),
        f"export.int8_mode must be 'dynamic' or 'full'. Received: {config.export.int8_mode!r}.",
    )
    e = config.evaluation
    _check(e.beam_size > 0, f"evaluation.beam_size must be positive. Received: {e.beam_size}.")
    _check(e.max_sentences > 0, "evaluation.max_sentences must be positive.")
    _check(e.valid_sentences > 0, "evaluation.valid_sentences must be positive.")
    _check(e.batch_size > 0, f"evaluation.batch_size must be positive. Received: {e.batch_size}.")
    for key in ("teacher_batch_size", "translation_batch_size"):
        value = getattr(config.distillation, key)
        _check(value > 0, f"distillation.{key} must be positive. Received: {value}.")
    _check(
        e.bootstrap_samples >= 100,
        f"evaluation.bootstrap_samples must be >= 100. Received: {e.bootstrap_samples}.",
    )
    return config


def teacher_paths(config):
    """`teacher.path` as a list of files ([] when teachers are trained)."""
    path = config.teacher.path
    if path is None:
        return []
    return [path] if isinstance(path, str) else list(path)


def teacher_count(config):
    """How many teachers the run distils from (loaded and trained)."""
    paths = teacher_paths(config)
    return config.teacher.ensemble_size or max(1, len(paths))


def resolve_jit_compile(setting):
    """`training.jit_compile` as a bool: "auto" means on when TensorFlow sees a GPU."""
    if setting != "auto":
        return bool(setting)
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))
