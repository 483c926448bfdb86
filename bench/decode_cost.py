"""Where the on-device decode time goes: per generated token and per source token, for the
teacher and each student file, with and without LiteRT's default XNNPACK delegate.

Each TFLite file translates the same sentences one at a time on one thread; each call's
best time of `--repeats` is regressed on the number of generated tokens and of source
tokens (least squares, with an intercept), which splits a sentence's time into a fixed
part, an encoder part (per source token) and a decoder part (per generated token). The
teacher is converted to TFLite fp32 with the export's own code (as in device_table.py).

    python bench/decode_cost.py --run-dir saved_models/small
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default="saved_models/small")
    parser.add_argument("--sentences", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=12345)
    return parser.parse_args(argv)


def measure(path, rows, end_id, repeats, delegates):
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kwargs = {}
    if not delegates:
        kwargs["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    runner = Interpreter(model_path=str(path), num_threads=1, **kwargs).get_signature_runner(
        "translate"
    )
    runner(encoder_token_ids=rows[0][None])  # warm-up
    ms, generated, source = [], [], []
    for row in rows:
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            out = np.asarray(next(iter(runner(encoder_token_ids=row[None]).values())))[0]
            best = min(best, time.perf_counter() - start)
        ids = list(out)
        ms.append(best * 1000)
        generated.append(ids.index(end_id) + 1 if end_id in ids else len(ids))
        source.append(len(row))
    design = np.stack([np.ones(len(ms)), generated, source], axis=1)
    fixed, per_token, per_source = np.linalg.lstsq(design, np.array(ms), rcond=None)[0]
    return {
        "median_ms": round(float(np.median(ms)), 3),
        "per_generated_token_ms": round(float(per_token), 4),
        "per_source_token_ms": round(float(per_source), 4),
        "fixed_ms": round(float(fixed), 3),
        "mean_generated_tokens": round(float(np.mean(generated)), 1),
    }


def main(argv=None):
    from device_table import run_sentences, teacher_files

    args = parse_args(argv)
    run_dir = Path(args.run_dir)
    export = run_dir / "export"
    metadata, rows = run_sentences(run_dir, args.sentences, args.seed)
    _, teacher = teacher_files(run_dir, {**metadata, "beam_size": None}, Path(tempfile.mkdtemp()))
    files = {"teacher fp32": teacher[("teacher", "fp32", "translate")]}
    for precision in ("fp32", "int8"):
        files[f"student {precision}"] = export / f"student_{precision}.tflite"
    end_id = metadata["special_token_ids"]["end_id"]
    print(
        "| file | XNNPACK | ms / sentence | ms / generated token | ms / source token | fixed ms |"
    )
    print("|---|---|---:|---:|---:|---:|")
    found = {}
    for name, path in files.items():
        for delegates in (True, False):
            r = measure(path, rows, end_id, args.repeats, delegates)
            found[f"{name}, {'xnnpack' if delegates else 'builtin'}"] = r
            print(
                f"| {name} | {'yes' if delegates else 'no'} | {r['median_ms']:.3f} | "
                f"{r['per_generated_token_ms']:.4f} | {r['per_source_token_ms']:.4f} | "
                f"{r['fixed_ms']:.3f} |"
            )
    print(json.dumps(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
