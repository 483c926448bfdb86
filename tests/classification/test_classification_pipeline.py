"""`task: classification` end to end through `train.py`: a keras-hub BERT teacher with its
own tokenizer, the baseline and the distilled student, evaluation, export, the device
runtime and the `classify` command; the same config pointed at another labelled file."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tf_distill import classification_metrics as metrics
from tf_distill.data.synthetic_reviews import LABEL_NAMES, generate_reviews

ROOT = Path(__file__).resolve().parents[2]
TINY = str(ROOT / "tests" / "configs" / "classification_tiny.json")
pytestmark = pytest.mark.slow


def run(*args, script="train.py", stdin=None, timeout=900):
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=timeout,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("classification") / "run"
    result = run("--config", TINY, "--output-dir", str(out))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out, result


def test_run_writes_the_report_and_its_figures_are_the_models_own(tiny_run):
    out, result = tiny_run
    assert "of the teacher's macro-F1 with" in result.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["task"] == "classification"
    assert set(report["results"]) == {"teacher", "baseline", "student"}
    for name in ("report.md", "curves.png", "confusion.png", "teacher.keras", "student.keras"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "teacher_tokenizer" / "vocab.txt").exists()  # the teacher's own vocabulary
    data = report["data"]
    assert data["label_names"] == LABEL_NAMES
    assert data["train"] + data["valid"] + data["test"] == 1500
    # The scores are recomputed here from the saved student and the test split.
    import keras

    from tf_distill import config as config_lib
    from tf_distill.data import Tokenizer
    from tf_distill.pipeline import classification

    config = config_lib.load(TINY, [f"output_dir={out}"])
    prepared = classification.prepare_data(config)
    tokenizers = classification.Tokenizers(Tokenizer.load(out / "tokenizer", "source"), None)
    test = classification.make_split(prepared.splits.test, tokenizers, 32)
    assert len(test.labels) == data["test"]
    student = keras.saving.load_model(out / "student.keras")
    predicted = student.predict({"token_ids": test.token_ids}, verbose=0).argmax(-1)
    want = metrics.scores(test.labels, predicted, 3)
    got = report["results"]["student"]
    assert got["confusion"] == want["confusion"]
    assert got["macro_f1"] == pytest.approx(want["macro_f1"])
    assert np.sum(got["confusion"]) == data["test"]
    teacher = keras.saving.load_model(out / "teacher.keras")
    assert teacher.count_params() == report["results"]["teacher"]["parameters"]
    assert type(teacher).__name__ == "BertTextClassifier"
    comparison = report["comparisons"]["student_vs_baseline"]["macro_f1"]
    assert comparison["low"] <= comparison["difference"] <= comparison["high"]
    md = (out / "report.md").read_text()
    assert "student - baseline, macro-F1" in md and "| true \\ predicted |" in md


_NO_TENSORFLOW = """
import json, sys

class _Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf_keras"):
            raise ImportError(f"{name} may not be imported on the device")

sys.meta_path.insert(0, _Refuse())
from tf_distill.runtime import Classifier

