"""The main command end to end on a tiny config, its errors, --set and --resume.

The tests run tests/configs/pipeline_tiny.json: configs/tiny.json's settings as they were
when these tests were written, smaller than what a newcomer now gets from tiny.json."""

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY = str(ROOT / "tests" / "configs" / "pipeline_tiny.json")
pytestmark = pytest.mark.slow


def train(*args, cwd=ROOT, timeout=900):
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "run"
    result = train("--config", TINY, "--output-dir", str(out), "--set", "training.epochs=2")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out, result


def test_tiny_pipeline_report(tiny_run):
    out, result = tiny_run
    report = json.loads((out / "report.json").read_text())
    for role in ("teacher", "baseline", "student"):
        entry = report[role]
        for key in ("bleu", "chrf", "token_accuracy", "params", "size_bytes", "latency_ms"):
            assert key in entry, (role, key)
        assert 0 <= entry["bleu"] <= 100 and 0 <= entry["chrf"] <= 100
        assert 0 <= entry["token_accuracy"] <= 1
        assert entry["params"] > 0 and entry["size_bytes"] > 0 and entry["latency_ms"] > 0
    assert report["student"]["params"] < report["teacher"]["params"]
    assert report["baseline"]["params"] == report["student"]["params"]
    assert report["data"]["train"] > report["data"]["test"] > 0
    assert set(report["timings_s"]) >= {"data", "tokenizer", "teacher", "student", "export"}
    assert "teacher_translations" not in report["timings_s"]  # token-level KD only
    # The tiny config keeps the teacher's top 8 tokens, computed once, in a stage of its own.
    assert report["timings_s"]["teacher_outputs"] > 0
    assert "teacher: top 8 tokens on" in result.stdout
    # The student is rounded to the int8 grid before it is evaluated, and the report says so.
    rounding = report["int8_rounding"]
    assert rounding["tensors"] > 0 and 0 <= rounding["same_greedy_output"] <= 1
    assert "int8_rounding" in report["timings_s"]
    assert "rounded to the int8 grid before evaluation" in (out / "report.md").read_text()
    assert report["config"]["training"]["epochs"] == 2  # the --set override took effect
    assert json.loads((out / "config.json").read_text())["training"]["epochs"] == 2
    for name in ("report.md", "curves.png", "teacher.keras", "baseline.keras", "student.keras"):
        assert (out / name).stat().st_size > 0, name
    assert "| BLEU (greedy) |" in (out / "report.md").read_text()
    assert "stage teacher: start" in result.stdout
    assert result.stdout.count("stage teacher: start") == 1  # logged once, not twice
    assert "INFO:tf_distill" not in result.stdout + result.stderr
    assert (out / "logs" / "student").is_dir()  # TensorBoard


def test_tiny_pipeline_export(tiny_run):
    out, _ = tiny_run
    export = out / "export"
    meta = json.loads((export / "export.json").read_text())
    for name in ("student.keras", "student_fp32.tflite", "student_fp16.tflite"):
        assert (export / name).stat().st_size > 0
    assert (export / "saved_model" / "saved_model.pb").exists()
    assert meta["parity"]["tflite_fp32"]["sequence_agreement"] == 1.0
    assert meta["parity"]["saved_model"]["max_abs_logit_diff"] < 1e-4
    for variant in ("tflite_fp32", "tflite_fp16", "tflite_int8"):
        ops = meta["files"][variant]["ops"]
        assert "WHILE" in ops and not [op for op in ops if op.startswith("Flex")]
    assert not (out / "export.tmp").exists()


