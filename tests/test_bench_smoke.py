"""Smoke tests of the training benchmarks (`bench/train_throughput.py`, `loss_step.py`,
`distill_ab.py`) at tiny dims.

No timing is asserted: the CPU is shared and the figures belong in docs/BENCHMARKS.md.
"""

import json
import os
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = ("teacher training", "student training", "distillation", "peer distillation")


def run_bench(script, output, *args):
    """Runs `bench/<script> <args> --output <output>` on the CPU; returns the process."""
    result = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "bench", script), *args]
        + ["--output", str(output)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


def run_quick(script, output):
    """Runs `bench/<script> --quick --output <output>`; returns the process."""
    return run_bench(script, output, "--quick")


@pytest.mark.slow
def test_train_throughput_quick_runs(tmp_path):
    output = tmp_path / "throughput.json"
    result = run_quick("train_throughput.py", output)
    header = next(line for line in result.stdout.splitlines() if line.startswith("case "))
    assert header.split() == ["case", "jit", "ms/step", "min", "max", "tokens/s", "params"]
    for case in CASES:
        assert case in result.stdout

    report = json.loads(output.read_text())
    assert {r["case"] for r in report["results"]} == set(CASES)
    assert all(r["ms_per_step"] > 0 and r["tokens_per_s"] > 0 for r in report["results"])
    assert "distillation/peer_distillation (no_jit)" in report["ratios"]


@pytest.mark.slow
def test_loss_step_quick_runs(tmp_path):
    """bench/loss_step.py checks itself that token_terms and the textbook form agree."""
    output = tmp_path / "loss.json"
    run_quick("loss_step.py", output)
    report = json.loads(output.read_text())
    assert {(r["form"], r["jit_compile"]) for r in report["results"]} == {
        (form, jit) for form in ("textbook", "token_terms", "peer") for jit in (False, True)
    }
    assert all(r["ms"] > 0 for r in report["results"])
    pairs = [(other, tag) for other in ("textbook", "peer") for tag in ("jit", "no_jit")]
    assert set(report["ratios"]) == {f"token_terms/{other} ({tag})" for other, tag in pairs}


@pytest.mark.slow
def test_distill_ab_quick_runs(tmp_path):
    output = tmp_path / "ab.json"
    run_quick("distill_ab.py", output)
    report = json.loads(output.read_text())
    assert [len(report["ms_per_step_all"][k]) for k in ("ours", "peer")] == [2, 2]
    assert report["paired_ratio_median"] > 0 and 0 <= report["ours_faster_in"] <= 2


@pytest.mark.slow
def test_mixed_precision_bench_runs(tmp_path):
    output = tmp_path / "mp.json"
    config = os.path.join(REPO_ROOT, "tests", "configs", "pipeline_tiny.json")
    run_bench("mixed_precision.py", output, "--config", config, "--steps", "1",
              "--repeats", "1", "--length", "8")  # fmt: skip
    rows = json.loads(output.read_text())["rows"]
    assert {(r["case"], r["policy"]) for r in rows} == {
        (case, policy)
        for case in ("teacher", "student", "distill")
        for policy in ("float32", "mixed_bfloat16")
    }
    assert all(r["ms_per_step"] > 0 for r in rows)
    assert all(r["speedup_vs_float32"] == 1.0 for r in rows if r["policy"] == "float32")


@pytest.mark.slow
def test_corpus_scale_bench_measures_both_data_paths(tmp_path):
    output = tmp_path / "scale.json"
    config = os.path.join(REPO_ROOT, "tests", "configs", "pipeline_tiny.json")
    run_bench("corpus_scale.py", output, "--config", config, "--sizes", "6000",
              "--work", str(tmp_path / "work"))  # fmt: skip
    results = {r["mode"]: r for r in json.loads(output.read_text())["results"]}
    assert set(results) == {"baseline", "streaming", "memory"}
    for mode in ("streaming", "memory"):
        r = results[mode]
        # One pass over the training batches holds every training pair once; the splits
        # keep 2,000 + 2,000 pairs aside (about, when split by hash).
        assert r["examples_in_one_pass"] == r["train_pairs"]
        assert abs(r["train_pairs"] - 2000) < 300
        assert r["peak_rss_mib"] >= results["baseline"]["peak_rss_mib"] * 0.9
    assert (tmp_path / "work" / "pairs_6000.tsv").read_text().count("\n") == 6000


@pytest.mark.slow
def test_distributed_throughput_bench_runs_one_and_two_workers(tmp_path):
    output = tmp_path / "dist.json"
    config = os.path.join(REPO_ROOT, "tests", "configs", "pipeline_tiny.json")
    run_bench("distributed_throughput.py", output, "--config", config, "--steps", "2",
              "--warmup", "1", "--repeats", "1", "--length", "8")  # fmt: skip
    report = json.loads(output.read_text())
    medians = report["median_tokens_per_second"]
    assert len(medians) == 3 and all(v > 0 for v in medians.values())
    assert report["ratio_2_workers_vs_1_worker_1_thread"] == pytest.approx(
        medians["2 workers, 1 thread each"] / medians["1 worker, 1 thread"]
    )


def test_decode_ops_counts_fewer_loop_ops_for_the_lean_loop(tmp_path):
    """bench/decode_ops.py on tiny.json's student: both loops convert and run, and the lean
    loop's body has fewer than half the standard one's ops."""
    output = tmp_path / "ops.json"
    run_bench(
        "decode_ops.py", output, "--config", "configs/tiny.json", "--roles", "student",
        "--precisions", "fp32", "--max-length", "8", "--sentences", "2", "--repeats", "1",
    )  # fmt: skip
    rows = {r["loop"]: r for r in json.loads(output.read_text())["results"]}
    assert set(rows) == {"standard", "lean"}
    assert rows["lean"]["loop_body_ops"] < 0.5 * rows["standard"]["loop_body_ops"]
    assert all(r["us_per_token"] > 0 for r in rows.values())


def test_decode_whatif_refuses_an_unknown_mode_in_one_line():
    """A misspelt --modes entry must not be measured as something else."""
    result = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "bench", "decode_whatif.py")]
        + ["--modes", "ssru+rsm"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "--modes 'ssru+rsm'" in result.stderr
