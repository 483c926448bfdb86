"""Export of a trained seq2seq student: `.keras`, SavedModel and TFLite, with parity checks.

Everything is written into `<output_dir>/export.tmp` and renamed to `<output_dir>/export`
only once every artifact exists and every parity check passed, so a failed export never
leaves a half-written folder behind.

The `translate` signature runs the whole greedy decode (key/value cache included) inside
the graph: an app calls it once per batch of source ids and gets target ids back. TFLite
files use builtin ops only (no Flex, no custom ops), so a stock mobile runtime runs them.
"""

import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from tf_distill import decoding, evaluation
from tf_distill.errors import ExportError  # noqa: F401  (raised here; re-exported)
from tf_distill.models import classifier_embedding, seq2seq_parts
from tf_distill.tflite import (
    SIGNATURE_INPUTS,
    builtin_names,
    convert_tflite,
    tflite_op_names,
    tflite_runner,
)
from tf_distill.version import __version__

_LOG = logging.getLogger(__name__)

TFLITE_VARIANTS = {
    "tflite_fp32": "student_fp32.tflite",
    "tflite_fp16": "student_fp16.tflite",
    "tflite_int8": "student_int8.tflite",
}


def _signatures_module(model, max_length, special, beam_size=None, length_penalty=0.6):
    translate = decoding.make_translate_function(model, max_length, **special)

    @tf.function(
        input_signature=[
            tf.TensorSpec((None, None), tf.int32, "encoder_token_ids"),
            tf.TensorSpec((None, None), tf.int32, "decoder_token_ids"),
        ]
    )
    def forward(encoder_token_ids, decoder_token_ids):
        logits = model(
            {"encoder_token_ids": encoder_token_ids, "decoder_token_ids": decoder_token_ids},
            training=False,
        )
        return {"logits": logits}

    @tf.function(input_signature=[tf.TensorSpec((None, None), tf.int32, "encoder_token_ids")])
    def translate_signature(encoder_token_ids):
        return {"output_token_ids": translate(encoder_token_ids)}

    module = tf.Module()
    # Track the tf.Variables under the Keras variables: with the Keras model (or its Keras
    # variables) as the tracked object, the TFLite converter leaves the weights as
    # uninitialized resource variables inside the decode loop.
    module.weights = [weight.value for weight in model.weights]
    module.forward = forward
    module.translate = translate_signature
    if beam_size:
        beam = decoding.make_translate_function(
            model, max_length, beam_size=beam_size, length_penalty=length_penalty, **special
        )

        @tf.function(input_signature=[tf.TensorSpec((None, None), tf.int32, "encoder_token_ids")])
        def translate_beam(encoder_token_ids):
            return {"output_token_ids": beam(encoder_token_ids)}

        module.translate_beam = translate_beam
    return module


def _decode_rows(fn, source_ids):
    """Runs `fn` one sentence at a time, trimmed to its real length (what an app does)."""
    outputs = []
    for row in source_ids:
        ids = row[None, : max(1, int((row != 0).sum()))]
        outputs.append(np.asarray(fn(ids))[0])
    return np.stack(outputs)


def _agreement(reference, candidate):
    same_sequence = float(np.mean(np.all(reference == candidate, axis=1)))
    real = (reference != 0) | (candidate != 0)
    same_token = float(np.mean((reference == candidate)[real])) if real.any() else 1.0
    return {"sequence_agreement": round(same_sequence, 4), "token_agreement": round(same_token, 4)}


INT8_MODES = ("dynamic", "full")


def is_classifier(model):
    """True for a `build_classifier` model (class logits from `token_ids`)."""
    return len(model.outputs[0].shape) == 2 and "token_ids" in _input_names(model)


def _input_names(model):
    return [getattr(t, "name", "").split(":")[0] for t in model.inputs]


