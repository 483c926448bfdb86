"""Tries the command line with bad inputs and writes what each gets into docs/BAD_INPUTS.md.

Every case runs `train.py` (or `tf-distill translate` / `export`) in a fresh process on a
small config and records the exit status, the number of stderr lines, whether a traceback
appeared, whether anything was left behind, and the first line of the message.

    python bench/bad_inputs.py [--output docs/BAD_INPUTS.md]
"""

import argparse
import datetime
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SMALL = {
    "data": {"source": "synthetic", "num_pairs": 300, "valid_size": 0.1, "test_size": 0.1},
    "tokenizer": {"vocabulary_size": 120},
    "teacher": {"num_layers": 1, "num_heads": 2, "hidden_dim": 16, "intermediate_dim": 32},
    "student": {"num_layers": 1, "num_heads": 2, "hidden_dim": 8, "intermediate_dim": 16},
    "training": {"epochs": 1, "max_sequence_length": 16, "max_truncated_share": 1.0},
    "export": {"enabled": False},
}


def run(args, cwd, stdin=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the checkout's package, installed or not
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, input=stdin, timeout=600, env=env
    )


def cases(work):
    """(what, argv, stdin, directory that must stay untouched or absent)."""
    config = work / "ok.json"
    config.write_text(json.dumps(SMALL))
    out = work / "out"

    def cfg(name, raw):
        path = work / name
        path.write_text(raw if isinstance(raw, str) else json.dumps(raw))
        return str(path)

    def with_(section, **values):
        raw = json.loads(json.dumps(SMALL))
        raw.setdefault(section, {}).update(values)
        return raw

    train = [str(ROOT / "train.py"), "--output-dir", str(out)]
    (work / "a_file").write_text("x")
    (work / "junk.keras").write_bytes(b"not a model")
    (work / "bad.tsv").write_bytes(b"one\ttwo\n\xff\xfe\tbroken\n")
    yield "config file missing", [*train, "--config", "nope.json"], None
    yield "config not JSON", [*train, "--config", cfg("a.json", "{")], None
    yield "config a JSON array", [*train, "--config", cfg("b.json", "[]")], None
    yield "unknown section", [*train, "--config", cfg("c.json", {"modle": {}})], None
    yield "unknown key", [*train, "--config", cfg("d.json", with_("training", epoch=3))], None
    yield "wrong type", [*train, "--config", cfg("e.json", with_("training", epochs="3"))], None
    yield (
        "num_heads not dividing hidden_dim",
        [*train, "--config", cfg("f.json", with_("teacher", num_heads=3))],
        None,
    )
    yield "negative seed", [*train, "--config", cfg("g.json", with_("training", seed=-1))], None
    yield "bad --set", [*train, "--config", str(config), "--set", "training.epochs"], None
    yield (
        "data file missing",
        [*train, "--config", cfg("h.json", with_("data", source="tsv", path="no.tsv"))],
        None,
    )
    yield (
        "data file not UTF-8",
        [
            *train,
            "--config",
            cfg("i.json", with_("data", source="tsv", path=str(work / "bad.tsv"))),
        ],
        None,
    )
    yield (
        "equal TSV columns",
        [*train, "--config", cfg("j.json", with_("data", source="tsv", path=str(work / "bad.tsv"),
                                                 source_column=1, target_column=1))],
        None,
    )  # fmt: skip
    yield (
        "output_dir is a file",
        [str(ROOT / "train.py"), "--config", str(config), "--output-dir", str(work / "a_file")],
        None,
    )
    yield "--resume with no run", [*train, "--config", str(config), "--resume"], None
    yield (
        "teacher.path not a Keras file",
        [*train, "--config", cfg("k.json", with_("teacher", path=str(work / "junk.keras")))],
        None,
    )
    yield (
        "max_sequence_length cuts most pairs",
        [*train, "--config", cfg("l.json", with_("training", max_sequence_length=4,
                                                 max_truncated_share=0.25))],
        None,
    )  # fmt: skip
    yield (
        "export --run-dir without a run",
        ["-m", "tf_distill", "export", "--run-dir", str(work)],
        None,
    )
    yield (
        "translate: no such model",
        ["-m", "tf_distill", "translate", "--model", str(work / "none"), "hello"],
        None,
    )
    yield "train: unknown argument", [str(ROOT / "train.py"), "--confg", "x"], None
    (work / "labels.tsv").write_text("text\tlabel\nfine\tpos\nbad\tneg\n")
    (work / "one_class.tsv").write_text("pos\tfine\npos\tgood\n")
    classify = {**SMALL, "task": "classification"}
    classify["data"] = {**SMALL["data"], "source": "tsv", "text_column": "text"}
    yield (
        "classification: no such label column",
        [*train, "--config", cfg("m.json", {**classify, "data": {
            **classify["data"], "path": str(work / "labels.tsv"), "label_column": "sentiment"}})],
        None,
    )  # fmt: skip
    yield (
        "classification: one class only",
        [*train, "--config", cfg("n.json", {**classify, "data": {
            **classify["data"], "path": str(work / "one_class.tsv"), "text_column": 1}})],
        None,
    )  # fmt: skip
    yield (
        "classification: teacher.preset not a folder",
        [*train, "--config", cfg("o.json", {**classify, "data": SMALL["data"],
                                            "teacher": {"preset": str(work / "a_file")}})],
        None,
    )  # fmt: skip
    yield (
        "init_from_teacher with a narrower student",
        [*train, "--config", cfg("p.json", with_("distillation", init_from_teacher=True))],
        None,
    )
    yield (
        "layer map longer than the student",
        [*train, "--config", cfg("q.json", with_(
            "distillation", attention_weight=1.0, encoder_layer_map=[1, 1, 1]))],
        None,
    )  # fmt: skip
    yield (
        "multi_worker without TF_CONFIG",
        [*train, "--config", cfg("r.json", with_("training", distribution="multi_worker"))],
        None,
    )
    yield (
        "data.streaming with sequence-level KD",
        [*train, "--config", cfg("s.json", with_("data", streaming=True)),
         "--set", "distillation.sequence_level=true"],
        None,
    )  # fmt: skip
    yield (
        "classify: no such model",
        ["-m", "tf_distill", "classify", "--model", str(work / "none"), "hello"],
        None,
    )
    yield (
        "translate: stdin not UTF-8",
        ["-m", "tf_distill", "translate", "--model", str(work / "none"), "--format", "tflite-int8"],
        b"hello\n\xff\xfe\n",
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(ROOT / "docs" / "BAD_INPUTS.md"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    rows = []
    for what, argv, stdin in cases(work):
        shutil.rmtree(work / "out", ignore_errors=True)
        result = run(argv, work, stdin)
        err = result.stderr.decode("utf-8", "replace").strip().splitlines()
        left = (work / "out").exists()
        rows.append(
            (what, result.returncode, len(err), any("Traceback" in e for e in err), left,
             (err[-1] if err else "")[:220].replace("|", "\\|"))
        )  # fmt: skip
        print(f"{what}: exit {result.returncode}, {len(err)} line(s)", flush=True)
    lines = [
        "# Bad inputs and what they get",
        "",
        f"Written by `python bench/bad_inputs.py` on {socket.gethostname()}, "
        f"{datetime.date.today()}: each case runs in a fresh process; `left behind` says "
        "whether the output directory exists afterwards (none existed before). The unit "
        "tests hold more cases (tests/test_config.py, tests/test_pipeline.py, "
        "tests/pipeline/test_stages.py, tests/test_run_dir.py), including a teacher of "
        "another vocabulary of the same size, a resume with a changed config, a second run "
        "into a locked directory, and kill -9 at 20+ moments followed by --resume.",
        "",
        "| input | exit | stderr lines | traceback | left behind | message |",
        "|---|---:|---:|---|---|---|",
    ]
    for what, code, count, trace, left, message in rows:
        lines.append(
            f"| {what} | {code} | {count} | {'yes' if trace else 'no'} | "
            f"{'yes' if left else 'no'} | {message} |"
        )
    Path(args.output).write_text("\n".join(lines) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {args.output}")
    return (
        0 if all(code == 2 and not trace and not left for _, code, _, trace, left, _ in rows) else 1
    )


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main())
