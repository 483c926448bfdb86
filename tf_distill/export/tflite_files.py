"""TFLite files of an export: converted from the SavedModel with builtin ops only, run
one sentence at a time, and compared with the Keras model's outputs."""

import logging
import shutil
import time

from tf_distill.errors import ExportError
from tf_distill.export.parity import decode_rows
from tf_distill.tflite import (
    SIGNATURE_INPUTS,
    builtin_names,
    convert_tflite,
    tflite_op_names,
    tflite_runner,
)

_LOG = logging.getLogger(__name__)

TFLITE_VARIANTS = {
    "tflite_fp32": "student_fp32.tflite",
    "tflite_fp16": "student_fp16.tflite",
    "tflite_int8": "student_int8.tflite",
}


def calibration_inputs(variant, int8_mode, signature, rows):
    """Representative inputs for a full int8 file: the parity rows, trimmed as an app
    sends them; None for every other file."""
    if variant != "tflite_int8" or int8_mode != "full":
        return None
    name = SIGNATURE_INPUTS[signature]
    return [{name: row[None, : max(1, int((row != 0).sum()))]} for row in rows]


def convert_checked(saved_model_dir, variant, signature, calibration, path):
    """Converts, refuses any op a stock runtime lacks, writes the file; returns its bytes
    and its op names."""
    content = convert_tflite(saved_model_dir, variant, signature, calibration)
    ops = tflite_op_names(content)
    bad_ops = [op for op in ops if op.startswith("Flex") or op not in builtin_names()]
    if bad_ops:
        raise ExportError(f"{path.name} holds non-builtin ops {bad_ops}; it would not run.")
    path.write_bytes(content)
    return content, ops


def tflite_files(
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
        calibration = calibration_inputs(variant, int8_mode, signature, rows)
        name = variant + suffix
        filename = filename.replace(".tflite", f"{suffix}.tflite")
        content, ops = convert_checked(
            saved_model_dir, variant, signature, calibration, directory / filename
        )
        got = decode_rows(tflite_runner(content, signature=signature), rows)
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
