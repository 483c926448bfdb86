"""Run configuration: typed sections, strict JSON loading, `--set section.key=value` overrides.

Keys are named like the constructor arguments they feed (`num_layers`, `hidden_dim`,
`alpha`, ...). Unknown keys, wrong types and impossible values raise `ConfigError` with one
line that names the key, what was received and what is allowed. Nothing here imports
TensorFlow, so a bad config is reported at once.

- `sections`: the dataclasses of every section, with their defaults.
- `loading`: `load`, `from_dict`, `apply_override`.
- `validation`: `validate`, the checks across keys.
"""

from tf_distill.config.loading import apply_override, from_dict, load
from tf_distill.config.sections import (
    DATA_SOURCES,
    EXPORT_FORMATS,
    SECTIONS,
    Config,
    DataConfig,
    DistillationConfig,
    EvaluationConfig,
    ExportConfig,
    ModelConfig,
    TokenizerConfig,
    TrainingConfig,
    resolve_jit_compile,
    resolve_mixed_precision,
    teacher_count,
    teacher_paths,
)
from tf_distill.config.validation import validate
from tf_distill.errors import ConfigError

__all__ = [
    "DATA_SOURCES",
    "EXPORT_FORMATS",
    "SECTIONS",
    "Config",
    "ConfigError",
    "DataConfig",
    "DistillationConfig",
    "EvaluationConfig",
    "ExportConfig",
    "ModelConfig",
    "TokenizerConfig",
    "TrainingConfig",
    "apply_override",
    "from_dict",
    "load",
    "resolve_jit_compile",
    "resolve_mixed_precision",
    "teacher_count",
    "teacher_paths",
    "validate",
]
