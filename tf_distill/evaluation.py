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
    """sacrebleu corpus BLEU and chrF on detokenized strings."""
    bleu = sacrebleu.corpus_bleu(hypotheses, [references])
    chrf = sacrebleu.corpus_chrf(hypotheses, [references])
    return float(bleu.score), float(chrf.score)


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
