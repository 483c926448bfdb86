"""Checks of a run config's values across keys, one function per section; each raises a
`ConfigError` naming the key, what it received and what is allowed. Files named by the
config (data, teacher, transfer set) must exist; the output directory must be usable."""

from pathlib import Path

from tf_distill.config.sections import (
    DATA_SOURCES,
    EXPORT_FORMATS,
    MIXED_PRECISION,
    TASKS,
    feature_terms_on,
    stack_depths,
    teacher_count,
    teacher_paths,
)
from tf_distill.distribution import DISTRIBUTIONS
from tf_distill.errors import ConfigError
from tf_distill.run_dir import RunDirectory


def _check(condition, message):
    if not condition:
        raise ConfigError(message)


def validate(config):
    """Cross-field checks of every section; returns `config`."""
    _check(config.task in TASKS, f"task must be one of {list(TASKS)}. Received: {config.task!r}.")
    if config.task == "translation":
        _check(
            config.data.source != "csv",
            "data.source 'csv' is for task 'classification'; translation reads 'tsv', "
            "'parallel', 'tfds' or 'synthetic'.",
        )
    else:
        _check(
            config.data.source != "parallel",
            "data.source 'parallel' is for translation; a classification run reads 'tsv', "
            "'csv', 'tfds' or 'synthetic'.",
        )
    _check_data(config.data)
    if config.data.streaming:
        _check_streaming(config)
    if config.task == "classification":
        _check_classification(config)
    else:
        _check_translation_only(config)
        _check(
            config.teacher.architecture == "transformer" and config.teacher.preset is None,
            "teacher.architecture 'bert' and teacher.preset are for task 'classification'.",
        )
    for key, value in (("data.seed", config.data.seed), ("training.seed", config.training.seed)):
        _check(value >= 0, f"{key} must be >= 0 (a random seed). Received: {value}.")
    RunDirectory(config.output_dir).check_output_dir()
    _check(
        config.tokenizer.vocabulary_size >= 50,
        f"tokenizer.vocabulary_size must be >= 50. Received: {config.tokenizer.vocabulary_size}.",
    )
    for role in ("teacher", "student"):
        _check_model(role, getattr(config, role))
    _check_roles(config)
    _check_distillation(config.distillation, config.data)
    _check_feature_distillation(config)
    _check_training(config.training)
    _check_export(config.export)
    _check_evaluation(config.evaluation)
    return config


def _check_data(data):
    _check(
        data.source in DATA_SOURCES,
        f"data.source must be one of {list(DATA_SOURCES)}. Received: {data.source!r}.",
    )
    _check(
        0 <= data.label_noise <= 1,
        f"data.label_noise must be in [0, 1]. Received: {data.label_noise}.",
    )
    _check(
        data.delimiter is None or len(data.delimiter) == 1,
        f'data.delimiter must be one character (e.g. "," or "\\t"), or null. '
        f"Received: {data.delimiter!r}.",
    )
    for key in ("text_column", "label_column"):
        value = getattr(data, key)
        _check(
            isinstance(value, str) and value or isinstance(value, int) and value >= 0,
            f"data.{key} must be a column number >= 0 or a header name. Received: {value!r}.",
        )
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
    if data.source in ("tsv", "parallel", "csv"):
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
        data.max_sources is None or 0 < data.max_sources < 1 or data.max_sources >= 10,
        "data.max_sources must be a fraction in (0, 1), a count >= 10, or null for all. "
        f"Received: {data.max_sources}.",
    )


def _check_streaming(config):
    """What `data.streaming` can do: translation of tsv / parallel / synthetic data, with
    token-level distillation; the stages that need the whole corpus in memory are off."""
    d, dist = config.data, config.distillation
    off = "set data.streaming to false to use it, or remove it"
    _check(
        config.task == "translation",
        "data.streaming is for translation; a classification corpus is read into memory. "
        "Set data.streaming to false.",
    )
    _check(
        d.source in ("tsv", "parallel", "synthetic"),
        f"data.streaming reads data.source 'tsv', 'parallel' or 'synthetic', not {d.source!r}. "
        "Write the corpus to a tsv file, or set data.streaming to false.",
    )
    for key in ("max_pairs", "max_sources"):
        _check(
            getattr(d, key) is None,
            f"data.{key} does not apply with data.streaming (the stream is read whole): cut "
            "the file instead, or set data.streaming to false.",
        )
    _check(
        not dist.sequence_level,
        "distillation.sequence_level needs the training sources in memory and does not run "
        f"with data.streaming: {off}.",
    )
    _check(
        dist.transfer_size is None and dist.transfer_path is None,
        "A transfer set (distillation.transfer_size / transfer_path) does not run with "
        "data.streaming: set both to null, or set data.streaming to false.",
    )
    for key, least in (("chunk_pairs", 100), ("shuffle_buffer", 1)):
        value = getattr(d, key)
        _check(value >= least, f"data.{key} must be >= {least}. Received: {value}.")
    _check(
        config.tokenizer.sample_pairs >= 100,
        f"tokenizer.sample_pairs must be >= 100. Received: {config.tokenizer.sample_pairs}.",
    )