def export_student(
    model,
    output_dir,
    source_ids,
    max_length=None,
    formats=("saved_model", "tflite_fp32", "tflite_fp16", "tflite_int8"),
    special=None,
    tokenizer_dir=None,
    extra_metadata=None,
    min_sequence_agreement=0.97,
    int8_mode="dynamic",
    references=None,
    detokenize=None,
    max_bleu_drop=0.5,
    source_texts=None,
    round_to_int8_grid=False,
    beam_size=None,
    length_penalty=0.6,
):
    """Exports `model` into `<output_dir>/export` and checks every artifact against Keras.

    A seq2seq student (`build_transformer`) gets the `translate` signature (greedy decode in
    the graph) and a SavedModel `forward` signature (teacher-forced logits); a classifier
    (`build_classifier`) gets `classify` (class probabilities).

    Args:
        model: a trained `build_transformer` or `build_classifier` model (the student).
        output_dir: run directory; the export goes into its `export/` folder.
        source_ids: (N, S) int32 test inputs (padded with 0) for the parity checks, also
            the calibration inputs of a full int8 file.
        max_length: number of target tokens `translate` produces (seq2seq only).
        formats: any of `saved_model`, `tflite_fp32`, `tflite_fp16`, `tflite_int8`.
        special: dict with `start_id`, `end_id`, `pad_id` (seq2seq only).
        tokenizer_dir: folder whose files (vocabularies) are copied beside the model.
        extra_metadata: merged into `export.json`.
        min_sequence_agreement: share of `source_ids` that fp16 / int8 files must decode
            exactly as Keras does (classifiers: give the same label); the SavedModel and
            fp32 files must match on every one.
        int8_mode: `"dynamic"` (int8 weights, float activations) or `"full"` (activations
            quantized too, their ranges calibrated on `source_ids`).
        references: seq2seq only, optional: per row of `source_ids` its reference
            translation (or a list of them). With `detokenize`, fp16 and int8 files are
            judged by quality instead of exact agreement: each one's corpus BLEU on these
            rows may fall at most `max_bleu_drop` below the Keras model's (sequence
            agreement is still measured and recorded). Where many next tokens are nearly
            tied, 8-bit rounding flips some of them without making the output worse.
        detokenize: callable, (N, T) ids -> N strings (the target tokenizer's).
        max_bleu_drop: the largest BLEU loss allowed to an fp16 / int8 file.
        source_texts: seq2seq only, optional: the text of each row of `source_ids`, for
            the golden file (`golden.jsonl`).
        round_to_int8_grid: first round `model`'s weights, in place, to the grid the int8
            file stores (`tf_distill.tflite.round_to_int8_grid`; what the pipeline does
            before it evaluates the student), so that the int8 file holds exactly the
            Keras model's weights. Evaluate the model after this, not before.
        beam_size: seq2seq only, optional (> 1): also a `translate_beam` signature (beam
            search with this many beams and the GNMT `length_penalty`, fixed at export
            time) in the SavedModel and, for each TFLite format, a second file
            `student_<precision>_beam.tflite` (one signature per file: two in one int8 file
            keep a float copy of the embedding; docs/BENCHMARKS.md). The fp32 beam file
            must give the Keras beam search's output on at least 99% of the parity
            sentences; fp16 / int8 beam files are judged like the greedy ones, against the
            Keras beam search.

    A seq2seq export also holds `manifest.json` (the on-device contract: signature,
    tensor names, dtypes and shapes, special ids, tokenizer rules, lengths, each file's
    quality figures) and `golden.jsonl` (per parity sentence: its text, its source ids and
    each format's output ids and text), against which a mobile implementation can check
    its tokenizer and its interpreter calls.

    Returns:
        The `export.json` dict (paths, sizes, parity figures).

    Raises:
        ExportError: a parity check fell short; nothing is left in `output_dir/export`.
    """
    if int8_mode not in INT8_MODES:
        raise ValueError(f"`int8_mode` must be one of {INT8_MODES}. Received: {int8_mode!r}.")
    classifier = is_classifier(model)
    if not classifier and max_length is None:
        raise ValueError("`max_length` is required to export a seq2seq model.")
    source_ids = np.asarray(source_ids, np.int32)
    if source_ids.ndim != 2 or len(source_ids) == 0:
        raise ValueError(
            "`source_ids` must be a non-empty (N, S) array of test inputs (the parity "
            f"checks run on them). Received shape {source_ids.shape}."
        )
    special = special or {"start_id": 2, "end_id": 3, "pad_id": 0}
    if source_texts is not None and len(source_texts) != len(source_ids):
        raise ValueError(
            f"`source_texts` must hold one text per row of `source_ids`. Received "
            f"{len(source_texts)} texts for {len(source_ids)} rows."
        )
    if references is not None and len(references) != len(source_ids):
        raise ValueError(
            f"`references` must hold one entry per row of `source_ids`. Received "
            f"{len(references)} for {len(source_ids)} rows."
        )
    if round_to_int8_grid:
        from tf_distill.tflite import round_to_int8_grid as round_weights

        round_weights(model)
    output_dir = Path(output_dir)
    final = output_dir / "export"
    tmp = output_dir / "export.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        if classifier:
            metadata = _export_classifier_into(model, tmp, source_ids, formats, int8_mode)
        else:
            metadata = _export_into(
                model,
                tmp,
                source_ids,
                max_length,
                formats,
                special,
                int8_mode,
                beam_size if beam_size and beam_size > 1 else None,
                length_penalty,
            )
            if references is not None and detokenize is not None:
                _add_bleu(metadata, references, detokenize)
        outputs = metadata.pop("_outputs", None)
        _check_parity(metadata["parity"], min_sequence_agreement, max_bleu_drop)
        if tokenizer_dir is not None:
            shutil.copytree(tokenizer_dir, tmp / "tokenizer")
        metadata.update(extra_metadata or {})
        (tmp / "export.json").write_text(json.dumps(metadata, indent=2) + "\n")
        if not classifier:
            _write_bundle(tmp, metadata, source_ids, outputs, detokenize, source_texts)
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return metadata


