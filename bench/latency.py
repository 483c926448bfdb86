"""Per-sentence latency and file size of the teacher and of every exported student format.

Input: a run directory written by `python train.py --config configs/tiny.json` (or any
config with export enabled): `teacher.keras` and `export/` (student.keras, saved_model/,
student_{fp32,fp16,int8}.tflite, tokenizer/, export.json).

Cases, each translating one sentence per call (batch 1), the way an app does:
- `teacher keras`: `greedy_decode(teacher, ...)` with the key/value cache (a traced loop).
- `student keras`: the same on `export/student.keras`.
- `saved_model`: the `translate` signature of `export/saved_model`.
- `tflite fp32 / fp16 / int8`: the `translate` signature through the LiteRT interpreter,
  with 1 and 2 interpreter threads; where the export has beam files
  (`student_<precision>_beam.tflite`), their `translate_beam` signature with 1 thread.

Sentences: English sides of `tf_distill.data.generate_corpus` (a seed that is not the
training seed), tokenized with the run's source tokenizer, truncated to the model's length.
Every case is warmed up once (traces, allocations), then timed round-robin: each repeat
runs every case on every sentence, so a burst of load from another process on a shared CPU
hits all cases alike. Figures are medians over sentences x repeats of the wall time of one
call. Time per generated token against output length: the student is converted again to int8
TFLite (same converter settings as the export) with `translate` producing 6, 12 and 24 tokens;
each sentence's latency (1 thread) is divided by the tokens it produced (up to and including
its end token). With the cache each step costs the same, so the figure stays flat (the
encoder's one-off cost is spread over more tokens as the output grows). Cold start: a new
process loads the int8 file and the tokenizers and translates one sentence, once through
`tf_distill.runtime` (no TensorFlow) and once through TensorFlow's import (time and peak RSS).

Usage:
    python bench/latency.py                          # saved_models/tiny, prints a table
    python bench/latency.py --run-dir saved_models/small --output latency.json
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

# Run as `python bench/latency.py` from a checkout: import the package beside it.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tf_distill  # noqa: E402
from tf_distill.data import Tokenizer, generate_corpus  # noqa: E402
from tf_distill.decoding import greedy_decode  # noqa: E402
from tf_distill.export import _signatures_module, convert_tflite, tflite_runner  # noqa: E402
from tf_distill.tflite import MIN_QUANTIZED_ELEMENTS  # noqa: E402

TFLITE = {
    "fp32": "student_fp32.tflite",
    "fp16": "student_fp16.tflite",
    "int8": "student_int8.tflite",
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run-dir", default="saved_models/tiny", help="a pipeline run directory")
    parser.add_argument("--sentences", type=int, default=30, help="test sentences")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the sentences")
    parser.add_argument("--seed", type=int, default=12345, help="generate_corpus seed")
    parser.add_argument("--output", default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    for name in ("sentences", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1. Received: {getattr(args, name)}.")
    export = Path(args.run_dir) / "export"
    if (
        not (export / "export.json").is_file()
        or not (Path(args.run_dir) / "teacher.keras").is_file()
    ):
        parser.error(
            f"{args.run_dir!r} has no teacher.keras or export/export.json. "
            "Run `python train.py --config configs/tiny.json` first."
        )
    return args


def size_bytes(path):
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def quantizable_share(model, min_elements=MIN_QUANTIZED_ELEMENTS):
    """Weights in tensors the dynamic-range int8 converter quantizes (>= 1024 elements)."""
    sizes = [int(np.prod(w.shape)) for w in model.weights]
    big = sum(s for s in sizes if s >= min_elements)
    return {
        "params": sum(sizes),
        "params_in_tensors_ge_1024": big,
        "tensors_ge_1024": sum(s >= min_elements for s in sizes),
        "tensors": len(sizes),
    }


def make_cases(run_dir, metadata):
    export = run_dir / "export"
    special = metadata["special_token_ids"]
    length = metadata["max_decode_length"]
    teacher = tf_distill.load_model(run_dir / "teacher.keras")
    student = tf_distill.load_model(export / "student.keras")

    def keras_case(model):
        return lambda ids: np.asarray(greedy_decode(model, ids, length, **special))

    signature = tf.saved_model.load(str(export / "saved_model")).signatures["translate"]
    cases = {
        "teacher keras": (keras_case(teacher), run_dir / "teacher.keras"),
        "student keras": (keras_case(student), export / "student.keras"),
        "student saved_model": (
            lambda ids: signature(encoder_token_ids=tf.constant(ids))["output_token_ids"].numpy(),
            export / "saved_model",
        ),
    }
    for name, filename in TFLITE.items():
        for threads in (1, 2):
            cases[f"student tflite {name} ({threads} thr)"] = (
                tflite_runner(export / filename, num_threads=threads),
                export / filename,
            )
    beam_size = metadata.get("beam_size")
    for name, filename in TFLITE.items():  # an export with beam_size has beam files too
        path = export / filename.replace(".tflite", "_beam.tflite")
        if path.is_file():
            cases[f"student tflite {name} beam {beam_size} (1 thr)"] = (
                tflite_runner(path, num_threads=1, signature="translate_beam"),
                path,
            )
    return cases, teacher, student


def int8_runners(student, special, lengths, num_threads=1):
    """int8 TFLite `translate` runners decoding `lengths` tokens, converted as the export does."""
    import tempfile

    runners = {}
    for length in lengths:
        module = _signatures_module(student, length, special)
        with tempfile.TemporaryDirectory() as directory:
            tf.saved_model.save(module, directory, signatures={"translate": module.translate})
            runners[length] = tflite_runner(
                convert_tflite(directory, "tflite_int8"), num_threads=num_threads
            )
    return runners


def output_length(ids, end_id, pad_id):
    """Generated tokens up to and including the end token (all of them when none)."""
    ids = list(np.asarray(ids).reshape(-1))
    return ids.index(end_id) + 1 if end_id in ids else sum(i != pad_id for i in ids) or len(ids)


# Cold start of a fresh process: load the int8 file and the tokenizers, translate one
# sentence. `runtime` is tf_distill.runtime (numpy, LiteRT, the tokenizer); `tensorflow`
# is the same work through tf_distill.tflite, which imports TensorFlow as the reference
# client did before the runtime existed. Timed inside the process from its first line;
# peak RSS from /proc (Linux).
_COLD_START = {
    "runtime": """