def _check_classification(config):
    """What a classification run may ask for."""
    data, teacher = config.data, config.teacher
    if data.source in ("tsv", "csv"):
        _check(
            data.text_column != data.label_column,
            f"data.text_column and data.label_column must differ. Received: both "
            f"{data.text_column!r}.",
        )
    _check(
        teacher.architecture in ("transformer", "bert"),
        f"teacher.architecture must be 'transformer' (tf_distill's classifier) or 'bert' "
        f"(keras_hub's BertTextClassifier). Received: {teacher.architecture!r}.",
    )
    _check(
        config.student.architecture == "transformer" and config.student.preset is None,
        "student.architecture must be 'transformer' and student.preset null: the student is "
        "tf_distill's classifier (it exports to TFLite with its own tokenizer).",
    )
    if teacher.preset is not None:
        _check(
            Path(teacher.preset).is_dir(),
            f"teacher.preset {teacher.preset!r} is not a directory. Give a local keras-hub "
            "preset folder (save_to_preset writes one); presets are never downloaded.",
        )
    for role in ("teacher", "student"):
        m = getattr(config, role)
        _check(
            m.pooling in ("mean", "first"),
            f"{role}.pooling must be 'mean' or 'first'. Received: {m.pooling!r}.",
        )
    _check(
        teacher.vocabulary_size is None or teacher.vocabulary_size >= 50,
        f"teacher.vocabulary_size must be >= 50, or null. Received: {teacher.vocabulary_size}.",
    )
    paths = teacher_paths(config)
    _check(
        len(paths) <= 1 and (teacher.ensemble_size or 1) == 1,
        "teacher.ensemble_size and several teacher.path files are not supported for "
        "classification: the teacher is one model, trained in the run, started from "
        "teacher.preset, or loaded from one teacher.path file.",
    )
    _check(
        not paths or (teacher.architecture == "transformer" and teacher.preset is None),
        "teacher.path loads a classifier trained by an earlier tf_distill run (its "
        "teacher.keras, architecture 'transformer'); for a keras-hub teacher use "
        "teacher.preset instead.",
    )
    d = config.distillation
    _check(
        d.augment_copies >= 0,
        f"distillation.augment_copies must be >= 0. Received: {d.augment_copies}.",
    )
    _check(
        not d.sequence_level,
        "distillation.sequence_level is for translation (for a classifier, a transfer set "
        "labelled by the teacher is the analogue: distillation.transfer_size / transfer_path).",
    )


def _check_translation_only(config):
    _check(
        config.distillation.augment_copies == 0,
        "distillation.augment_copies is for task 'classification'.",
    )


def _check_model(role, model):
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
    _check(0 <= model.dropout < 1, f"{role}.dropout must be in [0, 1). Received: {model.dropout}.")
    _check(
        model.position_embedding in ("learned", "sinusoidal"),
        f"{role}.position_embedding must be 'learned' or 'sinusoidal'. "
        f"Received: {model.position_embedding!r}.",
    )


def _check_roles(config):
    """What only the teacher may have: files to load, an ensemble."""
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


def _check_distillation(d, data):
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
    for key in ("teacher_batch_size", "translation_batch_size"):
        value = getattr(d, key)
        _check(value > 0, f"distillation.{key} must be positive. Received: {value}.")


