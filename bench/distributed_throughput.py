"""Throughput of the distillation step at 1 and 2 workers (training.distribution) on this
machine, in target tokens per second.

Each case trains the config's student distilled from its teacher (live teacher, logit KD,
`Distiller` + `fit`, the pipeline's global-batch split) on the same global batches:
`training.batch_size` rows of random token ids of the config's vocabulary, real lengths
uniform in [L/2, L], L = `--length`. Cases:

- `1 worker, 2 threads`: one process, no strategy, TensorFlow's threads on both cores;
- `1 worker, 1 thread`: the same on one core (intra- and inter-op threads 1);
- `2 workers, 1 thread each`: two processes on localhost under MultiWorkerMirroredStrategy
  (TF_CONFIG), each on one core, the global batch split between them.

Each case fits `--warmup` steps (tracing), then `--steps` timed steps, `--repeats` times in
turn (so a burst of load hits every case alike); the figure is the median over repeats of
real target tokens per second (global: both workers' tokens together), with the ratio to
the 1-worker cases from the same run.

Usage:
    python bench/distributed_throughput.py --config configs/small.json --output dist.json
"""

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

CASES = ("1 worker, 2 threads", "1 worker, 1 thread", "2 workers, 1 thread each")


def global_batches(config, count, length, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    vocab, size = config.tokenizer.vocabulary_size, config.training.batch_size
    found = []
    for _ in range(count):
        lengths = rng.integers(length // 2, length + 1, size)
        ids = rng.integers(4, vocab, (size, length)).astype("int32")
        ids[np.arange(length)[None, :] >= lengths[:, None]] = 0
        decoder = np.roll(ids, 1, axis=1)
        decoder[:, 0] = 2
        decoder[ids == 0] = 0
        found.append(({"encoder_token_ids": ids, "decoder_token_ids": decoder}, ids))
    return found


def worker(args):
    """One process of one case: prints {"seconds": [...], "tokens": n} (chief only)."""
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import keras

    from tf_distill import config as config_lib
    from tf_distill import distribution
    from tf_distill.distiller import Distiller
    from tf_distill.pipeline import model_stages

    config = config_lib.load(args.config)
    kind = "multi_worker" if os.environ.get("TF_CONFIG") else "none"
    strategy = distribution.make_strategy(kind)
    distribution.use(strategy)

    class Tokenizers:  # the vocabulary sizes build_model reads
        class source:
            vocabulary_size = config.tokenizer.vocabulary_size

        target = source

    with distribution.scope():
        keras.utils.set_random_seed(0)
        teacher = model_stages.build_model(config, "teacher", Tokenizers)
        student = model_stages.build_model(config, "student", Tokenizers)
        trainer = Distiller(
            teacher,
            student,
            alpha=config.distillation.alpha,
            temperature=config.distillation.temperature,
        )
        trainer.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=False)
    batches = global_batches(config, 16, args.length)
    tokens_per_pass = sum(int((y > 0).sum()) for _, y in batches)

    def dataset():
        x = {k: tf.constant([b[0][k] for b in batches]) for k in batches[0][0]}
        y = tf.constant([b[1] for b in batches])
        data = tf.data.Dataset.from_tensor_slices((x, y)).repeat()
        return distribution.split_global_batches(data)

    trainer.fit(dataset(), steps_per_epoch=args.warmup, epochs=1, verbose=0)
    seconds = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        trainer.fit(dataset(), steps_per_epoch=args.steps, epochs=1, verbose=0)
        seconds.append(time.perf_counter() - start)
    tokens = tokens_per_pass * args.steps / len(batches)
    if distribution.is_chief():
        print(json.dumps({"seconds": seconds, "tokens_per_fit": tokens}), flush=True)


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_case(case, args):
    command = [sys.executable, os.path.abspath(__file__), "--worker", "--config", args.config]
    command += ["--steps", str(args.steps), "--warmup", str(args.warmup)]
    command += ["--repeats", "1", "--length", str(args.length)]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("TF_CONFIG", None)
    if case.startswith("1 worker"):
        threads = "2" if "2 threads" in case else "1"
        runs = [subprocess.Popen([*command, "--threads", threads], env=env, **_pipes())]
    else:
        ports = free_ports(2)
        cluster = {"worker": [f"localhost:{p}" for p in ports]}
        runs = []
        for index in range(2):
            tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
            runs.append(
                subprocess.Popen(
                    [*command, "--threads", "1"], env={**env, "TF_CONFIG": tf_config}, **_pipes()
                )
            )
    outputs = [run.communicate(timeout=3600) for run in runs]
    for run, (_out, err) in zip(runs, outputs, strict=True):
        if run.returncode != 0:
            raise SystemExit(f"{case} failed:\n{err[-3000:]}")
    line = [ln for ln in outputs[0][0].splitlines() if ln.startswith("{")][-1]
    result = json.loads(line)
    return result["tokens_per_fit"] / result["seconds"][0]


def _pipes():
    return {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=os.path.join(REPO_ROOT, "configs", "small.json"))
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--length", type=int, default=28)
    parser.add_argument("--output")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    figures = {case: [] for case in CASES}
    for repeat in range(args.repeats):
        for case in CASES:
            figures[case].append(run_case(case, args))
            print(f"repeat {repeat + 1}: {case}: {figures[case][-1]:.0f} tokens/s", flush=True)
    medians = {case: statistics.median(values) for case, values in figures.items()}
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "date": time.strftime("%Y-%m-%d"),
        "config": args.config,
        "steps": args.steps,
        "length": args.length,
        "tokens_per_second": figures,
        "median_tokens_per_second": medians,
        "ratio_2_workers_vs_1_worker_2_threads": medians[CASES[2]] / medians[CASES[0]],
        "ratio_2_workers_vs_1_worker_1_thread": medians[CASES[2]] / medians[CASES[1]],
    }
    text = json.dumps(report, indent=1)
    if args.output:
        with open(args.output, "w") as out:
            out.write(text)
    print(text)


if __name__ == "__main__":
    main()
