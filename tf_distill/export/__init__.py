"""Export of a trained student: `.keras`, SavedModel and TFLite, each checked against Keras.

- `student`: `export_student`, the signatures it exports.
- `tflite_files`: conversion of each TFLite variant, builtin ops only.
- `parity`: the agreement and quality checks every artifact must pass.
- `bundle`: `manifest.json` and `golden.jsonl`, the on-device contract.
"""

from tf_distill.errors import ExportError
from tf_distill.export.student import (
    INT8_MODES,
    _signatures_module,
    export_student,
    is_classifier,
)
from tf_distill.export.tflite_files import TFLITE_VARIANTS
from tf_distill.tflite import builtin_names, convert_tflite, tflite_op_names, tflite_runner

__all__ = [
    "INT8_MODES",
    "TFLITE_VARIANTS",
    "ExportError",
    "_signatures_module",
    "builtin_names",
    "convert_tflite",
    "export_student",
    "is_classifier",
    "tflite_op_names",
    "tflite_runner",
]