def _check_feature_distillation(config):
    """Hidden / attention / value terms and initialisation from the teacher: what the
    teacher must be, and layer lists that fit both models' depths."""
    d = config.distillation
    for key in ("hidden_weight", "attention_weight", "value_weight"):
        value = getattr(d, key)
        _check(value >= 0, f"distillation.{key} must be >= 0 (0: off). Received: {value}.")
    _check(
        d.feature_cache_mb >= 0,
        "distillation.feature_cache_mb must be >= 0 (0: the teacher's features run live). "
        f"Received: {d.feature_cache_mb}.",
    )
    _check(
        d.hidden_loss in ("mse", "cosine"),
        f"distillation.hidden_loss must be 'mse' or 'cosine'. Received: {d.hidden_loss!r}.",
    )
    features, init = feature_terms_on(d), d.init_from_teacher
    teacher, student = config.teacher, config.student
    for on, what in (
        (features, "hidden_weight / attention_weight / value_weight"),
        (init, "init_from_teacher"),
    ):
        if not on:
            continue
        _check(
            teacher_count(config) == 1,
            f"distillation.{what} needs one teacher, not an ensemble: set "
            "teacher.ensemble_size to 1 (or give one teacher.path).",
        )
        _check(
            config.task != "classification" or teacher.architecture == "transformer",
            f"distillation.{what} needs teacher.architecture 'transformer': a keras-hub "
            "teacher reads its own tokens, so its layers do not line up with the student's.",
        )
    teacher_depths = stack_depths(teacher, config.task)
    student_depths = stack_depths(student, config.task)
    for stack in ("encoder", "decoder"):
        chosen = getattr(d, f"{stack}_layer_map")
        if chosen is None:
            continue
        _check(
            features,
            f"distillation.{stack}_layer_map is set but no feature term is on: give "
            "hidden_weight, attention_weight or value_weight > 0, or remove it.",
        )
        _check(stack in student_depths, f"distillation.{stack}_layer_map is for translation.")
        _check(
            len(chosen) == student_depths[stack]
            and all(1 <= i <= teacher_depths[stack] for i in chosen),
            f"distillation.{stack}_layer_map must list, for each of the student's "
            f"{student_depths[stack]} {stack} layers, a teacher layer from 1 to "
            f"{teacher_depths[stack]}. Received: {chosen}.",
        )
    for stack in ("encoder", "decoder"):
        chosen = getattr(d, f"init_{stack}_layers")
        if chosen is None:
            continue
        _check(init, f"distillation.init_{stack}_layers needs init_from_teacher true.")
        _check(stack in student_depths, f"distillation.init_{stack}_layers is for translation.")
        _check(
            len(chosen) == student_depths[stack]
            and all(0 <= i < teacher_depths[stack] for i in chosen),
            f"distillation.init_{stack}_layers must list, for each of the student's "
            f"{student_depths[stack]} {stack} layers, a teacher layer from 0 to "
            f"{teacher_depths[stack] - 1}. Received: {chosen}.",
        )
    if not init:
        return
    differ = [
        f"{key} {getattr(student, key)} vs {getattr(teacher, key)}"
        for key in (
            "hidden_dim",
            "num_heads",
            "intermediate_dim",
            "tie_embeddings",
            "position_embedding",
            "normalize_first",
        )
        if getattr(student, key) != getattr(teacher, key)
    ]
    differ += [
        f"{stack} layers {student_depths[stack]} vs {teacher_depths[stack]}"
        for stack in student_depths
        if student_depths[stack] > teacher_depths[stack]
    ]
    _check(
        not differ,
        "distillation.init_from_teacher needs a student as wide as the teacher with at most "
        f"its depth; student vs teacher: {', '.join(differ)}. A narrower student cannot take "
        "the teacher's layers (tf_distill does not approximate them): set the student's "
        "shape to the teacher's, or use distillation.hidden_weight instead.",
    )


def _check_training(t):
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
    _check(
        t.teacher_learning_rate is None or t.teacher_learning_rate > 0,
        f"training.teacher_learning_rate must be positive, or null for learning_rate. "
        f"Received: {t.teacher_learning_rate}.",
    )
    _check(t.warmup_steps >= 0, "training.warmup_steps must be >= 0.")
    _check(
        0 <= t.max_truncated_share <= 1,
        f"training.max_truncated_share must be in [0, 1]. Received: {t.max_truncated_share}.",
    )
    _check(
        t.jit_compile in (True, False, "auto"),
        f'training.jit_compile must be true, false or "auto". Received: {t.jit_compile!r}.',
    )
    _check(
        t.distribution in DISTRIBUTIONS,
        f"training.distribution must be one of {', '.join(DISTRIBUTIONS)}. "
        f"Received: {t.distribution!r}.",
    )
    _check(
        t.mixed_precision in MIXED_PRECISION,
        f"training.mixed_precision must be one of {', '.join(MIXED_PRECISION)}. "
        f"Received: {t.mixed_precision!r}.",
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


def _check_export(e):
    _check(
        e.max_decode_length is None or e.max_decode_length > 0,
        "export.max_decode_length must be positive, or null for training.max_sequence_length. "
        f"Received: {e.max_decode_length}.",
    )
    for fmt in e.formats:
        _check(
            fmt in EXPORT_FORMATS,
            f"export.formats holds {fmt!r}; valid formats: {list(EXPORT_FORMATS)}.",
        )
    _check(
        0 <= e.min_sequence_agreement <= 1,
        "export.min_sequence_agreement must be in [0, 1].",
    )
    _check(e.parity_sentences > 0, "export.parity_sentences must be positive.")
    _check(
        e.beam_size >= 1,
        f"export.beam_size must be >= 1 (1: greedy files only). Received: {e.beam_size}.",
    )
    _check(
        e.max_bleu_drop is None or e.max_bleu_drop >= 0,
        f"export.max_bleu_drop must be >= 0, or null to require exact agreement. "
        f"Received: {e.max_bleu_drop}.",
    )
    _check(
        e.int8_mode in ("dynamic", "full"),
        f"export.int8_mode must be 'dynamic' or 'full'. Received: {e.int8_mode!r}.",
    )


def _check_evaluation(e):
    _check(e.beam_size > 0, f"evaluation.beam_size must be positive. Received: {e.beam_size}.")
    _check(e.max_sentences > 0, "evaluation.max_sentences must be positive.")
    _check(e.valid_sentences > 0, "evaluation.valid_sentences must be positive.")
    _check(e.batch_size > 0, f"evaluation.batch_size must be positive. Received: {e.batch_size}.")
    _check(
        e.bootstrap_samples >= 100,
        f"evaluation.bootstrap_samples must be >= 100. Received: {e.bootstrap_samples}.",
    )
