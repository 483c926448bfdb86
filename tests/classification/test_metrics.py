"""Classification scores against hand-computed values and a direct per-class count."""

import numpy as np
import pytest

from tf_distill import classification_metrics as m


def test_scores_match_a_hand_computed_example():
    labels = [0, 0, 0, 1, 1, 2, 2, 2, 2, 2]
    predictions = [0, 0, 1, 1, 2, 2, 2, 2, 0, 1]
    s = m.scores(labels, predictions, 3)
    assert s["confusion"] == [[2, 1, 0], [0, 1, 1], [1, 1, 3]]
    assert s["accuracy"] == pytest.approx(0.6)
    # class 0: TP 2, FP 1, FN 1 -> 4/6; class 1: TP 1, FP 2, FN 1 -> 2/5; class 2: TP 3,
    # FP 1, FN 2 -> 6/9.
    assert s["f1"] == pytest.approx([4 / 6, 2 / 5, 6 / 9])
    assert s["macro_f1"] == pytest.approx((4 / 6 + 2 / 5 + 6 / 9) / 3)


def test_f1_agrees_with_precision_and_recall_counted_directly():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 500)
    predictions = np.where(rng.random(500) < 0.7, labels, rng.integers(0, 4, 500))
    f1 = m.scores(labels, predictions, 4)["f1"]
    for c in range(4):
        tp = np.sum((predictions == c) & (labels == c))
        precision = tp / np.sum(predictions == c)
        recall = tp / np.sum(labels == c)
        assert f1[c] == pytest.approx(2 * precision * recall / (precision + recall))


def test_a_class_never_seen_nor_predicted_scores_zero_and_counts_in_the_mean():
    s = m.scores([0, 1, 0], [0, 1, 0], 3)
    assert s["f1"] == [1.0, 1.0, 0.0]
    assert s["macro_f1"] == pytest.approx(2 / 3)


def test_paired_bootstrap_centres_on_the_difference_and_separates_clear_cases():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 400)
    good = np.where(rng.random(400) < 0.95, labels, 1 - labels)
    bad = np.where(rng.random(400) < 0.70, labels, 1 - labels)
    found = m.paired_bootstrap(labels, good, bad, 2, samples=300, seed=0)
    accuracy = found["accuracy"]
    assert accuracy["difference"] == pytest.approx(
        100 * (np.mean(good == labels) - np.mean(bad == labels)), abs=0.01
    )
    assert accuracy["low"] < accuracy["difference"] < accuracy["high"]
    assert m.verdict(accuracy) == "better"
    assert m.verdict(m.paired_bootstrap(labels, bad, good, 2, samples=300)["macro_f1"]) == "worse"
    same = m.paired_bootstrap(labels, good, good, 2, samples=100)
    assert same["macro_f1"] == {"difference": 0.0, "low": 0.0, "high": 0.0, "a_better_share": 0.0}
    assert m.verdict(same["macro_f1"]) == "tie"