MANIFEST_VERSION = 1


def _write_bundle(directory, metadata, source_ids, outputs, detokenize, source_texts):
    """`manifest.json` and `golden.jsonl` of a translation export (see `export_student`)."""
    special = metadata["special_token_ids"]
    tokenizers = {}
    for side in ("source", "target"):
        settings = directory / "tokenizer" / f"{side}_tokenizer.json"
        if settings.is_file():
            rules = json.loads(settings.read_text(encoding="utf-8"))
            rules["vocabulary_file"] = f"tokenizer/{rules['vocabulary_file']}"
            tokenizers[side] = rules
    output_length = int(outputs["keras"].shape[1])
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "tf_distill_version": __version__,
        "task": "translation",
        "signatures": {
            "translate": {
                "decoding": "greedy, inside the graph",
                "inputs": [
                    {
                        "name": "encoder_token_ids",
                        "dtype": "int32",
                        "shape": [-1, -1],
                        "meaning": "source ids, padded at the end with pad_id; at most "
                        "max_source_tokens per row",
                    }
                ],
                "outputs": [
                    {
                        "name": "output_token_ids",
                        "dtype": "int32",
                        "shape": [-1, output_length],
                        "meaning": "target ids without the start id; read up to and "
                        "including the first end_id, ignore what follows",
                    }
                ],
            }
        },
        "special_token_ids": special,
        "beam_size": metadata.get("beam_size"),
        "length_penalty": metadata.get("length_penalty"),
        "max_source_tokens": int(metadata["max_sequence_length"]) - 1,
        "max_output_tokens": int(metadata["max_decode_length"]),
        "tokenizers": tokenizers,
        "tokenization": (
            "Unicode NFC; split on whitespace; case-fold each chunk if lowercase is true; "
            "split it into words and punctuation marks as keras-hub's WordPieceTokenizer "
            "does (every punctuation mark and every CJK character is a word of its own); "
            "cut each word into vocabulary pieces by greedy longest match from the left "
            "(pieces after the first carry suffix_indicator); a word that cannot be cut "
            "becomes one [UNK]. The source gets no start or end id. Detokenize by "
            "joining pieces and words with the usual spacing around punctuation. "
            "golden.jsonl holds the ids to check an implementation against."
        ),
        "files": {
            name: {
                "path": entry["path"],
                "bytes": entry["bytes"],
                "signature": entry.get("signature"),
                "quality": metadata["parity"].get(name),
            }
            for name, entry in metadata["files"].items()
        },
        "golden_file": "golden.jsonl",
    }
    if metadata.get("beam_size"):
        beam = dict(manifest["signatures"]["translate"])
        beam["decoding"] = (
            f"beam search inside the graph: {metadata['beam_size']} beams, GNMT length "
            f"penalty {metadata['length_penalty']}, the best hypothesis out"
        )
        manifest["signatures"]["translate_beam"] = beam
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    with open(directory / "golden.jsonl", "w", encoding="utf-8") as golden:
        for i, row in enumerate(source_ids):
            line = {"source_ids": row[: max(1, int((row != 0).sum()))].tolist()}
            if source_texts is not None:
                line["source_text"] = source_texts[i]
            line["outputs"] = {}
            for fmt, ids in outputs.items():
                entry = {"output_ids": np.asarray(ids[i]).tolist()}
                if detokenize is not None:
                    entry["output_text"] = detokenize(np.asarray(ids[i : i + 1]))[0]
                line["outputs"][fmt] = entry
            golden.write(json.dumps(line, ensure_ascii=False) + "\n")


