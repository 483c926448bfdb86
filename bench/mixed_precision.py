"""Training speed in float32 against mixed precision (`training.mixed_precision`) on this
machine, at a config's model shapes.

Cases, each a `Distiller` step (`train_on_batch`) on the same pre-built batches:
- `teacher`: the config's teacher architecture trained on labels alone;
- `student`: the student architecture on labels alone (the baseline's step);
- `distill`: the student distilled from a float32 teacher (the teacher's forward pass
  stays float32, as in a run whose teacher was trained earlier and saved in float32);
each built under every policy asked for. Batches: random token ids of the config's
vocabulary size, `training.batch_size` rows, real lengths uniform in [L/2, L] with
L = `--length`. Every case is warmed up (traced) first; then the cases take turns, each
repeat running every case for `--steps` steps, so a burst of load from another process
hits all alike. Figures: median ms per step over repeats, and each policy's speed-up
against float32 from the medians of the same run.

Usage:
    python bench/mixed_precision.py --config configs/small.json
    python bench/mixed_precision.py --config configs/small.json --output mp.json
"""

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
import types

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tf_distill import Distiller  # noqa: E402
from tf_distill import config as config_lib  # noqa: E402
from tf_distill.pipeline import model_stages  # noqa: E402


def batches(config, count, length, seed=0):
    rng = np.random.default_rng(seed)
    vocab, size = config.tokenizer.vocabulary_size, config.training.batch_size
    found = []
    for _ in range(count):
        lengths = rng.integers(length // 2, length + 1, size)
        ids = rng.integers(4, vocab, (size, length)).astype("int32")
        ids[np.arange(length)[None, :] >= lengths[:, None]] = 0
        x = {"encoder_token_ids": ids, "decoder_token_ids": np.roll(ids, 1, axis=1)}
        found.append((x, ids))
    return found


def build(config, role, policy):
    """The pipeline's own model of `role` (`model_stages.build_model`) under `policy`."""
    vocabulary = types.SimpleNamespace(vocabulary_size=config.tokenizer.vocabulary_size)
    tokenizers = types.SimpleNamespace(source=vocabulary, target=vocabulary)
    training = dataclasses.replace(config.training, mixed_precision=policy)
    keras.utils.set_random_seed(0)
    return model_stages.build_model(
        dataclasses.replace(config, training=training), role, tokenizers
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/small.json")
    parser.add_argument("--policies", default="float32,mixed_bfloat16")
    parser.add_argument("--length", type=int, default=28, help="padded batch length")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    config = config_lib.load(args.config)
    policies = args.policies.split(",")
    data = batches(config, args.steps, args.length)
    frozen_teacher = build(config, "teacher", "float32")
    cases = {}
    for policy in policies:
        for case in ("teacher", "student", "distill"):
            model = build(config, "teacher" if case == "teacher" else "student", policy)
            teacher = frozen_teacher if case == "distill" else None
            trainer = Distiller(teacher, model, alpha=0.5 if teacher else 1.0)
            trainer.compile(optimizer=keras.optimizers.AdamW(1e-4))
            for x, y in data[:2]:
                trainer.train_on_batch(x, y)
            cases[(case, policy)] = trainer
    times = {key: [] for key in cases}
    for repeat in range(args.repeats):
        order = list(cases) if repeat % 2 == 0 else list(cases)[::-1]
        for key in order:
            start = time.perf_counter()
            for x, y in data:
                cases[key].train_on_batch(x, y)
            times[key].append(1000 * (time.perf_counter() - start) / len(data))
    rows = []
    for (case, policy), values in times.items():
        median = statistics.median(values)
        base = statistics.median(times[(case, "float32")]) if (case, "float32") in times else None
        rows.append(
            {
                "case": case,
                "policy": policy,
                "ms_per_step": round(median, 1),
                "speedup_vs_float32": round(base / median, 2) if base else None,
            }
        )
    print(f"{'case':<10} {'policy':<16} {'ms/step':>9} {'vs float32':>11}")
    for row in rows:
        speedup = "-" if row["speedup_vs_float32"] is None else f"{row['speedup_vs_float32']}x"
        print(f"{row['case']:<10} {row['policy']:<16} {row['ms_per_step']:>9} {speedup:>11}")
    result = {
        "command": " ".join(["python", *sys.argv]),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "batch": [config.training.batch_size, args.length],
        "steps": args.steps,
        "repeats": args.repeats,
        "rows": rows,
    }
    if args.output:
        with open(args.output, "w") as handle:
            json.dump(result, handle, indent=1)


if __name__ == "__main__":
    main()
