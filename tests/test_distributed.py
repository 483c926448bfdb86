"""Distiller under real tf.distribute strategies, each in fresh processes.

A distributed step must equal a single-device step on the same global batch: the loss is
a mean over the real tokens of the whole global batch, not a mean of per-replica means
(the batches in distributed_worker.py make those two differ).
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

WORKER = Path(__file__).with_name("distributed_worker.py")
ROOT = WORKER.parent.parent
pytestmark = pytest.mark.slow


def run_worker(mode, output, env=None, timeout=600):
    return subprocess.Popen(
        [sys.executable, str(WORKER), mode, str(output)],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process, timeout=600):
    out, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0 and "WORKER_DONE" in out, out[-4000:]


def weights(path):
    data = np.load(path)
    return data["loss"], [data[f"w{i}"] for i in range(len(data.files) - 1)]


@pytest.fixture(scope="module")
def single_run(tmp_path_factory):
    output = tmp_path_factory.mktemp("single") / "single.npz"
    finish(run_worker("single", output))
    return weights(output)


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def assert_same_training(run, reference):
    (loss, ws), (ref_loss, ref_ws) = run, reference
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
    for w, r in zip(ws, ref_ws, strict=True):
        np.testing.assert_allclose(w, r, atol=2e-5)
    assert any(np.abs(w).sum() > 0 for w in ws)


def test_mirrored_strategy_matches_single_device(single_run, tmp_path):
    output = tmp_path / "mirrored.npz"
    finish(run_worker("mirrored", output))
    assert_same_training(weights(output), single_run)


def test_feature_terms_under_mirrored_strategy_match_single_device(tmp_path):
    """The feature terms are global means too: per-replica sums over the global count."""
    single = tmp_path / "single.npz"
    finish(run_worker("single+features", single))
    mirrored = tmp_path / "mirrored.npz"
    finish(run_worker("mirrored+features", mirrored))
    reference, run = weights(single), weights(mirrored)
    assert len(reference[1]) > len(weights_without_features(tmp_path))  # projections saved
    assert_same_training(run, reference)


def test_clipped_gradients_under_mirrored_strategy_match_single_device(tmp_path):
    """Keras clips each replica's gradient before summing them; the Distiller clips the
    global gradient, as one device does (clipnorm 0.05 acts on every step here)."""
    single = tmp_path / "single.npz"
    finish(run_worker("single+clip", single))
    mirrored = tmp_path / "mirrored.npz"
    finish(run_worker("mirrored+clip", mirrored))
    reference = weights(single)
    assert_same_training(weights(mirrored), reference)
    unclipped = tmp_path / "unclipped.npz"
    finish(run_worker("single", unclipped))
    assert not np.allclose(weights(unclipped)[1][0], reference[1][0], atol=1e-4)  # it acted


def test_the_pipelines_batch_split_matches_single_device(single_run, tmp_path):
    """`distribution.split_global_batches` gives each replica its piece of every global
    batch, and fit's symbolic build (Keras would take the first batch for it) consumes
    none: the same training as one device, exactly."""
    output = tmp_path / "split.npz"
    finish(run_worker("mirrored+split", output))
    assert_same_training(weights(output), single_run)


def weights_without_features(tmp_path):
    output = tmp_path / "plain.npz"
    finish(run_worker("single", output))
    return weights(output)[1]


def test_two_worker_multi_worker_mirrored_matches_single_process(single_run, tmp_path):
    ports = free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    processes = [
        run_worker(
            "multi_worker",
            tmp_path / f"worker{i}.npz",
            env={
                "TF_CONFIG": json.dumps(
                    {"cluster": cluster, "task": {"type": "worker", "index": i}}
                )
            },
        )
        for i in range(2)
    ]
    for process in processes:
        finish(process)
    first, second = weights(tmp_path / "worker0.npz"), weights(tmp_path / "worker1.npz")
    for a, b in zip(first[1], second[1], strict=True):
        np.testing.assert_array_equal(a, b)  # both workers end with identical students
    assert_same_training(first, single_run)


def train_process(args, env=None):
    return subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=ROOT,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": "", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_two_worker_pipeline_gives_the_single_process_report(tmp_path):
    """`training.distribution` auto picks MultiWorkerMirroredStrategy from TF_CONFIG; the
    tiny pipeline on two local CPU workers trains on the same global batches as one
    process (dropout off: replicas draw other masks than one process would) and reports
    the same curves, only the chief writes the run directory, the export works from the
    chief's local copy, and the worker leaves nothing behind."""
    config = str(ROOT / "tests" / "configs" / "pipeline_tiny.json")
    args = ["--config", config, "--set", "teacher.dropout=0", "--set", "training.epochs=2"]
    single = train_process([*args, "--output-dir", str(tmp_path / "single")])
    out, _ = single.communicate(timeout=900)
    assert single.returncode == 0, out[-3000:]
    ports = free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    workers = [
        train_process(
            [*args, "--output-dir", str(tmp_path / "multi")],
            env={
                "TF_CONFIG": json.dumps(
                    {"cluster": cluster, "task": {"type": "worker", "index": i}}
                )
            },
        )
        for i in range(2)
    ]
    outputs = [w.communicate(timeout=1500)[0] for w in workers]
    for worker, output in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, output[-4000:]
    assert "distribution: multi_worker, 2 replicas" in outputs[0]
    assert "not the chief; writing to scratch" in outputs[1]
    scratch = [line for line in outputs[1].splitlines() if "writing to scratch" in line]
    assert not Path(scratch[0].split("scratch ")[1].split(",")[0]).exists()
    reference = json.loads((tmp_path / "single" / "report.json").read_text())
    report = json.loads((tmp_path / "multi" / "report.json").read_text())
    # The same batches and the same math; the summation order across replicas differs,
    # and Adam turns rounding-level gradients of rarely seen parameters into whole
    # steps, so the curves agree to about a percent, not to float precision (the
    # Distiller-level tests above, with SGD, agree to 1e-5).
    for role in ("teacher", "baseline", "student"):
        for key in ("loss", "val_loss"):
            np.testing.assert_allclose(
                report["curves"][role][key], reference["curves"][role][key], rtol=2e-2
            )
        assert report[role]["steps"] == reference[role]["steps"]
        assert report[role]["precision"] == "float32"
    assert (tmp_path / "multi" / "export" / "export.json").exists()


