import json

import pytest

from tf_distill import config as cfg


def write(tmp_path, raw, name="run.json"):
    path = tmp_path / name
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


def test_defaults_and_round_trip(tmp_path):
    config = cfg.load(write(tmp_path, {"training": {"epochs": 2}, "output_dir": "out"}))
    assert config.training.epochs == 2 and config.output_dir == "out"
    again = cfg.from_dict(config.to_dict())
    assert again == config


def test_set_overrides_parse_json_values(tmp_path):
    path = write(tmp_path, {"training": {"epochs": 2}})
    config = cfg.load(
        path,
        [
            "training.epochs=5",
            "distillation.alpha=0.25",
            "training.jit_compile=false",
            "training.bucket_lengths=[8, 16, 33]",
            "data.source=synthetic",
            "output_dir=elsewhere",
        ],
    )
    assert config.training.epochs == 5
    assert config.distillation.alpha == 0.25
    assert config.training.jit_compile is False
    assert config.training.bucket_lengths == [8, 16, 33]
    assert config.output_dir == "elsewhere"


def test_configs_shipped_with_the_repo_are_valid(tmp_path):
    from pathlib import Path

    stand_in = tmp_path / "pairs.tsv"  # the file examples point at data outside the repo
    stand_in.write_text("Hi.\tHola.\n", encoding="utf-8")
    paths = sorted(Path("configs").glob("*.json"))
    assert {"tiny.json", "small.json", "base.json"} <= {p.name for p in paths}
    for path in paths:
        raw = json.loads(path.read_text())
        if raw["data"].get("path"):
            raw["data"]["path"] = str(stand_in)
        config = cfg.from_dict(raw)
        assert config.output_dir.startswith("saved_models/"), path


@pytest.mark.parametrize(
    "raw, match",
    [
        ({"modle": {}}, r"Unknown config section 'modle'. Valid sections: \["),
        ({"teacher": {"layers": 2}}, r"Unknown key teacher.layers. Valid keys of 'teacher'"),
        ({"training": {"epochs": "ten"}}, "training.epochs must be an integer"),
        ({"training": {"epochs": 2.5}}, "training.epochs must be an integer"),
        ({"training": {"jit_compile": 1}}, "training.jit_compile must be true or false or a"),
        ({"training": {"jit_compile": "yes"}}, r'jit_compile must be true, false or "auto"'),
        ({"distillation": {"alpha": 1.5}}, r"distillation.alpha must be in \[0, 1\]"),
        ({"export": {"int8_mode": "int4"}}, "export.int8_mode must be 'dynamic' or 'full'"),
        ({"distillation": {"temperature": 0}}, "distillation.temperature must be positive"),
        ({"distillation": {"teacher_top_k": 0}}, "distillation.teacher_top_k must be a positive"),
        ({"distillation": {"teacher_top_k": 2.5}}, "distillation.teacher_top_k must be an integer"),
        (
            {"student": {"hidden_dim": 100, "num_heads": 3}},
            r"student.num_heads must divide student.hidden_dim.*Valid num_heads: \[1, 2, 4, 5",
        ),
        ({"teacher": {"dropout": 1}}, r"teacher.dropout must be in \[0, 1\)"),
        ({"data": {"source": "xml"}}, r"data.source must be one of \['synthetic', 'tsv'"),
        ({"data": {"source": "csv", "path": "x.csv"}}, "data.source 'csv' is for task 'class"),
        ({"task": "tagging"}, r"task must be one of \['translation', 'classification'\]"),
        ({"teacher": {"architecture": "bert"}}, "teacher.architecture 'bert' and teacher.preset"),
        (
            {"task": "classification", "teacher": {"architecture": "gpt"}},
            "teacher.architecture must be 'transformer'",
        ),
        (
            {"task": "classification", "teacher": {"preset": "/nonexistent/preset"}},
            "teacher.preset '/nonexistent/preset' is not a directory",
        ),
        (
            {"task": "classification", "data": {"source": "parallel", "path": "a"}},
            "data.source 'parallel' is for translation",
        ),
        (
            {"task": "classification", "distillation": {"sequence_level": True}},
            "distillation.sequence_level is for translation",
        ),
        ({"data": {"text_column": -1}}, "data.text_column must be a column number >= 0"),
        ({"data": {"label_column": 1.5}}, "data.label_column must be an integer or a string"),
        ({"data": {"label_noise": 2}}, r"data.label_noise must be in \[0, 1\]"),
        ({"training": {"teacher_learning_rate": 0}}, "training.teacher_learning_rate must be"),
        ({"data": {"source": "tsv"}}, "data.path is required when data.source is 'tsv'"),
        (
            {"data": {"source": "tsv", "path": "/nonexistent/pairs.tsv"}},
            "data.path '/nonexistent/pairs.tsv' does not exist",
        ),
        ({"data": {"source": "tfds"}}, "data.tfds_name is required"),
        ({"teacher": {"path": "missing.keras"}}, "teacher.path 'missing.keras' does not exist"),
        ({"export": {"formats": ["onnx"]}}, r"export.formats holds 'onnx'; valid formats"),
        ({"training": {"bucket_lengths": [16, 8]}}, "training.bucket_lengths must be increasing"),
        ([], "The config must be a JSON object"),
        ({"distillation": {"hidden_weight": -1}}, "distillation.hidden_weight must be >= 0"),
        ({"distillation": {"hidden_loss": "l1"}}, "distillation.hidden_loss must be 'mse' or"),
        ({"distillation": {"feature_cache_mb": -1}}, "distillation.feature_cache_mb must be >= 0"),
        ({"training": {"mixed_precision": "bf16"}}, "training.mixed_precision must be one of"),
        ({"training": {"distribution": "tpu"}}, "training.distribution must be one of"),
        (
            {"distillation": {"encoder_layer_map": [1]}},
            "encoder_layer_map is set but no feature term is on",
        ),
        (
            {"distillation": {"attention_weight": 1, "decoder_layer_map": [1, 3]}},
            r"decoder_layer_map must list, for each of the student's 1 decoder layers, a "
            r"teacher layer from 1 to 2. Received: \[1, 3\]",
        ),
        (
            {"distillation": {"init_from_teacher": True}},
            "init_from_teacher needs a student as wide as the teacher.*hidden_dim 64 vs 128",
        ),
        (
            {"distillation": {"init_encoder_layers": [0]}},
            "init_encoder_layers needs init_from_teacher true",
        ),
        (
            {"teacher": {"ensemble_size": 2}, "distillation": {"value_weight": 1}},
            "needs one teacher, not an ensemble",
        ),
        (
            {
                "task": "classification",
                "teacher": {"architecture": "bert"},
                "distillation": {"hidden_weight": 1},
            },
            "needs teacher.architecture 'transformer'",
        ),
        (
            {
                "task": "classification",
                "teacher": {"architecture": "bert", "path": "setup.py"},
            },
            "for a keras-hub teacher use teacher.preset",
        ),
        (
            {
                "task": "classification",
                "distillation": {"decoder_layer_map": [1], "hidden_weight": 1},
            },
            "decoder_layer_map is for translation",
        ),
    ],
)
def test_config_errors_name_the_key(raw, match):
    with pytest.raises(cfg.ConfigError, match=match):
        cfg.from_dict(raw)