def _calibration_inputs(variant, int8_mode, signature, rows):
    """Representative inputs for a full int8 file: the parity rows, trimmed as an app
    sends them; None for every other file."""
    if variant != "tflite_int8" or int8_mode != "full":
        return None
    name = SIGNATURE_INPUTS[signature]
    return [{name: row[None, : max(1, int((row != 0).sum()))]} for row in rows]


def _export_into(
    model,
    directory,
    source_ids,
    max_length,
    formats,
    special,
    int8_mode,
    beam_size=None,
    length_penalty=0.6,
):
    metadata = _start_metadata(model, directory, "translation", "translate", int8_mode)
    metadata.update(
        special_token_ids=special,
        max_decode_length=int(max_length),
        max_sequence_length=seq2seq_parts(model).max_sequence_length,
    )
    reference = _decode_rows(
        lambda ids: decoding.greedy_decode(model, ids, max_length, **special), source_ids
    )
    module = _signatures_module(model, max_length, special, beam_size, length_penalty)
    signatures = {"translate": module.translate, "forward": module.forward}
    if beam_size:
        signatures["translate_beam"] = module.translate_beam
        metadata.update(beam_size=int(beam_size), length_penalty=float(length_penalty))
    # The SavedModel is also the source of the TFLite conversions.
    path = directory / "saved_model"
    tf.saved_model.save(module, str(path), signatures=signatures)
    if "saved_model" in formats:
        loaded = tf.saved_model.load(str(path))
        translate = loaded.signatures["translate"]
        got = _decode_rows(
            lambda ids: translate(encoder_token_ids=tf.constant(ids))["output_token_ids"],
            source_ids,
        )
        parity = _agreement(reference, got)
        decoder_ids = np.concatenate(
            [np.full((len(source_ids), 1), special["start_id"], np.int32), reference[:, :-1]], 1
        )
        keras_logits = model(
            {"encoder_token_ids": source_ids, "decoder_token_ids": decoder_ids}, training=False
        )
        sm_logits = loaded.signatures["forward"](
            encoder_token_ids=tf.constant(source_ids), decoder_token_ids=tf.constant(decoder_ids)
        )["logits"]
        parity["max_abs_logit_diff"] = float(np.max(np.abs(keras_logits - sm_logits)))
        metadata["parity"]["saved_model"] = parity
        metadata["files"]["saved_model"] = {"path": "saved_model", "bytes": _size(path)}
        _LOG.info(f"export: saved_model {parity}")
    if beam_size:
        beam_reference = _decode_rows(
            lambda ids: decoding.beam_search(
                model, ids, max_length, beam_size, length_penalty, **special
            ),
            source_ids,
        )
        metadata["_outputs"] = {"keras_beam": beam_reference}  # the greedy call adds "keras"
        _tflite_files(
            path,
            directory,
            formats,
            int8_mode,
            "translate_beam",
            source_ids,
            beam_reference,
            _agreement,
            metadata,
            suffix="_beam",
            keep_saved_model=True,
        )
    _tflite_files(
        path,
        directory,
        formats,
        int8_mode,
        "translate",
        source_ids,
        reference,
        _agreement,
        metadata,
    )
    return metadata


def _convert_checked(saved_model_dir, variant, signature, calibration, path):
    """Converts, refuses any op a stock runtime lacks, writes the file; returns its bytes
    and its op names."""
    content = convert_tflite(saved_model_dir, variant, signature, calibration)
    ops = tflite_op_names(content)
    bad_ops = [op for op in ops if op.startswith("Flex") or op not in builtin_names()]
    if bad_ops:
        raise ExportError(f"{path.name} holds non-builtin ops {bad_ops}; it would not run.")
    path.write_bytes(content)
    return content, ops