texts = json.loads(sys.argv[2])
found = {p: Classifier(sys.argv[1], p, batch_size=4).classify(texts) for p in ("fp32", "int8")}
found["loaded"] = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
print(json.dumps(found))
"""


def test_device_runtime_and_classify_command_agree_with_keras(tiny_run):
    out, _ = tiny_run
    import keras

    from tf_distill.data import Tokenizer

    texts, _ = generate_reviews(60, seed=99)
    texts = [*texts, ""]
    tokenizer = Tokenizer.load(out / "export" / "tokenizer", "source")
    student = keras.saving.load_model(out / "student.keras")
    expected = []
    for text in texts:  # one text at a time, no padding, as Keras sees it alone
        ids = tokenizer.tokenize(text)[:32] or [tokenizer.unk_id]
        logits = student({"token_ids": np.array([ids], np.int32)}, training=False)
        expected.append(LABEL_NAMES[int(np.argmax(logits))])
    result = subprocess.run(
        [sys.executable, "-c", _NO_TENSORFLOW, str(out), json.dumps(texts)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["loaded"] == []
    assert found["fp32"] == expected  # batched, padded, in the TFLite file: same labels
    export = json.loads((out / "export" / "export.json").read_text())
    assert export["label_names"] == LABEL_NAMES
    agreement = np.mean([a == b for a, b in zip(found["int8"], expected, strict=True)])
    assert agreement >= 0.9, agreement
    command = subprocess.run(
        [sys.executable, "-m", "tf_distill", "classify", "--model", str(out),
         "--format", "tflite-fp32"],
        input="\n".join(texts[:3]) + "\n", capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert command.returncode == 0, command.stderr[-2000:]
    lines = command.stdout.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == expected[:3]
    assert all(0.33 < float(line.split("\t")[1]) <= 1.0 for line in lines)


def test_classify_refuses_a_translation_export_and_empty_input(tiny_run, tmp_path):
    out, _ = tiny_run
    fake = tmp_path / "export"
    fake.mkdir()
    (fake / "export.json").write_text(json.dumps({"task": "translation"}))
    for args, stdin, message in (
        (["--model", str(tmp_path), "hi"], None, "holds a translation model, not a classifier"),
        (["--model", str(out)], "", "Nothing to classify"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "tf_distill", "classify", *args],
            input=stdin, capture_output=True, text=True, cwd=ROOT,
        )  # fmt: skip
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


def test_the_same_config_reads_a_sentiment_tsv_with_a_header(tmp_path):
    texts, labels = generate_reviews(900, seed=7)
    path = tmp_path / "sentiment.tsv"
    names = ["neg", "neutral", "pos"]
    path.write_text(
        "sentence\tlabel\n"
        + "".join(f"{t}\t{names[y]}\n" for t, y in zip(texts, labels, strict=True)),
        encoding="utf-8",
    )
    out = tmp_path / "run"
    result = run(
        "--config", TINY, "--output-dir", str(out),
        "--set", "data.source=tsv", "--set", f"data.path={path}",
        "--set", "data.text_column=sentence", "--set", "data.label_column=label",
        "--set", "training.epochs=1", "--set", "export.formats=[\"tflite_fp32\"]",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["data"]["label_names"] == ["neg", "neutral", "pos"]
    assert report["data"]["examples"] == 900
    assert sum(report["data"]["per_class"]["test"]) == report["data"]["test"]


def test_a_missing_label_column_is_one_line_and_leaves_nothing(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text("text\tlabel\nfine\tpos\nbad\tneg\n", encoding="utf-8")
    out = tmp_path / "run"
    result = run(
        "--config", TINY, "--output-dir", str(out), "--set", "data.source=tsv",
        "--set", f"data.path={path}", "--set", "data.text_column=text",
        "--set", "data.label_column=sentiment",
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "no column named 'sentiment' for the label" in result.stderr
    assert not out.exists()


def _scores(report):
    """What must not depend on an interruption: every score, count and curve."""
    found = {
        role: {k: v for k, v in r.items() if k not in ("latency_ms", "bytes")}
        for role, r in report["results"].items()
    }
    parity = {k: v["label_agreement"] for k, v in report["export"]["parity"].items()}
    return found, report["comparisons"], report["curves"], parity, report["data"]


def test_a_run_killed_after_its_teacher_resumes_to_the_same_report(tiny_run, tmp_path):
    out = tmp_path / "run"
    args = [str(ROOT / "train.py"), "--config", TINY, "--output-dir", str(out)]
    process = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    for line in process.stdout:  # kill -9 as the baseline starts training
        if "stage baseline: start" in line:
            os.killpg(process.pid, signal.SIGKILL)
            break
    process.wait()
    assert (out / "teacher.keras").exists() and not (out / "report.json").exists()
    result = run(*args[1:], "--resume")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    resumed = json.loads((out / "report.json").read_text())
    whole = json.loads((tiny_run[0] / "report.json").read_text())
    assert _scores(resumed) == _scores(whole)


def test_a_teacher_from_a_local_keras_hub_preset(tmp_path):
    """teacher.preset: a keras-hub classifier saved with its own tokenizer starts the
    teacher (fine-tuned in the run); nothing is downloaded, no teacher vocabulary is made."""
    script = f"""
