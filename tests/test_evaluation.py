"""BLEU with several references per sentence, and the paired bootstrap against sacrebleu."""

import numpy as np
import pytest
import sacrebleu
import sacrebleu.significance

from tf_distill import evaluation

REFERENCES = [
    ["the cat sits on the mat", "a cat is sitting on the mat"],
    ["he reads a book every night"],
    ["we went to the market", "we walked to the market", "we went to the shop"],
    ["she does not like coffee"],
]


def test_group_references_keeps_first_appearance_order():
    pairs = [("a", "1"), ("b", "2"), ("a", "3"), ("c", "4"), ("b", "5")]
    sources, references = evaluation.group_references(pairs)
    assert sources == ["a", "b", "c"]
    assert references == [["1", "3"], ["2", "5"], ["4"]]


def test_multi_reference_bleu_counts_any_reference():
    hypotheses = [
        "a cat is sitting on the mat",
        "he reads a book every night",
        "we walked to the market",
        "she does not like coffee",
    ]
    bleu, chrf = evaluation.corpus_scores(hypotheses, REFERENCES)
    assert bleu == pytest.approx(100.0) and chrf == pytest.approx(100.0)
    # Against the first reference alone the same output scores lower.
    first_only, _ = evaluation.corpus_scores(hypotheses, [r[0] for r in REFERENCES])
    assert first_only < 90
    # The same as sacrebleu given the padded streams directly.
    streams = [[r[j] if j < len(r) else None for r in REFERENCES] for j in range(3)]
    hyps = ["the cat is on a mat", "he reads books at night", "we went to a shop", "she likes tea"]
    assert evaluation.corpus_scores(hyps, REFERENCES)[0] == pytest.approx(
        sacrebleu.corpus_bleu(hyps, streams).score
    )
    with pytest.raises(ValueError, match="at least one reference"):
        evaluation.corpus_scores(["x"], [[]])


def corpus(seed, size=120):
    """Random sentences over a small vocabulary, and two noisy systems, B better than A."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(30)]
    refs, a, b = [], [], []
    for _ in range(size):
        ref = list(rng.choice(words, size=8))
        refs.append(" ".join(ref))
        a.append(" ".join(w if rng.random() < 0.55 else rng.choice(words) for w in ref))
        b.append(" ".join(w if rng.random() < 0.75 else rng.choice(words) for w in ref))
    return refs, a, b


def test_paired_bootstrap_matches_sacrebleu_paired_test(monkeypatch):
    refs, a, b = corpus(0)
    ours = evaluation.paired_bootstrap(a, b, refs, n_samples=300, seed=12345)
    monkeypatch.setenv("SACREBLEU_SEED", "12345")
    _, results = sacrebleu.significance.PairedTest(
        named_systems=[("a", a), ("b", b)],
        metrics={"BLEU": sacrebleu.metrics.BLEU()},
        references=[refs],
        test_type="bs",
        n_samples=300,
    )()
    baseline, system = results["BLEU"]
    assert ours["delta"] == pytest.approx(system.score - baseline.score, abs=0.01)
    assert ours["p_value"] == pytest.approx(system.p_value, abs=1e-4)
    assert ours["significant"] and ours["low"] > 0 and ours["low"] < ours["delta"] < ours["high"]


def test_paired_bootstrap_of_a_system_against_itself_is_a_tie():
    refs, a, _ = corpus(1)
    same = evaluation.paired_bootstrap(a, a, refs, n_samples=200)
    assert same["delta"] == 0 and same["low"] == 0 and same["high"] == 0
    assert not same["significant"]
    with pytest.raises(ValueError, match="one hypothesis per reference"):
        evaluation.paired_bootstrap(a, a[:-1], refs)
