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
from pathlib import Path

import numpy as np
import tensorflow as tf

from tf_distill import decoding
from tf_distill import run_dir as run_dir_lib
from tf_distill.evaluation import file_size
from tf_distill.export.bundle import write_bundle
from tf_distill.export.parity import (
    add_bleu,
    check_parity,
    decode_rows,
    label_parity,
    sequence_parity,
)
from tf_distill.export.tflite_files import tflite_files
from tf_distill.models import classifier_embedding, seq2seq_parts
from tf_distill.version import __version__

_LOG = logging.getLogger(__name__)

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
                add_bleu(metadata, references, detokenize)
        outputs = metadata.pop("_outputs", None)
        check_parity(metadata["parity"], min_sequence_agreement, max_bleu_drop)
        if tokenizer_dir is not None:
            shutil.copytree(tokenizer_dir, tmp / "tokenizer")
        metadata.update(extra_metadata or {})
        (tmp / "export.json").write_text(json.dumps(metadata, indent=2) + "\n")
        if not classifier:
            write_bundle(tmp, metadata, source_ids, outputs, detokenize, source_texts)
        run_dir_lib.replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return metadata


def _signatures_module(model, max_length, special, beam_size=None, length_penalty=0.6, lean=True):
    # The lean steps (tf_distill.decoding.lean), greedy and beam: the same decode with
    # about half the TFLite ops per token; the parity checks hold it to the Keras decode.
    translate = decoding.make_translate_function(model, max_length, lean=lean, **special)

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
            model,
            max_length,
            beam_size=beam_size,
            length_penalty=length_penalty,
            lean=lean,
            **special,
        )

        @tf.function(input_signature=[tf.TensorSpec((None, None), tf.int32, "encoder_token_ids")])
        def translate_beam(encoder_token_ids):
            return {"output_token_ids": beam(encoder_token_ids)}

        module.translate_beam = translate_beam
    return module


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
    reference = decode_rows(
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
        got = decode_rows(
            lambda ids: translate(encoder_token_ids=tf.constant(ids))["output_token_ids"],
            source_ids,
        )
        parity = sequence_parity(reference, got)
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
        metadata["files"]["saved_model"] = {"path": "saved_model", "bytes": file_size(path)}
        _LOG.info(f"export: saved_model {parity}")
    if beam_size:
        beam_reference = decode_rows(
            lambda ids: decoding.beam_search(
                model, ids, max_length, beam_size, length_penalty, **special
            ),
            source_ids,
        )
        metadata["_outputs"] = {"keras_beam": beam_reference}  # the greedy call adds "keras"
        tflite_files(
            path,
            directory,
            formats,
            int8_mode,
            "translate_beam",
            source_ids,
            beam_reference,
            sequence_parity,
            metadata,
            suffix="_beam",
            keep_saved_model=True,
        )
    tflite_files(
        path,
        directory,
        formats,
        int8_mode,
        "translate",
        source_ids,
        reference,
        sequence_parity,
        metadata,
    )
    return metadata


def _classify_module(model):
    @tf.function(input_signature=[tf.TensorSpec((None, None), tf.int32, "token_ids")])
    def classify(token_ids):
        logits = tf.cast(model({"token_ids": token_ids}, training=False), tf.float32)
        return {"probabilities": tf.nn.softmax(logits, axis=-1)}

    module = tf.Module()
    module.weights = [weight.value for weight in model.weights]  # as in _signatures_module
    module.classify = classify
    return module


def _export_classifier_into(model, directory, token_ids, formats, int8_mode):
    metadata = _start_metadata(model, directory, "classification", "classify", int8_mode)
    metadata.update(
        num_classes=int(model.outputs[0].shape[-1]),
        max_sequence_length=int(classifier_embedding(model).max_sequence_length),
    )
    module = _classify_module(model)
    reference = decode_rows(
        lambda ids: module.classify(tf.constant(ids))["probabilities"], token_ids
    )
    path = directory / "saved_model"
    tf.saved_model.save(module, str(path), signatures={"classify": module.classify})
    if "saved_model" in formats:
        classify = tf.saved_model.load(str(path)).signatures["classify"]
        got = decode_rows(
            lambda ids: classify(token_ids=tf.constant(ids))["probabilities"], token_ids
        )
        metadata["parity"]["saved_model"] = parity = label_parity(reference, got)
        metadata["files"]["saved_model"] = {"path": "saved_model", "bytes": file_size(path)}
        _LOG.info(f"export: saved_model {parity}")
    tflite_files(
        path,
        directory,
        formats,
        int8_mode,
        "classify",
        token_ids,
        reference,
        label_parity,
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
        "files": {
            "keras": {"path": "student.keras", "bytes": file_size(directory / "student.keras")}
        },
        "parity": {},
    }
