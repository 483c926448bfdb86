"""Greedy decoding time per generated token, with and without the key/value cache.

Model: the student of issue 4 (vocabulary 8000, width 128, 2 encoder + 2 decoder layers,
4 heads, feed-forward 512), randomly initialized, with the end token's logit pushed down so
that every row runs to `max_length` (no early stop: every case decodes exactly as many
tokens as it says). Source: 32 real tokens per row.

Cases, at each output length and batch size:
- `cached`: `greedy_decode(..., use_cache=True)`: one token per step through the decoder,
  keys/values written into a fixed (B, 2L, T, N, H) buffer; a step costs the same
  wherever it is in the sequence.
- `uncached`: `greedy_decode(..., use_cache=False)`: every step re-runs the decoder on the
  whole prefix, so step t costs O(t) and a sequence O(T^2).
- `beam 4` (batch 1 only): `beam_search(beam_size=4)`, cached, for scale.

Method: each case is traced once (untimed warm-up), then timed round-robin: each repeat
runs every case once, so a burst of load from another process on a shared CPU hits all
cases alike. Figures are medians over repeats of the wall time of one public-API call
(encoder included) divided by the number of generated tokens (`max_length`).

Usage:
    python bench/decode_cache.py                      # prints a markdown table
    python bench/decode_cache.py --output dec.json    # also writes the figures
    python bench/decode_cache.py --quick              # tiny model, a smoke run
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

# Run as `python bench/decode_cache.py` from a checkout: import the package beside it.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tf_distill.decoding import beam_search, greedy_decode  # noqa: E402
from tf_distill.models import build_transformer  # noqa: E402

END_ID = 3
FULL = {
    "model": dict(
        vocabulary_size=8000,
        num_layers=2,
        num_heads=4,
        hidden_dim=128,
        intermediate_dim=512,
        dropout=0.1,
    ),
    "source_length": 32,
    "lengths": (16, 32, 64, 128),
    "batch_sizes": (1, 16),
    "repeats": 5,
}
QUICK = {
    "model": dict(
        vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32
    ),
    "source_length": 6,
    "lengths": (4, 8),
    "batch_sizes": (1, 2),
    "repeats": 1,
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per case")
    parser.add_argument("--quick", action="store_true", help="tiny model, one repeat")
    parser.add_argument("--output", default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"--repeats must be at least 1. Received: {args.repeats}.")
    return args


def build_model(settings):
    keras.utils.set_random_seed(0)
    model = build_transformer(max_sequence_length=max(settings["lengths"]), **settings["model"])
    bias = model.get_layer("output_projection").bias
    # Never the end token, so every case generates exactly max_length tokens.
    bias.assign(bias.numpy() - 1.0e4 * np.eye(bias.shape[0], dtype="float32")[END_ID])
    return model


def make_cases(model, settings):
    """(name, batch, length, call) for every case; each call decodes one batch."""
    rng = np.random.default_rng(0)
    vocabulary_size = settings["model"]["vocabulary_size"]
    cases = []
    for batch in settings["batch_sizes"]:
        source = rng.integers(4, vocabulary_size, size=(batch, settings["source_length"]))
        source = tf.constant(source, tf.int32)
        for length in settings["lengths"]:
            for use_cache in (True, False):
                name = "cached" if use_cache else "uncached"
                cases.append(
                    (
                        name,
                        batch,
                        length,
                        lambda s=source, n=length, c=use_cache: greedy_decode(
                            model, s, n, use_cache=c
                        ),
                    )
                )
            if batch == 1:
                cases.append(
                    ("beam 4", batch, length, lambda s=source, n=length: beam_search(model, s, n))
                )
    return cases


def run(args):
    settings = QUICK if args.quick else FULL
    repeats = args.repeats or settings["repeats"]
    model = build_model(settings)
    cases = make_cases(model, settings)
    for _, _, length, call in cases:  # trace (untimed)
        out = np.asarray(call())
        assert (out != 0).all() and out.shape[1] == length, "a row stopped early"
    times = {i: [] for i in range(len(cases))}
    for _ in range(repeats):
        for i, (_, _, _, call) in enumerate(cases):
            start = time.perf_counter()
            np.asarray(call())
            times[i].append(time.perf_counter() - start)
    results = []
    for i, (name, batch, length, _) in enumerate(cases):
        seconds = statistics.median(times[i])
        results.append(
            {
                "case": name,
                "batch_size": batch,
                "max_length": length,
                "ms_per_call": 1000.0 * seconds,
                "ms_per_token": 1000.0 * seconds / length,
            }
        )
    return {
        "settings": {**settings, "repeats": repeats},
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
        "results": results,
    }


def markdown(report):
    """One row per (batch, length): ms per generated token for each case, and the ratio."""
    by_key = {}
    for r in report["results"]:
        by_key.setdefault((r["batch_size"], r["max_length"]), {})[r["case"]] = r["ms_per_token"]
    lines = [
        "| batch | tokens | cached ms/token | uncached ms/token | uncached / cached "
        "| beam 4 ms/token |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for (batch, length), row in sorted(by_key.items()):
        beam = f"{row['beam 4']:.2f}" if "beam 4" in row else "-"
        lines.append(
            f"| {batch} | {length} | {row['cached']:.2f} | {row['uncached']:.2f} "
            f"| {row['uncached'] / row['cached']:.1f}x | {beam} |"
        )
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    report = run(args)
    print(markdown(report))
    if args.output:
        with open(args.output, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
