"""The on-device table: every exported format of the student, and the teacher converted the
same way, decoding one sentence at a time on one thread, greedy and beam search.

For each TFLite file a fresh process that imports no TensorFlow (numpy and ai-edge-litert,
as on a phone) loads the file, times the load (interpreter, tensor allocation, signature
runner), translates the sentences one per call, and reports per call the wall time and the
tokens produced, and at the end its peak RSS (VmHWM). The processes run round-robin over
the files, `--repeats` times, so that load from elsewhere on the machine hits every file
alike; figures are medians. The teacher is converted to TFLite fp32 here (greedy and beam,
with the export's own code and settings), so "student vs teacher" compares like with like;
the Keras figures (greedy and beam, the same sentences, in this process) stand beside.

Sentences: the English sides of `generate_corpus(--sentences, seed=--seed)` (not the
training seed), tokenized with the run's source tokenizer.

    python bench/device_table.py --run-dir saved_models/small --output device.json
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# What each measuring process runs: no TensorFlow, only the interpreter and numpy.
WORKER = r"""
import json, sys, time
import numpy as np
start = time.perf_counter()
from ai_edge_litert.interpreter import Interpreter
path, signature, ids_path, end_id = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
interpreter = Interpreter(model_path=path, num_threads=1)
runner = interpreter.get_signature_runner(signature)
load_ms = (time.perf_counter() - start) * 1000
rows = np.load(ids_path, allow_pickle=True)
calls = []
runner(encoder_token_ids=rows[0][None])  # warm-up
for row in rows:
    t0 = time.perf_counter()
    out = np.asarray(next(iter(runner(encoder_token_ids=row[None]).values())))[0]
    ms = (time.perf_counter() - t0) * 1000
    ids = list(out)
    tokens = ids.index(end_id) + 1 if end_id in ids else len(ids)
    calls.append([ms, tokens])
