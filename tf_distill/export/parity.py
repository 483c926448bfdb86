"""The checks an export must pass: each artifact's outputs against the Keras model's,
exactly (sequence / label agreement) or by quality (corpus BLEU lost)."""

import numpy as np

from tf_distill import evaluation
from tf_distill.errors import ExportError


def decode_rows(fn, source_ids):
    """Runs `fn` one sentence at a time, trimmed to its real length (what an app does)."""
    outputs = []
    for row in source_ids:
        ids = row[None, : max(1, int((row != 0).sum()))]
        outputs.append(np.asarray(fn(ids))[0])
    return np.stack(outputs)


def sequence_parity(reference, candidate):
    same_sequence = float(np.mean(np.all(reference == candidate, axis=1)))
    real = (reference != 0) | (candidate != 0)
    same_token = float(np.mean((reference == candidate)[real])) if real.any() else 1.0
    return {"sequence_agreement": round(same_sequence, 4), "token_agreement": round(same_token, 4)}


def label_parity(reference, candidate):
    return {
        "label_agreement": round(float(np.mean(reference.argmax(-1) == candidate.argmax(-1))), 4),
        "max_abs_probability_diff": float(np.max(np.abs(reference - candidate))),
    }


def add_bleu(metadata, references, detokenize):
    """Corpus BLEU of the Keras model's and of each TFLite file's outputs on the parity rows."""
    outputs = metadata["_outputs"]
    keras_bleu = {
        key: evaluation.corpus_scores(detokenize(outputs[key]), references)[0]
        for key in ("keras", "keras_beam")
        if key in outputs
    }
    for variant, got in outputs.items():
        if variant.startswith("keras"):
            continue
        against = keras_bleu["keras_beam" if variant.endswith("_beam") else "keras"]
        bleu = evaluation.corpus_scores(detokenize(got), references)[0]
        metadata["parity"][variant].update(
            bleu=round(bleu, 2),
            keras_bleu=round(against, 2),
            bleu_drop=round(against - bleu, 2),
        )


def check_parity(parities, min_agreement, max_bleu_drop=0.5):
    for variant, parity in parities.items():
        exact = variant in ("saved_model", "tflite_fp32", "tflite_fp32_beam")
        if not exact and "bleu_drop" in parity:
            parity["max_bleu_drop"] = max_bleu_drop
            if parity["bleu_drop"] > max_bleu_drop:
                raise ExportError(
                    f"{variant} loses {parity['bleu_drop']:.2f} BLEU against the Keras student "
                    f"on the parity sentences ({parity['bleu']:.2f} vs "
                    f"{parity['keras_bleu']:.2f}; export.max_bleu_drop is {max_bleu_drop}). "
                    "Train the student longer or drop this format from export.formats."
                )
            continue
        # Beam search compares sums of log probabilities across hypotheses: a float
        # rounding difference may swap two near-tied ones, so fp32 beam needs 99%, not all.
        needed = (0.99 if variant == "tflite_fp32_beam" else 1.0) if exact else min_agreement
        if "label_agreement" in parity:
            key, what = "label_agreement", "test inputs get the same label"
        else:
            key, what = "sequence_agreement", "test sentences decode exactly"
        parity[f"required_{key}"] = needed
        if parity[key] < needed:
            raise ExportError(
                f"{variant} parity too low: {parity[key]:.1%} of {what} as in Keras "
                f"(need {needed:.0%}). "
                "Train the student longer or drop this format from export.formats."
            )
