"""Evaluation of seq2seq models on held-out pairs: BLEU, chrF, accuracy, agreement, cost.

BLEU and chrF come from sacrebleu on detokenized text (the numbers papers report), never
on token ids.
"""

import statistics
import time
from pathlib import Path

import numpy as np
import sacrebleu

from tf_distill import decoding


def translate_ids(model, source_ids, max_length, beam_size=1, batch_size=64, **special):
    """Decodes (N, S) source ids in batches; returns an (N, max_length) int array."""
    outputs = []
    for start in range(0, len(source_ids), batch_size):
        batch = source_ids[start : start + batch_size]
        batch = batch[:, : max(1, int((batch != 0).sum(1).max()))]  # drop all-pad columns
        if beam_size > 1:
            out = decoding.beam_search(model, batch, max_length, beam_size=beam_size, **special)
            if isinstance(out, tuple):
                out = out[0]
        else:
            out = decoding.greedy_decode(model, batch, max_length, **special)
        outputs.append(np.asarray(out))
    return np.concatenate(outputs) if outputs else np.zeros((0, max_length), "int32")


def corpus_scores(hypotheses, references):
    """sacrebleu corpus BLEU and chrF on detokenized strings.

    `references[i]` is the reference of `hypotheses[i]`, or a list of its references (any
    number per sentence: multi-reference BLEU counts an n-gram found in any of them, and
    takes the closest reference length).
    """
    streams = reference_streams(references)
    bleu = sacrebleu.corpus_bleu(hypotheses, streams)
    chrf = sacrebleu.corpus_chrf(hypotheses, streams)
    return float(bleu.score), float(chrf.score)


def group_references(pairs):
    """Distinct sources of `(source, target)` pairs in order of first appearance, and for
    each the list of all its targets: `(sources, references)`."""
    grouped = {}
    for source, target in pairs:
        grouped.setdefault(source, []).append(target)
    return list(grouped), list(grouped.values())


def reference_streams(references):
    """sacrebleu's reference streams from per-sentence references (a string or a list of
    strings each): stream j holds every sentence's j-th reference, None where a sentence
    has fewer (sacrebleu then scores each sentence against the ones it has)."""
    per_sentence = [[r] if isinstance(r, str) else list(r) for r in references]
    if any(not refs for refs in per_sentence):
        raise ValueError("Every hypothesis needs at least one reference.")
    width = max((len(refs) for refs in per_sentence), default=1)
    return [[refs[j] if j < len(refs) else None for refs in per_sentence] for j in range(width)]


def paired_bootstrap(hypotheses_a, hypotheses_b, references, n_samples=1000, seed=12345):
    """Paired bootstrap resampling (Koehn, 2004) of corpus BLEU, system B minus system A.

    The test sentences are resampled with replacement `n_samples` times (the same draws for
    both systems) and corpus BLEU is recomputed from sacrebleu's sufficient statistics.
    The p-value is sacrebleu's `PairedTest(test_type="bs")` statistic (the Moses script's):
    how often a resampled absolute difference, centred on the resamples' mean, exceeds the
    observed one; with the same seed it equals sacrebleu's. The interval is the 2.5th and
    97.5th percentile of the resampled differences B - A.

    Args:
        hypotheses_a, hypotheses_b: the two systems' detokenized outputs, sentence-aligned.
        references: per sentence a reference or a list of references (as `corpus_scores`).
        n_samples: bootstrap resamples.
        seed: seed of the resampling (sacrebleu's default is 12345).

    Returns:
        `{"delta", "low", "high", "p_value", "significant"}`: BLEU(B) - BLEU(A) on the whole
        set, its 95% interval, the p-value, and whether p < 0.05 with an interval that
        excludes 0.
    """
    if len(hypotheses_a) != len(hypotheses_b) or len(hypotheses_a) != len(references):
        raise ValueError(
            "Both systems need one hypothesis per reference entry. Received "
            f"{len(hypotheses_a)}, {len(hypotheses_b)} and {len(references)}."
        )
    metric = sacrebleu.metrics.BLEU()
    streams = reference_streams(references)
    stats_a = np.array(metric._extract_corpus_statistics(hypotheses_a, streams), "float32")
    stats_b = np.array(metric._extract_corpus_statistics(hypotheses_b, streams), "float32")
    score_a = metric._compute_score_from_stats(stats_a.sum(0)).score
    score_b = metric._compute_score_from_stats(stats_b.sum(0)).score
    rng = np.random.default_rng(seed)
    index = rng.choice(len(stats_a), size=(n_samples, len(stats_a)), replace=True)
    samples_a = np.array([metric._compute_score_from_stats(s.sum(0)).score for s in stats_a[index]])
    samples_b = np.array([metric._compute_score_from_stats(s.sum(0)).score for s in stats_b[index]])
    absolute = np.abs(samples_b - samples_a)
    centred = absolute - absolute.mean()
    p_value = (np.sum(centred > abs(score_b - score_a)) + 1) / (n_samples + 1)
    low, high = np.percentile(samples_b - samples_a, [2.5, 97.5])
    return {
        "delta": round(float(score_b - score_a), 2),
        "low": round(float(low), 2),
        "high": round(float(high), 2),
        "p_value": round(float(p_value), 4),
        # sacrebleu's statistic gives p = 1 / (n + 1) to two identical systems; the interval
        # must exclude 0 as well.
        "significant": bool(p_value < 0.05 and (low > 0 or high < 0)),
    }


def sequence_agreement(ids_a, ids_b):
    """Fraction of rows whose decoded id sequences are identical."""
    if len(ids_a) == 0:
        return 0.0
    return float(np.mean(np.all(np.asarray(ids_a) == np.asarray(ids_b), axis=1)))


def median_latency_ms(model, source_ids, max_length, repeats=1, **special):
    """Median wall time (ms) of greedy-decoding one sentence at batch size 1."""
    if len(source_ids) == 0:
        return 0.0
    first = source_ids[:1]
    decoding.greedy_decode(
        model, first[:, : max(1, int((first != 0).sum()))], max_length, **special
    )
    times = []
    for row in source_ids:
        ids = row[None, : max(1, int((row != 0).sum()))]
        for _ in range(repeats):
            start = time.perf_counter()
            np.asarray(decoding.greedy_decode(model, ids, max_length, **special))
            times.append((time.perf_counter() - start) * 1000.0)
    return float(statistics.median(times))


def file_size(path):
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size