import keras
from tf_distill import hub_teacher
from tf_distill.data.synthetic_reviews import generate_reviews
keras.utils.set_random_seed(0)
texts, _ = generate_reviews(500, seed=3)
pre = hub_teacher.bert_preprocessor(hub_teacher.bert_vocabulary(texts, 300), 34)
model = hub_teacher.build_bert_teacher(pre, 3, 1, 2, 16, 32, 0.0)
model.save_to_preset({str(tmp_path / "preset")!r})
print("PARAMS", model.count_params())
"""
    made = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert made.returncode == 0, made.stderr[-2000:]
    params = int(made.stdout.split("PARAMS")[1].split()[0])
    out = tmp_path / "run"
    result = run(
        "--config", TINY, "--output-dir", str(out),
        "--set", f"teacher.preset={tmp_path / 'preset'}",
        "--set", "training.epochs=1", "--set", "export.enabled=false",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["results"]["teacher"]["parameters"] == params
    assert not (out / "teacher_tokenizer").exists()  # the preset's tokenizer was used


def test_export_command_exports_a_finished_classification_run_again(tiny_run):
    out, _ = tiny_run
    before = json.loads((out / "export" / "export.json").read_text())
    assert before["int8_mode"] == "full"
    result = subprocess.run(
        [sys.executable, "-m", "tf_distill", "export", "--run-dir", str(out),
         "--set", "export.int8_mode=dynamic"],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "tflite_int8:" in result.stdout and "identical to Keras" in result.stdout
    after = json.loads((out / "export" / "export.json").read_text())
    assert after["int8_mode"] == "dynamic" and after["label_names"] == LABEL_NAMES
    assert after["parity"]["tflite_fp32"]["label_agreement"] == 1.0


def test_a_transfer_file_is_labelled_by_the_teacher_for_the_student_only(tmp_path):
    texts, _ = generate_reviews(1500, seed=0)  # the run's own corpus (data.seed 0)
    extra, _ = generate_reviews(150, seed=41)
    path = tmp_path / "unlabelled.txt"
    # Texts of the labelled corpus and repeats are left out: 150 new texts remain.
    path.write_text("\n".join(extra + texts[:40] + extra[:10]) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    result = run(
        "--config", TINY, "--output-dir", str(out),
        "--set", f"distillation.transfer_path={path}",
        "--set", "training.epochs=1", "--set", "export.enabled=false",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["data"]["transfer"] == len(set(extra) - set(texts))
    log = result.stdout
    train = report["data"]["train"]
    assert f"{train:,} training pairs" in log  # the teacher and the baseline
    assert f"{train + report['data']['transfer']:,} training pairs" in log  # the student
    assert "transfer set of" in (out / "report.md").read_text()


def test_a_loaded_transformer_teacher_with_feature_terms(tmp_path):
    """teacher.path reuses an earlier run's tf_distill teacher (scored as it was there),
    and the student distils its hidden states and attention maps besides its logits."""
    common = ["--config", TINY, "--set", "teacher.architecture=transformer"]
    common += ["--set", "export.enabled=false", "--set", "distillation.baseline=false"]
    first = run(*common, "--output-dir", str(tmp_path / "first"))
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    second = run(
        *common,
        "--output-dir", str(tmp_path / "second"),
        "--set", f"teacher.path={tmp_path / 'first' / 'teacher.keras'}",
        "--set", "distillation.hidden_weight=0.1",
        "--set", "distillation.attention_weight=1",
    )  # fmt: skip
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "teacher loaded from" in second.stdout + second.stderr
    assert "hidden_loss" in second.stdout and "attention_loss" in second.stdout
    assert "teacher features: " in second.stdout + second.stderr  # cached, not run live
    assert (tmp_path / "second" / "state" / "student" / "extra.npz").exists()
    reports = [json.loads((tmp_path / n / "report.json").read_text()) for n in ("first", "second")]
    assert (
        reports[0]["results"]["teacher"]["macro_f1"] == reports[1]["results"]["teacher"]["macro_f1"]
    )
    assert not (tmp_path / "second" / "teacher.keras").exists()  # loaded, not copied
