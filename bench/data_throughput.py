"""Data pipeline speed: reading, splitting, tokenizer training, tokenizing, tf.data batches.

On a real corpus (default: the 118,964 English-Spanish Tatoeba pairs beside the repo in
../shared) this times, as the training command does them:

- read_tsv and split_pairs (by distinct source, 5% valid, 5% test);
- training a shared WordPiece vocabulary on both sides of the train split;
- tokenizing the train split (a fresh tokenizer each time, so its word cache starts empty);
- make_seq2seq_dataset (tokenize, pad into buckets, build the tf.data graph);
- one epoch of batches from that dataset, in pairs per second;
- generating 100k pairs of the built-in corpus.

Each figure is the median of `--repeats` runs, as wall-clock time and as this process's
CPU time (which a shared machine's load disturbs less; tf.data runs on several threads, so
its CPU time can exceed the wall time). `--compare-keras-hub` also times, once,
keras-hub's `compute_word_piece_vocabulary` on the same text and keras-hub's
`WordPieceTokenizer` on the train split (slow: minutes).

Usage:
    python bench/data_throughput.py                         # prints a table
    python bench/data_throughput.py path/to/pairs.tsv --output data.json
    python bench/data_throughput.py --compare-keras-hub
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

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Run as `python bench/data_throughput.py` from a checkout: import the package beside it.
sys.path.insert(0, REPO_ROOT)

from tf_distill import data  # noqa: E402

DEFAULT_PATH = os.path.join(REPO_ROOT, "..", "shared", "data", "tatoeba-spa-eng", "spa.txt")


def timed(function, repeats):
    """(median wall seconds, median CPU seconds of this process, last result)."""
    wall, cpu = [], []
    result = None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = function()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu), result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", nargs="?", default=DEFAULT_PATH, help="source<TAB>target file")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--vocabulary-size", type=int, default=8000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-sequence-length", type=int, default=32)
    parser.add_argument("--bucket-lengths", type=int, nargs="+", default=[10, 16, 24, 33])
    parser.add_argument("--compare-keras-hub", action="store_true")
    parser.add_argument("--output", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    repeats = args.repeats
    load_before = os.getloadavg()[0]

    results = {}
    wall, cpu, pairs = timed(lambda: data.read_tsv(args.path), repeats)
    results["read_tsv_s"] = (wall, cpu)
    wall, cpu, splits = timed(lambda: data.split_pairs(pairs, 0.05, 0.05, seed=0), repeats)
    results["split_pairs_s"] = (wall, cpu)
    train = splits.train
    texts = [source for source, _ in train] + [target for _, target in train]

    wall, cpu, tokenizer = timed(
        lambda: data.Tokenizer.train(texts, vocabulary_size=args.vocabulary_size), repeats
    )
    results["tokenizer_train_s"] = (wall, cpu)

    def tokenize():
        fresh = data.Tokenizer(tokenizer.vocabulary)
        return fresh.tokenize(texts)

    wall, cpu, ids = timed(tokenize, repeats)
    results["tokenize_pairs_per_s"] = (len(train) / wall, len(train) / cpu)
    tokens_per_sentence = sum(map(len, ids)) / len(ids)

    def build():
        fresh = data.Tokenizer(tokenizer.vocabulary)
        return data.make_seq2seq_dataset(
            train,
            fresh,
            fresh,
            batch_size=args.batch_size,
            max_sequence_length=args.max_sequence_length,
            bucket_lengths=args.bucket_lengths,
            seed=0,
        )

    # Import TensorFlow and build one small dataset first: start-up is not throughput.
    data.make_seq2seq_dataset(train[:100], tokenizer, tokenizer, 8, args.max_sequence_length)
    wall, cpu, dataset = timed(build, repeats)
    results["dataset_build_s"] = (wall, cpu)

    def epoch():
        count = 0
        for _, targets in dataset:
            count += int(targets.shape[0])
        return count

    epoch()  # the first pass traces the map function
    wall, cpu, count = timed(epoch, repeats)
    results["epoch_pairs_per_s"] = (count / wall, count / cpu)

    wall, cpu, _ = timed(lambda: data.generate_corpus(100_000, seed=0), repeats)
    results["synthetic_100k_s"] = (wall, cpu)

    if args.compare_keras_hub:
        wall, cpu, _ = timed(
            lambda: data.Tokenizer.train(
                texts, vocabulary_size=args.vocabulary_size, learner="keras_hub"
            ),
            1,
        )
        results["keras_hub_tokenizer_train_s"] = (wall, cpu)
        layer = tokenizer.keras_hub_tokenizer()
        normalized = [data.tokenizer.normalize(text) for text in texts]
        wall, cpu, _ = timed(lambda: layer(normalized), 1)
        results["keras_hub_tokenize_pairs_per_s"] = (len(train) / wall, len(train) / cpu)

    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.platform()}",
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "path": os.path.normpath(args.path),
        "pairs": len(pairs),
        "train_pairs": len(train),
        "settings": {
            "vocabulary_size": tokenizer.vocabulary_size,
            "batch_size": args.batch_size,
            "max_sequence_length": args.max_sequence_length,
            "bucket_lengths": args.bucket_lengths,
            "repeats": repeats,
        },
        "tokens_per_sentence": round(tokens_per_sentence, 2),
        "results": {
            key: {"wall": round(wall, 3), "cpu": round(cpu, 3)}
            for key, (wall, cpu) in results.items()
        },
    }
    print(f"{report['pairs']} pairs ({report['train_pairs']} train) from {report['path']}")
    print(f"machine: {report['machine']}; load average {report['load_average']}")
    width = max(map(len, results))
    print(f"{'figure':<{width}}  {'wall':>12}  {'cpu':>12}")
    for key, value in report["results"].items():
        print(f"{key:<{width}}  {value['wall']:>12,.3f}  {value['cpu']:>12,.3f}")
    if args.output:
        with open(args.output, "w", encoding="utf-8") as file:
            json.dump(report, file, indent=2)
            file.write("\n")
    return report


if __name__ == "__main__":
    main()
