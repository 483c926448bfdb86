"""The data stage against corpus size: time and peak memory of streaming (data.streaming)
and of the in-memory path, on generated corpora of 100k, 1M and 5M pairs.

For each size a TSV file of generated pairs (the built-in corpus's sentence maker, pairs
as drawn, repeats kept as in a real corpus) is written once into `--work`. Then, each in
a fresh process so that its peak resident memory (VmHWM) is its own, the pipeline's data
stages run on it as `tf-distill train` runs them:

- streaming: `prepare_data` (one pass: hash split, reservoir sample) -> tokenizer trained
  on `tokenizer.sample_pairs` sampled pairs -> `make_datasets` (the training pairs
  tokenized into TFRecord shards) -> one pass over the training dataset's batches;
- in memory: the same stages with data.streaming off (every pair read into lists, the
  tokenizer trained on the whole training split, the tokenized arrays in memory) -> one
  pass over the batches.

Both use valid and test splits of 2,000 pairs (counts, so that they do not grow with the
corpus), the vocabulary and lengths of configs/small.json. The figures are the wall time
of each stage, the seconds of the whole and the peak RSS of the process (MiB, including
TensorFlow's own, about 600 MiB, measured alone as `baseline`).

Usage:
    python bench/corpus_scale.py --work /tmp/corpus_scale --output scale.json
    python bench/corpus_scale.py --sizes 2000 --modes streaming --work /tmp/cs   # quick
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)


def peak_rss_mib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def write_corpus(path, size, seed=0):
    """`size` generated pairs, one `source<TAB>target` line each, streamed to `path`."""
    import random

    from tf_distill.data.synthetic import SentenceMaker

    maker = SentenceMaker(random.Random(seed), random.Random(f"choices-{seed}"), 0.3)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as out:
        for _ in range(size):
            source, target = maker.pair()
            out.write(f"{source}\t{target}\n")
    os.replace(tmp, path)


def child(args):
    """One measurement in this process: the data stages on `args.tsv`."""
    import dataclasses
    import tempfile

    import tensorflow as tf  # noqa: F401  (its memory is part of every mode's figure)

    from tf_distill import config as config_lib
    from tf_distill.pipeline import data_stages
    from tf_distill.run_dir import RunDirectory

    result = {"mode": args.mode, "size": args.size, "seconds": {}}
    start = time.perf_counter()
    if args.mode == "baseline":
        result["peak_rss_mib"] = round(peak_rss_mib())
        print(json.dumps(result))
        return
    config = config_lib.load(args.config)
    data = dataclasses.replace(
        config.data,
        source="tsv",
        path=args.tsv,
        valid_size=2000,
        test_size=2000,
        max_pairs=None,
        streaming=args.mode == "streaming",
    )
    config = dataclasses.replace(config, data=data)
    run_dir = RunDirectory(tempfile.mkdtemp(prefix="corpus_scale_", dir=args.work))
    run_dir.create()

    def timed(name, fn, *a):
        begin = time.perf_counter()
        value = fn(*a)
        result["seconds"][name] = round(time.perf_counter() - begin, 2)
        return value

    prepared = timed("data", data_stages.prepare_data, config, False)
    tokenizers = timed(
        "tokenizer",
        data_stages.prepare_tokenizers,
        config,
        prepared.tokenizer_pairs,
        run_dir,
        False,
    )
    datasets = timed(
        "datasets", data_stages.make_datasets, config, prepared.splits, tokenizers, run_dir, False
    )

    def one_pass():
        return sum(int(targets.shape[0]) for _, targets in datasets.train)

    result["examples_in_one_pass"] = timed("one_pass", one_pass)
    result["train_pairs"] = datasets.train_pairs
    result["seconds"]["total"] = round(time.perf_counter() - start, 2)
    result["peak_rss_mib"] = round(peak_rss_mib())
    print(json.dumps(result))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 5_000_000])
    parser.add_argument("--modes", nargs="+", default=["streaming", "memory"])
    parser.add_argument("--config", default=os.path.join(REPO_ROOT, "configs", "small.json"))
    parser.add_argument("--work", required=True, help="folder for the corpora and run dirs")
    parser.add_argument("--output", help="write the results as JSON here (kept as it grows)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tsv", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    if args.child:
        return child(args)
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "date": time.strftime("%Y-%m-%d"),
        "config": args.config,
        "results": [],
    }
    if args.output and os.path.exists(args.output):  # resumable: keep what was measured
        report = json.load(open(args.output))
    done = {(r["mode"], r["size"]) for r in report["results"]}
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    cases = [("baseline", 0)] + [(m, s) for s in args.sizes for m in args.modes]
    for mode, size in cases:
        if (mode, size) in done:
            continue
        tsv = os.path.join(args.work, f"pairs_{size}.tsv")
        if size and not os.path.exists(tsv):
            begin = time.perf_counter()
            write_corpus(tsv, size)
            print(f"wrote {tsv} in {time.perf_counter() - begin:.0f} s", flush=True)
        command = [sys.executable, os.path.abspath(__file__), "--child", "--mode", mode]
        command += ["--size", str(size), "--tsv", tsv, "--work", args.work]
        command += ["--config", args.config]
        run = subprocess.run(command, capture_output=True, text=True, env=env)
        if run.returncode != 0:
            raise SystemExit(f"{mode} {size} failed:\n{run.stderr[-3000:]}")
        result = json.loads(run.stdout.strip().splitlines()[-1])
        print(json.dumps(result), flush=True)
        report["results"].append(result)
        if args.output:
            with open(args.output, "w") as out:
                json.dump(report, out, indent=1)
    if not args.output:
        print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
