"""Paired A/B of our distillation step against the keras.distillation peer, one process.

`bench/train_throughput.py` times every case and compares medians; on a shared 2-core CPU
its run-to-run spread (about +-5%) is as large as the difference between the two
distillation steps. This script times only those two, alternating which goes first in
each repeat (ours-peer, peer-ours, ...), and reports the median of the per-repeat ratios,
so slow drifts in machine load cancel out. Models, data and dims come from
`train_throughput.py` (issue 4's dims).

Usage:
    python bench/distill_ab.py                    # jit_compile=True, 20 repeats of 3 steps
    python bench/distill_ab.py --jit off --repeats 10
    python bench/distill_ab.py --quick            # tiny dims, a smoke run
"""

import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import train_throughput as tt  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jit", choices=("on", "off"), default="on")
    parser.add_argument("--repeats", type=int, default=20, help="paired repeats")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per case per repeat")
    parser.add_argument("--quick", action="store_true", help="tiny dims, 2 repeats of 1 step")
    parser.add_argument("--output", default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.steps = 2, 1
    if args.repeats < 1 or args.steps < 1:
        parser.error("--repeats and --steps must be at least 1.")
    dims = tt.QUICK_DIMS if args.quick else tt.FULL_DIMS
    jit = args.jit == "on" and not args.quick
    dataset, _ = tt.make_dataset(dims)
    models = {}
    for name, case in (("ours", "distillation"), ("peer", "peer distillation")):
        model = models[name] = tt.build_case(case, jit, dims)
        model.optimizer.build(model.trainable_variables)
        tt.run_steps(model, dataset, 2)  # trace, compile, settle
        tt.run_steps(model, dataset, 2)
    times = {"ours": [], "peer": []}
    ratios = []
    for repeat in range(args.repeats):
        for name in ("ours", "peer") if repeat % 2 == 0 else ("peer", "ours"):
            times[name].append(1000 * tt.run_steps(models[name], dataset, args.steps))
        ratios.append(times["ours"][-1] / times["peer"][-1])
    report = {
        "command": " ".join(["python", *sys.argv]),
        "jit_compile": jit,
        "repeats": args.repeats,
        "steps": args.steps,
        "ms_per_step_median": {k: statistics.median(v) for k, v in times.items()},
        "ms_per_step_all": times,
        "paired_ratio_median": statistics.median(ratios),
        "paired_ratio_mean": statistics.mean(ratios),
        "ours_faster_in": sum(r < 1 for r in ratios),
    }
    for name, values in times.items():
        print(f"{name}: median {statistics.median(values):.1f} ms/step over {len(values)} repeats")
    print(
        f"ours/peer per repeat: median {report['paired_ratio_median']:.3f}, mean "
        f"{report['paired_ratio_mean']:.3f}; ours faster in {report['ours_faster_in']}/"
        f"{args.repeats}"
    )
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
