"""`import tf_distill` is cheap and leaves the process as it found it; errors share one base."""

import json
import subprocess
import sys
import textwrap

import pytest

import tf_distill
from tf_distill import errors


def _run(script, env_extra=None):
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",)}
    env.pop("KERAS_BACKEND", None)
    env.update(env_extra or {})
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_import_changes_no_environment_variable_and_installs_no_hook():
    found = _run(
        """
        import json, os, sys
        env, hooks = dict(os.environ), list(sys.meta_path)
        import tf_distill
        print(json.dumps({
            "env_changed": sorted(k for k in set(env) | set(os.environ)
                                  if env.get(k) != os.environ.get(k)),
            "hooks_added": len(sys.meta_path) - len(hooks),
            "tensorflow_loaded": "tensorflow" in sys.modules,
            "keras_loaded": "keras" in sys.modules,
        }))
        """
    )
    assert found == {
        "env_changed": [],
        "hooks_added": 0,
        "tensorflow_loaded": False,
        "keras_loaded": False,
    }


def test_load_model_works_in_a_fresh_process(tmp_path):
    """In a fresh process, `tf_distill.load_model` registers the layers and reads the file."""
    found = _run(
        f"""
        import json
        import tf_distill
        from tf_distill.models import build_transformer
        model = build_transformer(50, 6, num_layers=1, num_heads=2, hidden_dim=8,
                                  intermediate_dim=16)
        model.save({str(tmp_path / "m.keras")!r})
        print(json.dumps({{"name": type(tf_distill.load_model(
            {str(tmp_path / "m.keras")!r}).get_layer("encoder")).__name__}}))
        """
    )
    assert found == {"name": "Encoder"}


def test_every_user_fixable_error_shares_one_base():
    from tf_distill.config import ConfigError
    from tf_distill.data import DataError

    for cls in (ConfigError, DataError, errors.TranslateError):
        assert issubclass(cls, errors.TFDistillError) and issubclass(cls, ValueError)
    assert tf_distill.ConfigError is ConfigError and tf_distill.DataError is DataError
    assert not issubclass(errors.ExportError, errors.TFDistillError)  # exit 1, not 2
    with pytest.raises(errors.TFDistillError, match="max_sources"):
        from tf_distill import config as config_lib

        config_lib.from_dict({"data": {"max_sources": 5}})


def test_public_modules_are_reachable_and_the_runtime_stays_keras_free():
    found = _run(
        """
        import json, sys
        import tf_distill
        runtime = tf_distill.runtime.Translator.__name__
        keras_after_runtime = "keras" in sys.modules
        names = [tf_distill.export.export_student.__name__,
                 tf_distill.evaluation.paired_bootstrap.__name__,
                 tf_distill.teacher_cache.teacher_top_k.__name__,
                 tf_distill.sequence_kd.teacher_translations.__name__,
                 tf_distill.translate_texts.__name__]
        print(json.dumps({"runtime": runtime, "keras": keras_after_runtime, "names": names}))
        """
    )
    assert found == {
        "runtime": "Translator",
        "keras": False,
        "names": [
            "export_student",
            "paired_bootstrap",
            "teacher_top_k",
            "teacher_translations",
            "translate_texts",
        ],
    }


def test_the_command_line_hides_tensorflows_start_up_lines():
    """TF_CPP_MIN_LOG_LEVEL cannot silence TensorFlow's first C++ log lines; the command
    line imports TensorFlow with stderr muted, so stderr stays empty."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-m", "tf_distill", "info"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("tf_distill ") and "tensorflow 2." in result.stdout
    assert result.stderr == ""
