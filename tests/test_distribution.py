"""training.distribution: which strategy "auto" picks, who the chief is, and the one-line
errors for a TF_CONFIG that cannot work."""

import json

import pytest

from tf_distill import distribution
from tf_distill.errors import ConfigError


def tf_config(monkeypatch, cluster, task_type="worker", index=0):
    config = {"cluster": cluster, "task": {"type": task_type, "index": index}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(config))


def test_auto_follows_tf_config_and_the_gpus(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribution.resolve("auto", gpus=[]) == "none"
    assert distribution.resolve("auto", gpus=["GPU:0"]) == "none"
    assert distribution.resolve("auto", gpus=["GPU:0", "GPU:1"]) == "mirrored"
    assert distribution.resolve("none", gpus=["GPU:0", "GPU:1"]) == "none"
    tf_config(monkeypatch, {"worker": ["a:1", "b:2"]}, index=1)
    assert distribution.resolve("auto", gpus=["GPU:0", "GPU:1"]) == "multi_worker"
    assert distribution.resolve("mirrored", gpus=[]) == "mirrored"
    tf_config(monkeypatch, {"worker": ["a:1"]})  # one worker: nothing to distribute over
    assert distribution.resolve("auto", gpus=[]) == "none"


def test_the_chief_writes_the_run_directory(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribution.is_chief()
    tf_config(monkeypatch, {"worker": ["a:1", "b:2"]}, index=0)
    assert distribution.is_chief()
    tf_config(monkeypatch, {"worker": ["a:1", "b:2"]}, index=1)
    assert not distribution.is_chief()
    tf_config(monkeypatch, {"chief": ["c:0"], "worker": ["a:1"]}, index=0)
    assert not distribution.is_chief()  # worker 0 is not the chief when a chief exists
    tf_config(monkeypatch, {"chief": ["c:0"], "worker": ["a:1"]}, "chief", 0)
    assert distribution.is_chief()


def test_a_tf_config_that_cannot_work_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ConfigError, match="TF_CONFIG must be JSON like"):
        distribution.resolve("auto", gpus=[])
    monkeypatch.delenv("TF_CONFIG")
    with pytest.raises(ConfigError, match="'multi_worker' but TF_CONFIG is not set"):
        distribution.resolve("multi_worker", gpus=[])


def test_without_a_strategy_nothing_is_wrapped():
    distribution.use(None)
    marker = object()
    assert distribution.split_global_batches(marker) is marker
    assert distribution.local_copy(marker) is marker
    assert distribution.replicas() == 1