from tf_distill.runtime import Translator
translator = Translator(EXPORT, "int8", num_threads=1)
translator.translate([SENTENCE])
""",
    "tensorflow": """
import numpy as np
import tensorflow
from tf_distill.data import Tokenizer
from tf_distill.tflite import tflite_runner
source = Tokenizer.load(EXPORT + "/tokenizer", "source")
target = Tokenizer.load(EXPORT + "/tokenizer", "target")
run = tflite_runner(EXPORT + "/student_int8.tflite", num_threads=1)
target.detokenize(run(np.array([source.tokenize(SENTENCE)], np.int32)))
""",
}
_COLD_START_FRAME = """
import time
start = time.perf_counter()
import json
EXPORT, SENTENCE = {export!r}, {sentence!r}
{body}
ms = (time.perf_counter() - start) * 1000
# VmHWM: this process image's peak RSS (getrusage's maxrss would carry the parent's peak
# over the fork).
status = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
print(json.dumps({{"ms": ms, "peak_rss_mb": int(status) / 1024}}))
"""


def cold_start(run_dir, sentence, repeats):
    """Median cold-start time and peak RSS of each way of running the int8 file."""
    import subprocess

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ROOT}
    found = {name: [] for name in _COLD_START}
    for _ in range(repeats):  # round-robin, so that load on the machine hits both alike
        for name, body in _COLD_START.items():
            script = _COLD_START_FRAME.format(
                export=str(run_dir / "export"), sentence=sentence, body=body
            )
            result = subprocess.run(
                [sys.executable, "-c", script], capture_output=True, text=True, env=env
            )
            if result.returncode != 0:
                raise RuntimeError(f"cold start ({name}) failed: {result.stderr[-2000:]}")
            found[name].append(json.loads(result.stdout.strip().splitlines()[-1]))
    return {
        name: {
            "ms": round(statistics.median(r["ms"] for r in rows), 1),
            "peak_rss_mb": round(statistics.median(r["peak_rss_mb"] for r in rows), 1),
        }
        for name, rows in found.items()
    }


def run(args):
    run_dir = Path(args.run_dir)
    metadata = json.loads((run_dir / "export" / "export.json").read_text())
    special = metadata["special_token_ids"]
    tokenizer = Tokenizer.load(run_dir / "export" / "tokenizer", "source")
    max_source = int(metadata["max_sequence_length"]) - 1
    pairs = generate_corpus(args.sentences, seed=args.seed)
    sources = [np.array([tokenizer.tokenize(source)[:max_source]], np.int32) for source, _ in pairs]
    cases, teacher, student = make_cases(run_dir, metadata)

    for fn, _ in cases.values():  # warm-up: tracing and interpreter allocation untimed
        for ids in sources[:2]:
            fn(ids)
    times = {name: [] for name in cases}
    for _ in range(args.repeats):
        for ids in sources:
            for name, (fn, _) in cases.items():
                start = time.perf_counter()
                fn(ids)
                times[name].append((time.perf_counter() - start) * 1000)

    results = []
    for name, (_, path) in cases.items():
        results.append(
            {
                "case": name,
                "ms_per_sentence": round(statistics.median(times[name]), 3),
                "min_ms": round(min(times[name]), 3),
                "bytes": size_bytes(path),
                "path": str(Path(path).relative_to(run_dir)),
            }
        )
    per_token = []
    runners = int8_runners(student, special, (6, 12, 24))
    for fn in runners.values():
        fn(sources[0])
    step_times = {length: [] for length in runners}
    produced = {length: [] for length in runners}
    for _ in range(args.repeats):
        for ids in sources:
            for length, fn in runners.items():
                start = time.perf_counter()
                out = fn(ids)
                ms = (time.perf_counter() - start) * 1000
                n = output_length(out, special["end_id"], special["pad_id"])
                step_times[length].append(ms / n)
                produced[length].append(n)
    for length in runners:
        per_token.append(
            {
                "max_length": length,
                "output_tokens_median": statistics.median(produced[length]),
                "ms_per_sentence": round(
                    statistics.median(
                        t * n for t, n in zip(step_times[length], produced[length], strict=True)
                    ),
                    3,
                ),
                "ms_per_token": round(statistics.median(step_times[length]), 4),
            }
        )
    by_case = {r["case"]: r for r in results}
    int8 = by_case["student tflite int8 (1 thr)"]
    ratios = {
        "int8_speedup_vs_teacher_keras": round(
            by_case["teacher keras"]["ms_per_sentence"] / int8["ms_per_sentence"], 2
        ),
        "int8_speedup_vs_student_keras": round(
            by_case["student keras"]["ms_per_sentence"] / int8["ms_per_sentence"], 2
        ),
        "int8_bytes_vs_fp32": round(
            int8["bytes"] / by_case["student tflite fp32 (1 thr)"]["bytes"], 3
        ),
        "fp16_bytes_vs_fp32": round(
            by_case["student tflite fp16 (1 thr)"]["bytes"]
            / by_case["student tflite fp32 (1 thr)"]["bytes"],
            3,
        ),
    }
    starts = cold_start(run_dir, pairs[0][0], max(1, args.repeats))
    ratios["cold_start_tensorflow_vs_runtime"] = round(
        starts["tensorflow"]["ms"] / starts["runtime"]["ms"], 2
    )
    return {
        "cold_start": starts,
        "run_dir": str(run_dir),
        "sentences": len(sources),
        "repeats": args.repeats,
        "source_tokens_median": statistics.median(s.shape[1] for s in sources),
        "max_decode_length": metadata["max_decode_length"],
        "results": results,
        "int8_ms_per_token_by_output_length": per_token,
        "ratios": ratios,
        "student_weights": quantizable_share(student),
        "teacher_params": int(sum(np.prod(w.shape) for w in teacher.weights)),
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
    }


def markdown(report):
    lines = [
        "| case | ms / sentence (median) | min ms | size (bytes) |",
        "|---|---:|---:|---:|",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['case']} | {r['ms_per_sentence']:.2f} | {r['min_ms']:.2f} | {r['bytes']:,} |"
        )
    lines += [
        "",
        "| int8 `translate` length | tokens produced (median) | ms / sentence | ms / token |",
        "|---:|---:|---:|---:|",
    ]
    for row in report["int8_ms_per_token_by_output_length"]:
        lines.append(
            f"| {row['max_length']} | {row['output_tokens_median']:g} | "
            f"{row['ms_per_sentence']:.2f} | {row['ms_per_token']:.3f} |"
        )
    ratios = report["ratios"]
    weights = report["student_weights"]
    lines += [
        "",
        f"int8 vs teacher Keras: {ratios['int8_speedup_vs_teacher_keras']:.1f}x faster; "
        f"vs student Keras: {ratios['int8_speedup_vs_student_keras']:.1f}x; "
        f"int8 size / fp32 size: {ratios['int8_bytes_vs_fp32']:.0%}; "
        f"fp16 / fp32: {ratios['fp16_bytes_vs_fp32']:.0%}.",
        f"Cold start (new process: imports, load int8 file and tokenizers, one sentence; "
        f"median of {report['repeats']}): tf_distill.runtime "
        f"{report['cold_start']['runtime']['ms']:.0f} ms, peak RSS "
        f"{report['cold_start']['runtime']['peak_rss_mb']:.0f} MB; through TensorFlow "
        f"{report['cold_start']['tensorflow']['ms']:.0f} ms, "
        f"{report['cold_start']['tensorflow']['peak_rss_mb']:.0f} MB "
        f"({ratios['cold_start_tensorflow_vs_runtime']:.1f}x the runtime's time).",
        f"Student weights in tensors of >= 1024 elements (the ones dynamic-range int8 "
        f"quantizes): {weights['params_in_tensors_ge_1024']:,} of {weights['params']:,} "
        f"({weights['tensors_ge_1024']} of {weights['tensors']} tensors).",
    ]
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    report = run(args)
    print(markdown(report))
    if args.output:
        Path(args.output).write_text(
            json.dumps(report, indent=2, default=lambda o: o.item()) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