def _classify_module(model):
    @tf.function(input_signature=[tf.TensorSpec((None, None), tf.int32, "token_ids")])
    def classify(token_ids):
        logits = tf.cast(model({"token_ids": token_ids}, training=False), tf.float32)
        return {"probabilities": tf.nn.softmax(logits, axis=-1)}

    module = tf.Module()
    module.weights = [weight.value for weight in model.weights]  # as in _signatures_module
    module.classify = classify
    return module


def _label_agreement(reference, candidate):
    return {
        "label_agreement": round(float(np.mean(reference.argmax(-1) == candidate.argmax(-1))), 4),
        "max_abs_probability_diff": float(np.max(np.abs(reference - candidate))),
    }


def _export_classifier_into(model, directory, token_ids, formats, int8_mode):
    metadata = _start_metadata(model, directory, "classification", "classify", int8_mode)
    metadata.update(
        num_classes=int(model.outputs[0].shape[-1]),
        max_sequence_length=int(classifier_embedding(model).max_sequence_length),
    )
    module = _classify_module(model)
    reference = _decode_rows(
        lambda ids: module.classify(tf.constant(ids))["probabilities"], token_ids
    )
    path = directory / "saved_model"
    tf.saved_model.save(module, str(path), signatures={"classify": module.classify})
    if "saved_model" in formats:
        classify = tf.saved_model.load(str(path)).signatures["classify"]
        got = _decode_rows(
            lambda ids: classify(token_ids=tf.constant(ids))["probabilities"], token_ids
        )
        metadata["parity"]["saved_model"] = parity = _label_agreement(reference, got)
        metadata["files"]["saved_model"] = {"path": "saved_model", "bytes": _size(path)}
        _LOG.info(f"export: saved_model {parity}")
    _tflite_files(
        path,
        directory,
        formats,
        int8_mode,
        "classify",
        token_ids,
        reference,
        _label_agreement,
        metadata,
    )
    return metadata


def _start_metadata(model, directory, task, signature, int8_mode):
    """Saves `student.keras` into `directory`; returns the metadata every export shares."""
    model.save(directory / "student.keras")
    return {
        "tf_distill_version": __version__,
        "tensorflow_version": tf.__version__,
        "task": task,
        "signature": signature,
        "int8_mode": int8_mode,
        "files": {"keras": {"path": "student.keras", "bytes": _size(directory / "student.keras")}},
        "parity": {},
    }


def _tflite_files(
    saved_model_dir,
    directory,
    formats,
    int8_mode,
    signature,
    rows,
    reference,
    compare,
    metadata,
    suffix="",
    keep_saved_model=False,
):
    """Converts each TFLite variant in `formats` from the SavedModel, runs it on `rows` one
    at a time and compares with `reference`; drops the SavedModel if it was not asked for
    (unless `keep_saved_model`). `suffix` names the files and entries of a second
    signature (`_beam`: `student_int8_beam.tflite`, `tflite_int8_beam`)."""
    metadata.setdefault("_outputs", {})
    if not suffix:
        metadata["_outputs"]["keras"] = reference
    for variant, filename in TFLITE_VARIANTS.items():
        if variant not in formats:
            continue
        start = time.perf_counter()
        calibration = _calibration_inputs(variant, int8_mode, signature, rows)
        name = variant + suffix
        filename = filename.replace(".tflite", f"{suffix}.tflite")
        content, ops = _convert_checked(
            saved_model_dir, variant, signature, calibration, directory / filename
        )
        got = _decode_rows(tflite_runner(content, signature=signature), rows)
        metadata["_outputs"][name] = got
        parity = compare(reference, got)
        parity["conversion_s"] = round(time.perf_counter() - start, 2)
        metadata["parity"][name] = parity
        metadata["files"][name] = {
            "path": filename,
            "bytes": len(content),
            "ops": ops,
            "signature": signature,
        }
        _LOG.info(f"export: {filename} ({len(content):,} bytes) {parity}")
    if "saved_model" not in formats and not keep_saved_model:
        shutil.rmtree(saved_model_dir)


def _add_bleu(metadata, references, detokenize):
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


def _check_parity(parities, min_agreement, max_bleu_drop=0.5):
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


def _size(path):
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size
