"""data.streaming: the stream's splits, the tokenizer's sample, the shards the stages train
on, the config checks, and the main command end to end with a kill and --resume."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from tf_distill import config as config_lib
from tf_distill.data import generate_corpus, make_seq2seq_dataset, read_tsv
from tf_distill.data.shards import ShardedExamples, shard_dataset
from tf_distill.errors import ConfigError
from tf_distill.pipeline import data_stages
from tf_distill.run_dir import RunDirectory

ROOT = Path(__file__).resolve().parents[2]
TINY = str(ROOT / "tests" / "configs" / "pipeline_tiny.json")


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    """A TSV corpus where a third of the sources have a second translation."""
    path = tmp_path_factory.mktemp("corpus") / "pairs.tsv"
    pairs = generate_corpus(1200, seed=4, ambiguity=0.3)
    pairs += [(s, t.replace(".", " !")) for s, t in pairs[::3]]
    path.write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    return path


def _config(path, tmp_path, **data):
    return config_lib.load(
        TINY,
        [
            "data.source=tsv",
            f"data.path={path}",
            "data.streaming=true",
            "data.chunk_pairs=400",
            f"output_dir={tmp_path / 'run'}",
            *(f"data.{k}={v}" for k, v in data.items()),
        ],
    )


def test_the_stream_splits_by_source_and_samples_the_tokenizer_pairs(corpus_file, tmp_path):
    pairs = read_tsv(corpus_file)
    config = _config(corpus_file, tmp_path, valid_size=0.1, test_size=150)
    config = dataclasses.replace(
        config, tokenizer=dataclasses.replace(config.tokenizer, sample_pairs=300)
    )
    data = data_stages.prepare_data(config)
    train = list(data.splits.train)  # read from the file again
    assert len(train) == len(data.splits.train) == data.summary["train"]
    # Every pair in exactly one split, in file order within it.
    splits = {"train": train, "valid": data.splits.valid, "test": data.splits.test}
    assert sorted(train + splits["valid"] + splits["test"]) == sorted(pairs)
    for split in splits.values():
        assert split == [p for p in pairs if p in set(split)]
    # No source in two splits, though many have two translations.
    sources = {name: {s for s, _ in split} for name, split in splits.items()}
    assert not (sources["train"] & sources["valid"] or sources["train"] & sources["test"])
    assert not sources["valid"] & sources["test"]
    assert len(pairs) - len({s for s, _ in pairs}) >= 400  # the check is not vacuous
    # Sizes near the shares asked for (a fraction, and a count over the total).
    assert abs(len(splits["valid"]) - 150) < 60 and abs(len(splits["test"]) - 150) < 60
    # The tokenizer's sample: 300 distinct training pairs, not just the first 300.
    sample = data.tokenizer_pairs
    assert len(sample) == 300 and set(sample) <= set(train) and sample != train[:300]
    assert data.summary["streaming"] and data.summary["tokenizer_sample"] == 300


def test_make_datasets_trains_on_shards_equal_to_the_pairs(corpus_file, tmp_path):
    config = _config(corpus_file, tmp_path)
    data = data_stages.prepare_data(config)
    run_dir = RunDirectory(config.output_dir)
    run_dir.create()
    tokenizers = data_stages.prepare_tokenizers(config, data.tokenizer_pairs, run_dir, False)
    datasets = data_stages.make_datasets(config, data.splits, tokenizers, run_dir, False)
    shards = datasets.train_split
    assert isinstance(shards, ShardedExamples) and len(shards) == len(data.splits.train)
    assert shards.directory == run_dir.shards_dir("train")
    train = list(data.splits.train)
    assert datasets.truncation == data_stages.count_truncated(
        train, tokenizers, config.training.max_sequence_length
    )
    memory = make_seq2seq_dataset(train, shuffle=False, **datasets.options)
    for (a, y), (b, z) in zip(memory, shard_dataset(shards, 64, shuffle=False), strict=True):
        for name in a:
            np.testing.assert_array_equal(a[name].numpy(), b[name].numpy())
        np.testing.assert_array_equal(y.numpy(), z.numpy())
    seen = sum(int(y.shape[0]) for _, y in datasets.train)  # the shuffled training set
    assert seen == len(train)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["distillation.sequence_level=true"], "sequence_level .* data.streaming"),
        (["distillation.transfer_size=100"], "transfer set .* data.streaming"),
        (["data.max_pairs=500"], "data.max_pairs does not apply with data.streaming"),
        (["data.source=tfds", "data.tfds_name=x"], "data.streaming reads data.source"),
        (["data.chunk_pairs=5"], "data.chunk_pairs must be >= 100"),
        (["task=classification"], "data.streaming is for translation"),
    ],
)
def test_what_streaming_cannot_do_is_refused_with_the_fix(overrides, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        config_lib.load(TINY, ["data.streaming=true", f"output_dir={tmp_path}", *overrides])


def _train(args):
    return subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


@pytest.mark.slow
def test_a_streamed_run_killed_in_training_resumes_to_the_same_report(corpus_file, tmp_path):
    args = ["--config", TINY, "--set", "data.source=tsv", "--set", f"data.path={corpus_file}"]
    args += ["--set", "data.streaming=true", "--set", "data.chunk_pairs=300"]
    args += ["--set", "export.enabled=false"]
    whole = tmp_path / "whole"
    done = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args, "--output-dir", str(whole)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((whole / "report.json").read_text())
    assert report["data"]["streaming"] and "Streamed" in (whole / "report.md").read_text()
    top_k = ShardedExamples(whole / "shards" / "teacher_top_k")
    assert len(top_k) == report["data"]["train"] == len(ShardedExamples(whole / "shards/train"))

    killed = tmp_path / "killed"
    process = _train([*args, "--output-dir", str(killed)])
    timer = None
    for line in process.stdout:
        if timer is None and "stage student: start" in line:
            timer = threading.Timer(3.0, os.killpg, (process.pid, signal.SIGKILL))
            timer.start()
    process.wait(timeout=900)
    assert process.returncode == -signal.SIGKILL
    resumed = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args, "--output-dir", str(killed), "--resume"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "already written" in resumed.stdout + resumed.stderr  # the shards were kept
    again = json.loads((killed / "report.json").read_text())
    for name in ("teacher", "baseline", "student"):
        assert again[name]["bleu"] == report[name]["bleu"], name
    assert again["curves"] == report["curves"]
