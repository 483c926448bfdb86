"""Smoke test of `bench/train_throughput.py`: it runs end to end at tiny dims.

No timing is asserted: the CPU is shared and the figures belong in docs/BENCHMARKS.md.
"""

import json
import os
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO_ROOT, "bench", "train_throughput.py")
CASES = ("teacher training", "student training", "distillation", "peer distillation")


@pytest.mark.slow
def test_train_throughput_quick_runs(tmp_path):
    output = tmp_path / "throughput.json"
    result = subprocess.run(
        [sys.executable, SCRIPT, "--quick", "--output", str(output)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    header = next(line for line in result.stdout.splitlines() if line.startswith("case "))
    assert header.split() == ["case", "jit", "ms/step", "min", "max", "tokens/s", "params"]
    for case in CASES:
        assert case in result.stdout

    report = json.loads(output.read_text())
    assert {r["case"] for r in report["results"]} == set(CASES)
    assert all(r["ms_per_step"] > 0 and r["tokens_per_s"] > 0 for r in report["results"])
    assert "distillation/peer_distillation (no_jit)" in report["ratios"]
