"""Classification scores in NumPy: accuracy, per-class and macro F1, the confusion matrix,
and a paired bootstrap of the difference between two classifiers on the same test set.

Conventions (as scikit-learn's defaults): a class that is never predicted and never true
has F1 0 and still counts in the macro mean over all `num_classes` classes; the confusion
matrix's rows are true classes, its columns predicted ones.
"""

import numpy as np


def confusion_matrix(labels, predictions, num_classes):
    """(C, C) int64 counts: row = true class, column = predicted class."""
    labels = np.asarray(labels, np.int64)
    predictions = np.asarray(predictions, np.int64)
    if labels.shape != predictions.shape:
        raise ValueError(
            f"labels and predictions must have one shape. Received {labels.shape} and "
            f"{predictions.shape}."
        )
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def f1_per_class(matrix):
    """F1 of each class from a confusion matrix: 2 TP / (2 TP + FP + FN), 0 where undefined."""
    matrix = np.asarray(matrix, np.float64)
    true_positive = np.diag(matrix)
    denominator = matrix.sum(axis=0) + matrix.sum(axis=1)  # (TP + FP) + (TP + FN)
    return np.divide(
        2 * true_positive, denominator, out=np.zeros_like(true_positive), where=denominator > 0
    )


def scores(labels, predictions, num_classes):
    """`{"accuracy", "macro_f1", "f1" (list per class), "confusion" (list of lists)}`."""
    matrix = confusion_matrix(labels, predictions, num_classes)
    f1 = f1_per_class(matrix)
    total = max(int(matrix.sum()), 1)
    return {
        "accuracy": float(np.trace(matrix) / total),
        "macro_f1": float(f1.mean()),
        "f1": [float(v) for v in f1],
        "confusion": matrix.tolist(),
    }


def macro_f1(labels, predictions, num_classes):
    return float(f1_per_class(confusion_matrix(labels, predictions, num_classes)).mean())


def paired_bootstrap(labels, predictions_a, predictions_b, num_classes, samples=1000, seed=0):
    """The difference A - B in accuracy and macro-F1 (in points, x100) on the test set,
    with a 95% percentile interval from `samples` paired resamples (the same resampled
    examples score both systems, as in Koehn, 2004).

    Returns:
        `{"accuracy": {...}, "macro_f1": {...}}`, each `{"difference", "low", "high",
        "a_better_share"}` (the share of resamples where A scores higher).
    """
    labels = np.asarray(labels, np.int64)
    a = np.asarray(predictions_a, np.int64)
    b = np.asarray(predictions_b, np.int64)
    n = len(labels)
    rng = np.random.default_rng(seed)
    found = {"accuracy": [], "macro_f1": []}
    for _ in range(samples):
        rows = rng.integers(0, n, n)
        y = labels[rows]
        found["accuracy"].append(np.mean(a[rows] == y) - np.mean(b[rows] == y))
        found["macro_f1"].append(
            macro_f1(y, a[rows], num_classes) - macro_f1(y, b[rows], num_classes)
        )
    full = {
        "accuracy": np.mean(a == labels) - np.mean(b == labels),
        "macro_f1": macro_f1(labels, a, num_classes) - macro_f1(labels, b, num_classes),
    }
    result = {}
    for key, values in found.items():
        values = np.asarray(values) * 100
        result[key] = {
            "difference": round(float(full[key]) * 100, 2),
            "low": round(float(np.percentile(values, 2.5)), 2),
            "high": round(float(np.percentile(values, 97.5)), 2),
            "a_better_share": round(float(np.mean(values > 0)), 3),
        }
    return result


def verdict(interval):
    """ "better", "worse" or "tie" from a bootstrap interval: a tie when it spans 0."""
    if interval["low"] > 0:
        return "better"
    if interval["high"] < 0:
        return "worse"
    return "tie"