def test_file_errors(tmp_path):
    with pytest.raises(cfg.ConfigError, match="Config file 'nope.json' not found"):
        cfg.load("nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"training": {"epochs": 2,}}', encoding="utf-8")
    with pytest.raises(cfg.ConfigError, match=r"bad.json: invalid JSON at line 1"):
        cfg.load(bad)
    with pytest.raises(cfg.ConfigError, match="--set expects section.key=value"):
        cfg.load(write(tmp_path, {}), ["training.epochs"])
    with pytest.raises(cfg.ConfigError, match="Unknown config section 'trainin'"):
        cfg.load(write(tmp_path, {}), ["trainin.epochs=3"])
    array = tmp_path / "array.json"
    array.write_text("[]", encoding="utf-8")
    # With an override too (the CLI adds --output-dir as one): still the one-line error.
    with pytest.raises(cfg.ConfigError, match="must be a JSON object of sections.*a JSON list"):
        cfg.load(array, ["output_dir=x"])


def test_jit_compile_auto_follows_the_visible_devices():
    import tensorflow as tf

    assert cfg.Config().training.jit_compile == "auto"
    assert cfg.resolve_jit_compile("auto") is bool(tf.config.list_physical_devices("GPU"))
    assert cfg.resolve_jit_compile(True) is True
    assert cfg.resolve_jit_compile(False) is False


def test_init_from_teacher_accepts_a_student_of_the_teachers_shape():
    shape = {"hidden_dim": 32, "num_heads": 2, "intermediate_dim": 64, "num_layers": 3}
    config = cfg.from_dict(
        {
            "teacher": shape,
            "student": {**shape, "num_layers": 1},
            "distillation": {"init_from_teacher": True, "init_decoder_layers": [2]},
        }
    )
    assert config.distillation.init_decoder_layers == [2]


def test_mixed_precision_auto_follows_the_devices():
    resolve = cfg.resolve_mixed_precision
    assert resolve("auto", gpus=[]) == "float32"
    assert resolve("auto", gpus=["/physical_device:GPU:0"]) == "mixed_float16"
    assert resolve("mixed_bfloat16", gpus=[]) == "mixed_bfloat16"
    assert resolve("float32", gpus=["/physical_device:GPU:0"]) == "float32"