@pytest.mark.parametrize("fmt", ["tflite-int8", "tflite-fp32", "saved_model", "keras"])
def test_translate_cli_on_each_format(tiny_run, fmt):
    out, _ = tiny_run
    result = subprocess.run(
        [sys.executable, "-m", "tf_distill", "translate", "--model", str(out), "--format", fmt],
        input="The small cat is black.\n\nI do not see the dog.\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.split("\n")
    assert len(lines) >= 3 and lines[1] == ""  # one output line per input line


def test_export_cli_re_exports_a_run(tiny_run, tmp_path):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run[0], run_dir, ignore=shutil.ignore_patterns("logs", "state"))
    result = subprocess.run(
        [sys.executable, "-m", "tf_distill", "export", "--run-dir", str(run_dir)]
        + ["--set", 'export.formats=["saved_model", "tflite_fp32"]'],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "tflite_fp32:" in result.stdout and "100.0% identical to Keras" in result.stdout
    meta = json.loads((run_dir / "export" / "export.json").read_text())
    # The formats asked for, each with its beam-search twin (export.beam_size 4).
    assert set(meta["parity"]) == {"saved_model", "tflite_fp32", "tflite_fp32_beam"}
    assert meta["parity"]["tflite_fp32"]["sequence_agreement"] == 1.0
    assert meta["parity"]["tflite_fp32_beam"]["sequence_agreement"] >= 0.99
    assert not (run_dir / "export" / "student_int8.tflite").exists()  # the old export is gone
    assert not (run_dir / "export" / "student_int8_beam.tflite").exists()

    missing = subprocess.run(
        [sys.executable, "-m", "tf_distill", "export", "--run-dir", str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert missing.returncode == 2 and "holds no config.json" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1, missing.stderr


def test_translate_cli_errors(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tf_distill", "translate", "--model", str(tmp_path), "Hello"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 2
    assert "holds no export" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--config", "missing.json"], "Config file 'missing.json' not found"),
        (["--config", TINY, "--set", "distillation.alpha=2"], "distillation.alpha"),
        (["--config", TINY, "--set", "student.num_heads=3"], "must divide"),
        (["--config", TINY, "--set", "teacher.layers=3"], "Unknown key teacher.layers"),
        (
            ["--config", TINY, "--set", "data.source=tsv", "--set", "data.path=/no/file"],
            "data.path '/no/file' does not exist",
        ),
        (
            ["--config", TINY, "--set", "distillation.transfer_path=/no/file"],
            "distillation.transfer_path '/no/file' does not exist",
        ),
        (["--config", TINY, "--set", "training.seed=-1"], "training.seed must be >= 0"),
        (["--config", TINY, "--set", "export.max_decode_length=-3"], "must be positive"),
        (
            ["--config", TINY, "--set", "data.source=tsv", "--set", f"data.path={TINY}"]
            + ["--set", "data.source_column=1", "--set", "data.target_column=1"],
            "data.source_column and data.target_column must differ",
        ),
        (["--config", TINY, "--resume"], "holds no run to resume (no config.json)"),
        (["--confg", TINY], "required: --config; see `tf-distill train --help`"),
        (
            ["--config", TINY, "--set", "training.max_sequence_length=4"]
            + [
                "--set",
                "training.max_truncated_share=0.25",
                "--set",
                "training.bucket_lengths=null",
            ],
            "cuts 100.0% of the training pairs",
        ),
    ],
)
def test_config_errors_exit_2_and_write_nothing(tmp_path, args, message):
    out = tmp_path / "out"
    result = train(*args, "--output-dir", str(out))
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not out.exists()


def test_an_output_dir_that_is_a_file_or_cannot_be_made_exits_2(tmp_path):
    a_file = tmp_path / "taken"
    a_file.write_text("not a directory")
    result = train("--config", TINY, "--output-dir", str(a_file))
    assert result.returncode == 2 and "is a file, not a directory" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    result = train("--config", TINY, "--output-dir", str(a_file / "run"))
    assert result.returncode == 2 and "cannot be created or written" in result.stderr
    assert a_file.read_text() == "not a directory"


def test_an_output_dir_the_system_refuses_is_a_config_error(tmp_path, monkeypatch):
    """Checks before the run cannot foresee everything (a read-only or special file
    system): a failing mkdir still ends as a ConfigError naming output_dir."""
    from tf_distill import config as config_lib
    from tf_distill.pipeline import run_pipeline

    config = config_lib.load(TINY, [f"output_dir={tmp_path / 'refused'}"])

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(config_lib.ConfigError, match="cannot be created \\(Permission denied\\)"):
        run_pipeline(config)
    monkeypatch.undo()
    assert not (tmp_path / "refused").exists()


def test_bad_data_file_found_mid_run_leaves_nothing(tmp_path):
    """The data file exists (config checks pass) but is malformed: a DataError at the data
    stage, after config.json was written; the fresh run removes it again."""
    data = tmp_path / "pairs.tsv"
    data.write_text("no tab here\n", encoding="utf-8")
    out = tmp_path / "out"
    args = ["--set", "data.source=tsv", "--set", f"data.path={data}"]
    result = train("--config", TINY, *args, "--output-dir", str(out))
    assert result.returncode == 2
    assert "expected 2 tab-separated columns" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_transfer_file_of_corpus_sources_only_leaves_nothing(tmp_path):
    """Every line of the transfer file is a corpus source: nothing is left to translate, so
    the run stops at its data stage, before anything trains, and removes what it wrote."""
    from tf_distill.data import generate_corpus

    mono = tmp_path / "mono.txt"
    mono.write_text("\n".join(s for s, _ in generate_corpus(20, ambiguity=0.3)), "utf-8")
    out = tmp_path / "out"
    args = ["--set", f"distillation.transfer_path={mono}", "--output-dir", str(out)]
    result = train("--config", TINY, *args)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "every sentence is also a source of the corpus" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def _start_train(args):
    """train.py in a session of its own (so kill -9 reaches its whole process group), its
    stdout and stderr merged into one pipe."""
    return subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def test_resume_after_interruption(tmp_path):
    out = tmp_path / "run"
    args = ["--config", TINY, "--output-dir", str(out), "--set", "training.epochs=2"]
    args += ["--set", "distillation.sequence_level=true"]  # its teacher translations resume too
    process = _start_train(args)
    state = out / "state" / "teacher" / "state.json"
    deadline = time.time() + 600
    while not state.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.5)
    assert state.exists(), "the run never checkpointed its first teacher epoch"
    os.killpg(process.pid, signal.SIGKILL)  # killed mid-run, as by a crash or Ctrl-C
    process.wait()
    assert not (out / "report.json").exists()
    refused = train(*args)
    assert refused.returncode == 2 and "--resume" in refused.stderr
    result = train(*args, "--resume")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "resuming after epoch" in result.stdout or "already trained" in result.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["student"]["bleu"] >= 0
    assert len(report["curves"]["teacher"]["loss"]) == 2  # both teacher epochs are on record
    # Sequence-level KD's translations are a stage of their own, not part of the student's.
    assert {"teacher_translations", "student"} <= set(report["timings_s"])
    translations = (out / "teacher_translations.tsv").read_text(encoding="utf-8").splitlines()
    assert len(translations) > report["data"]["train"] // 2
    assert all(len(line.split("\t")) == 2 for line in translations)


def _comparable(report):
    """A report without what measures time (stage timings, latencies, conversion time),
    the run's own path, and the byte counts of `.keras` files and the SavedModel (a model
    loaded back from its file serializes a few hundred bytes of metadata differently; the
    weights, every score and every TFLite file are the same)."""
    report = json.loads(json.dumps(report))
    report.pop("timings_s")
    report["config"].pop("output_dir")
    for name in ("keras", "saved_model"):
        report["export"]["files"].pop(name)
    for role in ("teacher", "baseline", "student", "student_ce"):
        if role in report:
            report[role].pop("latency_ms")
            report[role].pop("size_bytes")
    report["ratios"].pop("speedup_vs_teacher")
    report["ratios"].pop("size_vs_teacher")
    for parity in (report.get("export") or {}).get("parity", {}).values():
        parity.pop("conversion_s", None)
    return report


def _stage_starts(output):
    """The stages whose "stage X: start" line `output` holds, in order."""
    return [
        line.split("stage ")[1].split(":")[0]
        for line in output.splitlines()
        if ": start" in line and "stage " in line
    ]


def _run_until(args, stage, delay):
    """Runs train.py and kill -9s it `delay` seconds after its "stage <stage>: start" line
    (never, with stage None); returns (exit status, output). Moments tied to the run's own
    progress, not to the clock, land in every stage however fast the machine is."""
    import threading

    process = _start_train(args)
    killer, lines = None, []
    for line in process.stdout:
        lines.append(line)
        if killer is None and stage is not None and f"stage {stage}: start" in line:
            killer = threading.Timer(delay, os.killpg, (process.pid, signal.SIGKILL))
            killer.start()
    process.wait(timeout=900)
    if killer is not None:
        killer.cancel()
    return process.returncode, "".join(lines)


def test_random_kills_resume_to_the_uninterrupted_report(tiny_run, tmp_path):
    """kill -9 at 20+ moments spread over every stage (each stage several times, each kill a
    random moment shortly after its stage starts), each followed by --resume: the run
    finishes, and its report equals the uninterrupted run's (timings aside)."""
    import random

    uninterrupted, result = tiny_run
    stages = [s for s in _stage_starts(result.stdout + result.stderr) if s != "report"]
    assert len(stages) >= 8, stages
    # Each stage in turn, in the pipeline's order (so the run moves forward between them),
    # several times; the last, short stages get short delays, so the run cannot finish first.
    per_stage = -(-20 // len(stages)) + 1
    targets = [stage for stage in stages for _ in range(per_stage)]
    out = tmp_path / "run"
    args = ["--config", TINY, "--output-dir", str(out), "--set", "training.epochs=2"]
    rng = random.Random(0)
    kills, stages_hit = 0, set()
    for i, target in enumerate([*targets, None]):
        resume = ["--resume"] if (out / "config.json").exists() else []
        late = i >= len(targets) - 3 * per_stage
        delay = rng.uniform(0, 0.3 if late else 1.5)
        code, output = _run_until([*args, *resume], target, delay)
        if code == 0:
            break
        assert code == -signal.SIGKILL, output[-3000:]
        kills += 1
        started = _stage_starts(output)
        stages_hit.add(started[-1] if started else "startup")
    assert code == 0 and kills >= 20, (code, kills, targets)
    # Kills aimed at the quick stages (data, tokenizer, ...) land in the next one; every
    # long stage is hit.
    assert {"teacher", "baseline", "student", "evaluation", "export"} <= stages_hit, stages_hit
    got = json.loads((out / "report.json").read_text())
    expected = json.loads((uninterrupted / "report.json").read_text())
    assert _comparable(got) == _comparable(expected)
    assert not list(out.rglob("*.tmp")) and not list(out.rglob("*.partial*"))


def test_a_resume_with_a_changed_config_or_a_second_run_is_refused(tiny_run, tmp_path):
    import shutil

    uninterrupted, _ = tiny_run
    out = tmp_path / "run"
    shutil.copytree(uninterrupted, out)
    args = ["--config", TINY, "--output-dir", str(out), "--set", "training.epochs=2"]
    changed = train(*args, "--set", "distillation.alpha=0.9", "--resume")
    assert changed.returncode == 2
    assert "differs from the run's in distillation.alpha" in changed.stderr
    assert changed.stderr.count("\n") == 1 and "Traceback" not in changed.stderr
    assert json.loads((out / "config.json").read_text())["distillation"]["alpha"] == 0.5
    # A process holding the run's lock (this one, alive) keeps a second run out.
    (out / "run.lock").write_text(f"{os.getpid()} {__import__('socket').gethostname()}\n")
    second = train(*args, "--resume")
    assert second.returncode == 2 and f"Another process (pid {os.getpid()}" in second.stderr
    (out / "run.lock").unlink()


def test_failed_export_still_writes_the_report(tmp_path, monkeypatch):
    """An export that fails its parity check fails the run, but keeps its evaluation."""
    import tf_distill.export as export_lib
    from tf_distill import config as config_lib
    from tf_distill.pipeline import run_pipeline

    def parity_too_low(*args, **kwargs):
        raise export_lib.ExportError("tflite_int8 parity too low: 50.0% of test sentences")

    monkeypatch.setattr(export_lib, "export_student", parity_too_low)
    config = config_lib.load(
        TINY,
        ["training.epochs=1", "distillation.baseline=false", f"output_dir={tmp_path / 'run'}"],
    )
    with pytest.raises(export_lib.ExportError, match="parity too low"):
        run_pipeline(config)
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["export"] == {"error": "tflite_int8 parity too low: 50.0% of test sentences"}
    assert report["student"]["bleu"] >= 0
    assert (
        "Export failed: tflite_int8 parity too low" in (tmp_path / "run" / "report.md").read_text()
    )


def test_teacher_loaded_from_a_keras_file(tiny_run, tmp_path):
    """`teacher.path` skips teacher training; the loaded teacher scores as it did in its run."""
    from tf_distill import config as config_lib
    from tf_distill.pipeline import run_pipeline

    out, _ = tiny_run
    teacher_file = out / "teacher.keras"
    config = config_lib.load(
        TINY,
        [
            "training.epochs=2",
            "export.enabled=false",
            f"teacher.path={teacher_file}",
            f"output_dir={tmp_path / 'run'}",
        ],
    )
    report = run_pipeline(config)
    before = json.loads((out / "report.json").read_text())
    assert report["teacher"]["bleu"] == before["teacher"]["bleu"]  # same model and test split
    assert report["teacher"]["size_bytes"] == teacher_file.stat().st_size
    assert not (tmp_path / "run" / "teacher.keras").exists()
    assert report["curves"]["teacher"]["loss"] == []  # nothing was trained
    # The baseline trains exactly as it did after a teacher trained in the same process:
    # same initial weights and the same batch order, from a dataset of its own.
    assert report["curves"]["baseline"]["loss"] == before["curves"]["baseline"]["loss"]
    assert report["baseline"]["bleu"] == before["baseline"]["bleu"]


def test_a_student_trained_in_bfloat16_ships_in_float32(tiny_run, tmp_path):
    """training.mixed_precision: the student trains with bf16 compute; what the run saves,
    evaluates and exports is the float32 model holding its weights (exact TFLite parity)."""
    import keras

    out, _ = tiny_run
    run = tmp_path / "bf16"
    result = train(
        "--config", TINY, "--output-dir", str(run),
        "--set", f"teacher.path={out / 'teacher.keras'}",
        "--set", "distillation.baseline=false",
        "--set", "training.mixed_precision=mixed_bfloat16",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "mixed_bfloat16 compute" in result.stdout
    report = json.loads((run / "report.json").read_text())
    assert report["student"]["precision"] == "mixed_bfloat16"
    assert "| training precision |" in (run / "report.md").read_text()
    student = keras.saving.load_model(run / "student.keras", compile=False)
    assert {layer.dtype_policy.name for layer in student._flatten_layers()} == {"float32"}
    parity = json.loads((run / "export" / "export.json").read_text())["parity"]
    assert parity["tflite_fp32"]["sequence_agreement"] == 1.0
    assert parity["saved_model"]["max_abs_logit_diff"] < 1e-4


def test_transfer_set_trains_the_student_on_teacher_translations(tiny_run, tmp_path, caplog):
    """`distillation.transfer_size`: new corpus sentences, none of them a corpus source,
    translated by the teacher and added to the student's (not the baseline's) pairs."""
    from tf_distill import config as config_lib
    from tf_distill.data import generate_corpus
    from tf_distill.pipeline import run_pipeline

    out, _ = tiny_run
    run_dir = tmp_path / "run"
    config = config_lib.load(
        TINY,
        [
            "training.epochs=3",
            "training.student_epochs=1",  # the student's own epoch count
            "distillation.transfer_size=150",
            "distillation.baseline=false",
            "export.enabled=false",
            f"teacher.path={out / 'teacher.keras'}",
            f"output_dir={run_dir}",
        ],
    )
    caplog.set_level(logging.INFO, logger="tf_distill")
    report = run_pipeline(config)
    stdout = caplog.text
    lines = (run_dir / "transfer_set.tsv").read_text(encoding="utf-8").splitlines()
    pairs = [line.split("\t") for line in lines]
    assert all(len(pair) == 2 and pair[1].strip() for pair in pairs)
    assert 100 <= report["data"]["transfer"] == len(pairs) <= 150  # empty outputs dropped
    corpus_sources = {s for s, _ in generate_corpus(1500, ambiguity=0.3)}
    assert not corpus_sources & {source for source, _ in pairs}
    assert "transfer_set" in report["timings_s"]
    assert len(report["curves"]["student"]["loss"]) == 1
    student_pairs = report["data"]["train"] + report["data"]["transfer"]
    assert f"teacher: top 8 tokens on {student_pairs} training pairs" in stdout
    assert (
        f"trained on {len(pairs):,} source sentences without" in (run_dir / "report.md").read_text()
    )


def test_loaded_teacher_with_another_vocabulary_is_refused(tiny_run, tmp_path):
    from tf_distill import config as config_lib
    from tf_distill.pipeline import run_pipeline

    out, _ = tiny_run
    config = config_lib.load(
        TINY,
        [
            "tokenizer.vocabulary_size=200",
            f"teacher.path={out / 'teacher.keras'}",
            f"output_dir={tmp_path / 'run'}",
        ],
    )
    with pytest.raises(config_lib.ConfigError, match=r"has a vocabulary of \d+ but .* has 200"):
        run_pipeline(config)
    assert not (tmp_path / "run").exists()  # nothing half-written: no config, no tokenizer
    # An empty directory given by the user is kept, and stays empty.
    (tmp_path / "empty").mkdir()
    config.output_dir = str(tmp_path / "empty")
    with pytest.raises(config_lib.ConfigError, match="has a vocabulary of"):
        run_pipeline(config)
    assert (tmp_path / "empty").is_dir() and not any((tmp_path / "empty").iterdir())


def test_ensemble_beam_sequence_kd_ablation_and_significance(tiny_run, tmp_path):
    """Two teachers (one loaded, one trained with label smoothing and checkpoint
    averaging) distil as an ensemble through beam-search translations; the CE-only
    ablation trains on the same pairs; the report shows every model and the bootstrap."""
    from tf_distill import config as config_lib
    from tf_distill.pipeline import run_pipeline

    out, _ = tiny_run
    run_dir = tmp_path / "run"
    config = config_lib.load(
        TINY,
        [
            "training.epochs=2",
            f'teacher.path=["{out / "teacher.keras"}"]',
            "teacher.ensemble_size=2",
            "training.teacher_label_smoothing=0.1",
            "training.teacher_average_epochs=2",
            "distillation.sequence_level=true",
            "distillation.sequence_level_beam=2",
            "distillation.ce_only_ablation=true",
            "evaluation.bootstrap_samples=200",
            "export.enabled=false",
            f"output_dir={run_dir}",
        ],
    )
    report = run_pipeline(config)
    before = json.loads((out / "report.json").read_text())
    assert report["teacher_1"]["bleu"] == before["teacher"]["bleu"]  # the loaded one
    assert report["teacher_1"]["size_bytes"] == (out / "teacher.keras").stat().st_size
    assert report["teacher"]["params"] == report["teacher_1"]["params"] * 2
    assert report["teacher"]["token_accuracy"] is None  # no single Keras model to score
    assert (run_dir / "teacher_2.keras").exists() and not (run_dir / "teacher_1.keras").exists()
    averaging = report["checkpoint_averaging"]["teacher_2"]
    assert averaging["epochs"] == 2 and isinstance(averaging["kept"], bool)
    # One teacher translation per distinct training source (empty outputs dropped).
    translated = (run_dir / "teacher_translations.tsv").read_text(encoding="utf-8").splitlines()
    assert 0 < len(translated) <= report["data"]["train"]
    assert len({line.split("\t")[0] for line in translated}) == len(translated)
    # The ablation and the student train on the same pairs for the same steps.
    for key in ("pairs", "steps", "epochs"):
        assert report["student_ce"][key] == report["student"][key], key
    assert report["student"]["pairs"] == len(translated)
    assert report["baseline"]["pairs"] == report["data"]["train"]
    assert report["teacher_2"]["epochs"] == 2 and report["teacher_2"]["steps"] > 0
    for other in ("baseline", "teacher", "student_ce"):
        for mode, key in (("greedy", "bleu"), ("beam", "bleu_beam")):
            found = report["significance"][f"student_vs_{other}"][mode]
            assert found["delta"] == pytest.approx(
                report["student"][key] - report[other][key], abs=0.02
            )
            assert found["low"] <= found["delta"] <= found["high"]
    text = (run_dir / "report.md").read_text()
    assert "| metric | teacher_1 | teacher_2 | teacher | baseline | student_ce | student |" in text
    assert "Is the difference real? (paired bootstrap, 95%)" in text
    assert "teacher_1, teacher_2: the ensemble's members" in text
    assert "| optimizer steps |" in text and "| training pairs |" in text


def test_tatoeba_config_runs_on_another_language_pair(tmp_path):
    """configs/tatoeba.json, pointed at another Tatoeba-format file with the two --set
    lines the README gives, runs to the end: nothing in it is specific to English-Spanish.
    The other sizes are shrunk only to keep the test short."""
    from tf_distill.data import generate_corpus

    pairs = generate_corpus(900, seed=3, ambiguity=0.3)  # English -> French, two columns
    path = tmp_path / "fra.txt"
    path.write_text(
        "".join(
            f"{s}\t{t}\tCC-BY 2.0 (France) Attribution: tatoeba.org #{i}\n"
            for i, (s, t) in enumerate(pairs)
        ),
        encoding="utf-8",
    )
    run_dir = tmp_path / "run"
    shrink = {
        "data.max_sources": "0.5",
        "distillation.transfer_size": "200",
        "tokenizer.vocabulary_size": "400",
        "teacher.hidden_dim": "32",
        "teacher.intermediate_dim": "64",
        "teacher.num_layers": "1",
        "training.teacher_epochs": "2",
        "training.teacher_average_epochs": "2",
        "training.epochs": "1",
        "training.student_epochs": "1",
        "evaluation.max_sentences": "30",
        "evaluation.valid_sentences": "20",
        "evaluation.bootstrap_samples": "100",
        "export.parity_sentences": "10",
        "export.max_bleu_drop": "100",
    }
    args = ["--config", "tatoeba.json", "--output-dir", str(run_dir)]
    args += ["--set", f"data.path={path}", "--set", f"distillation.transfer_path={path}"]
    for key, value in shrink.items():
        args += ["--set", f"{key}={value}"]
    result = train(*args, cwd=ROOT / "configs")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((run_dir / "report.json").read_text())
    config = report["config"]
    assert config["data"]["path"] == str(path)
    assert config["distillation"]["sequence_level_beam"] == 4  # the recipe is kept
    # The transfer set is the file's other sources: none of them is a source of a split.
    transfer = (run_dir / "transfer_set.tsv").read_text(encoding="utf-8").splitlines()
    translated = (run_dir / "teacher_translations.tsv").read_text(encoding="utf-8")
    train_sources = {line.split("\t")[0] for line in translated.splitlines()}
    transfer_sources = {line.split("\t")[0] for line in transfer}
    assert transfer_sources and transfer_sources <= {s for s, _ in pairs}
    assert train_sources and not transfer_sources & train_sources
    assert report["data"]["transfer"] == len(transfer)
    assert report["student"]["pairs"] == report["student_ce"]["pairs"]
    assert set(report["significance"]) == {
        "student_vs_baseline",
        "student_vs_teacher",
        "student_vs_student_ce",
    }
    assert (run_dir / "export" / "student_int8.tflite").stat().st_size > 0


def run_bench(script, run_dir, output, sentences, *args):
    """Runs `bench/<script>` on a run directory (one repeat); its JSON report and process."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--run-dir", str(run_dir)]
        + ["--sentences", str(sentences), "--repeats", "1", "--output", str(output), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return json.loads(output.read_text()), result


def test_latency_bench_runs_and_the_runtime_cold_start_skips_tensorflow(tiny_run, tmp_path):
    out, _ = tiny_run
    report, result = run_bench("latency.py", out, tmp_path / "latency.json", sentences=3)
    starts = report["cold_start"]
    # Not a timing claim: a process that never imports TensorFlow holds far less memory.
    assert starts["runtime"]["peak_rss_mb"] < starts["tensorflow"]["peak_rss_mb"] / 2
    assert "Cold start" in result.stdout


def test_device_table_bench_measures_every_file_and_the_teacher_in_tflite(tiny_run, tmp_path):
    out, _ = tiny_run
    report, _ = run_bench("device_table.py", out, tmp_path / "device.json", sentences=2)
    rows = {(r["model"], r["format"], r["decoding"]): r for r in report["table"]}
    for mode in ("greedy", "beam"):
        assert ("teacher", "tflite fp32", mode) in rows and ("teacher", "keras", mode) in rows
        for precision in ("fp32", "fp16", "int8"):
            row = rows[("student", f"tflite {precision}", mode)]
            size = out / "export" / f"student_{precision}{'_beam' * (mode == 'beam')}.tflite"
            assert row["bytes"] == size.stat().st_size
            expected = rows[("teacher", "tflite fp32", mode)]["ms_per_sentence"]
            assert report["ratios"][f"{precision}_{mode}_speedup_vs_teacher_fp32"] == round(
                expected / row["ms_per_sentence"], 2
            )


def test_decode_whatif_bench_converts_the_rewritten_student_steps(tiny_run, tmp_path):
    """bench/decode_whatif.py on the tiny run: every case converts and runs; without its
    self-attention the student's loop body has fewer ops than with an SSRU, which has
    fewer than the attention it replaces, and RMSNorm (no mean, no centring, no offset)
    has fewer than LayerNorm."""
    out, _ = tiny_run
    modes = ["ssru", "none", "ssru+rms", "ssru+rms+vocab/50"]
    report, result = run_bench(
        "decode_whatif.py", out, tmp_path / "whatif.json", 2, "--modes", *modes
    )
    rows = report["rows"]
    assert set(rows) == {"teacher", "student attention"} | {f"student {m}" for m in modes}
    ops = {label: row["loop_body_ops"] for label, row in rows.items()}
    assert ops["student none"] < ops["student ssru"] < ops["student attention"]
    assert ops["student ssru+rms"] < ops["student ssru"]
    longest = json.loads((out / "export" / "export.json").read_text())["max_decode_length"]
    assert 1 <= report["tokens"]["student"] <= longest and "| student | ssru |" in result.stdout


def test_truncated_student_and_non_utf8_stdin_are_one_line_errors(tiny_run, tmp_path):
    import shutil

    out, _ = tiny_run
    broken = tmp_path / "run"
    broken.mkdir()
    shutil.copy(out / "config.json", broken)
    shutil.copytree(out / "tokenizer", broken / "tokenizer")
    (broken / "student.keras").write_bytes((out / "student.keras").read_bytes()[:1000])
    cli = [sys.executable, "-m", "tf_distill"]
    result = subprocess.run(
        [*cli, "export", "--run-dir", str(broken)], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 2 and "student.keras cannot be loaded" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (broken / "export").exists()
    result = subprocess.run(
        [*cli, "translate", "--model", str(out), "--format", "tflite-int8"],
        input=b"a sentence\n\xff\xfe\n",
        capture_output=True,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert result.stderr.decode().strip() == (
        "tf-distill: error: stdin line 2 is not UTF-8 text (byte 0xff). "
        "Convert the input to UTF-8, e.g. with iconv."
    )