def test_killed_workers_resume_from_the_chiefs_checkpoints(tmp_path):
    """Both workers killed once the teacher is saved (mid-baseline); restarted with
    --resume, the second worker copies the chief's run directory, both reuse the teacher
    and the run finishes with the steps an uninterrupted run takes."""
    import hashlib
    import signal
    import time

    config = str(ROOT / "tests" / "configs" / "pipeline_tiny.json")
    out = tmp_path / "run"
    args = ["--config", config, "--set", "teacher.dropout=0", "--set", "training.epochs=2"]
    args += ["--set", "export.enabled=false", "--output-dir", str(out)]

    def start(extra=()):
        ports = free_ports(2)
        cluster = {"worker": [f"localhost:{p}" for p in ports]}
        return [
            train_process(
                [*args, *extra],
                env={
                    "TF_CONFIG": json.dumps(
                        {"cluster": cluster, "task": {"type": "worker", "index": i}}
                    )
                },
            )
            for i in range(2)
        ]

    workers = start()
    teacher = out / "teacher.keras"
    deadline = time.time() + 900
    while not (teacher.exists() and (out / "state" / "baseline").exists()):
        assert time.time() < deadline and all(w.poll() is None for w in workers)
        time.sleep(0.5)
    time.sleep(1.0)
    for worker in workers:
        worker.send_signal(signal.SIGKILL)
        worker.communicate()
    assert not (out / "report.json").exists()
    saved = hashlib.sha256(teacher.read_bytes()).hexdigest()
    workers = start(["--resume"])
    outputs = [w.communicate(timeout=1500)[0] for w in workers]
    codes = [w.returncode for w in workers]
    assert codes == [0, 0], "\n".join(f"worker {i}: {o[-3000:]}" for i, o in enumerate(outputs))
    assert hashlib.sha256(teacher.read_bytes()).hexdigest() == saved  # not trained again
    report = json.loads((out / "report.json").read_text())
    assert report["baseline"]["steps"] == report["student"]["steps"] == 44