hwm = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
print(json.dumps({"load_ms": load_ms, "calls": calls, "peak_rss_mb": int(hwm) / 1024}))
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default="saved_models/small")
    parser.add_argument("--sentences", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--output", default=None, help="write the figures as JSON here")
    parser.add_argument(
        "--standard-loop",
        action="store_true",
        help="also measure teacher fp32 and student fp32 / int8 converted with the standard "
        "decode loop (the Keras layers' step) instead of the lean one, in the same rounds",
    )
    return parser.parse_args(argv)


def run_sentences(run_dir, count, seed):
    """A run's export metadata and the English sides of `generate_corpus(count, seed)`
    tokenized with its source tokenizer and cut to what the encoder takes: (metadata,
    list of int32 id arrays)."""
    import numpy as np

    from tf_distill.data import Tokenizer, generate_corpus

    export = Path(run_dir) / "export"
    metadata = json.loads((export / "export.json").read_text())
    tokenizer = Tokenizer.load(export / "tokenizer", "source")
    limit = int(metadata["max_sequence_length"]) - 1
    sources = [s for s, _ in generate_corpus(count, seed=seed)]
    return metadata, [np.array(ids[:limit], np.int32) for ids in tokenizer.tokenize(sources)]


def teacher_files(run_dir, metadata, directory, lean=True):
    """The teacher as TFLite fp32 files, greedy and beam, converted as the export does."""
    import tf_distill

    teacher = tf_distill.load_model(run_dir / "teacher.keras")
    files = converted_files(teacher, "teacher", ("fp32",), metadata, directory, lean)
    return teacher, files


def converted_files(model, name, precisions, metadata, directory, lean=True):
    """`model` converted with the export's code and settings: {(name, precision,
    signature): path}. `lean=False`: with the standard decode loop (the Keras layers'
    step) instead of `tf_distill.decoding.lean`, for the before / after comparison."""
    import tensorflow as tf

    from tf_distill.export import _signatures_module, convert_tflite

    beam = metadata.get("beam_size")
    module = _signatures_module(
        model,
        metadata["max_decode_length"],
        metadata["special_token_ids"],
        beam,
        metadata.get("length_penalty", 0.6),
        lean=lean,
    )
    signatures = {"translate": module.translate}
    if beam:
        signatures["translate_beam"] = module.translate_beam
    tag = f"{name}{'' if lean else '_standard'}"
    saved = directory / f"{tag}_saved_model"
    tf.saved_model.save(module, str(saved), signatures=signatures)
    files = {}
    for precision in precisions:
        for signature in signatures:
            suffix = "_beam" if signature != "translate" else ""
            path = directory / f"{tag}_{precision}{suffix}.tflite"
            path.write_bytes(convert_tflite(str(saved), f"tflite_{precision}", signature))
            files[(name if lean else f"{name} (standard loop)", precision, signature)] = path
    return files


def keras_figures(models, rows, metadata):
    """Median ms and tokens/s of Keras greedy and beam decoding, one sentence per call."""
    from tf_distill.decoding import beam_search, greedy_decode

    special = metadata["special_token_ids"]
    length = metadata["max_decode_length"]
    beam = metadata.get("beam_size") or 4
    found = {}
    for name, model in models.items():
        for mode, decode in (
            ("greedy", lambda m, ids: greedy_decode(m, ids, length, **special)),
            ("beam", lambda m, ids: beam_search(m, ids, length, beam, 0.6, **special)),
        ):
            decode(model, rows[0][None])  # trace
            calls = []
            for row in rows:
                start = time.perf_counter()
                out = list(map(int, decode(model, row[None]).numpy()[0]))
                ms = (time.perf_counter() - start) * 1000
                end = special["end_id"]
                calls.append((ms, out.index(end) + 1 if end in out else len(out)))
            found[(name, "keras", mode)] = summarize(calls)
    return found


def summarize(calls):
    times = [ms for ms, _ in calls]
    tokens = sum(n for _, n in calls)
    return {
        "ms_per_sentence": round(statistics.median(times), 2),
        "tokens_per_s": round(tokens / (sum(times) / 1000), 1),
    }


def run(args):
    import numpy as np

    run_dir = Path(args.run_dir)
    export = run_dir / "export"
    metadata, token_rows = run_sentences(run_dir, args.sentences, args.seed)
    rows = np.empty(len(token_rows), dtype=object)
    rows[:] = token_rows
    work = Path(tempfile.mkdtemp())
    ids_path = work / "ids.npy"
    np.save(ids_path, rows, allow_pickle=True)
    teacher, files = teacher_files(run_dir, metadata, work)
    for precision in ("fp32", "fp16", "int8"):
        for signature, suffix in (("translate", ""), ("translate_beam", "_beam")):
            path = export / f"student_{precision}{suffix}.tflite"
            if path.is_file():
                files[("student", precision, signature)] = path
    import tf_distill

    student = tf_distill.load_model(export / "student.keras")
    if args.standard_loop:
        files.update(converted_files(teacher, "teacher", ("fp32",), metadata, work, False))
        files.update(converted_files(student, "student", ("fp32", "int8"), metadata, work, False))
    end_id = str(metadata["special_token_ids"]["end_id"])
    measured = {key: [] for key in files}
    for _ in range(args.repeats):
        for key, path in files.items():
            result = subprocess.run(
                [sys.executable, "-c", WORKER, str(path), key[2], str(ids_path), end_id],
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONPATH": ""},
            )
            if result.returncode != 0:
                raise RuntimeError(f"{path.name}: {result.stderr[-2000:]}")
            measured[key].append(json.loads(result.stdout.strip().splitlines()[-1]))
    table = []
    for key, runs in measured.items():
        calls = [call for r in runs for call in r["calls"]]
        table.append(
            {
                "model": key[0],
                "format": f"tflite {key[1]}",
                "decoding": "greedy" if key[2] == "translate" else "beam",
                **summarize(calls),
                "load_ms": round(statistics.median(r["load_ms"] for r in runs), 1),
                "bytes": files[key].stat().st_size,
                "peak_rss_mb": round(statistics.median(r["peak_rss_mb"] for r in runs), 1),
            }
        )
    keras_rows = keras_figures({"teacher": teacher, "student": student}, rows, metadata)
    for (model, _, mode), figures in keras_rows.items():
        table.append({"model": model, "format": "keras", "decoding": mode, **figures})
    by = {(r["model"], r["format"], r["decoding"]): r for r in table}
    ratios = {}
    for loop in ("", " (standard loop)"):
        for mode in ("greedy", "beam"):
            teacher_ms = by.get((f"teacher{loop}", "tflite fp32", mode), {}).get("ms_per_sentence")
            for precision in ("fp32", "fp16", "int8"):
                row = by.get((f"student{loop}", f"tflite {precision}", mode))
                if row and teacher_ms:
                    key = f"{precision}_{mode}_speedup_vs_teacher_fp32{loop.replace(' ', '_')}"
                    ratios[key] = round(teacher_ms / row["ms_per_sentence"], 2)
    import tensorflow as tf

    return {
        "run_dir": str(run_dir),
        "sentences": len(token_rows),
        "repeats": args.repeats,
        "max_decode_length": metadata["max_decode_length"],
        "beam_size": metadata.get("beam_size"),
        "table": table,
        "ratios": ratios,
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "tensorflow": tf.__version__,
        },
    }


def markdown(report):
    lines = [
        "| model | format | decoding | ms / sentence | tokens / s | load ms | bytes "
        "| peak RSS MB |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in report["table"]:
        load = f"{r['load_ms']:.1f}" if "load_ms" in r else "-"
        size = f"{r['bytes']:,}" if "bytes" in r else "-"
        rss = f"{r['peak_rss_mb']:.0f}" if "peak_rss_mb" in r else "-"
        lines.append(
            f"| {r['model']} | {r['format']} | {r['decoding']} | {r['ms_per_sentence']:.2f} | "
            f"{r['tokens_per_s']:,.0f} | {load} | {size} | {rss} |"
        )
    lines.append("")
    lines += [f"- {key}: {value}x" for key, value in report["ratios"].items()]
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    report = run(args)
    print(markdown(report))
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
