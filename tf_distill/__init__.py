"""tf_distill: teacher-student knowledge distillation of Transformers (Keras 3 / TensorFlow).

Importing the package is cheap and changes nothing outside it: TensorFlow (about 5 s to
import on a 2-core machine) loads only when a name that needs it is first used, so
`tf-distill --help` and config errors answer at once. No environment variable is set and
no import hook is installed; the command line alone quiets TensorFlow's start-up log.

Keras finds tf_distill's layers in a `.keras` file once they are registered, which happens
when any of the names below is first used (`tf_distill.Distiller`, `tf_distill.layers`,
...) or through `tf_distill.load_model(path)`, the one-call way to read a saved model.
"""

import importlib

from tf_distill.errors import (
    ConfigError,
    DataError,
    ExportError,
    TFDistillError,
    TFDistillWarning,
    TranslateError,
)
from tf_distill.version import __version__

# Public name -> module that defines it. Modules load on first access.
_LAZY = {
    "layers": "tf_distill.layers",
    "models": "tf_distill.models",
    "build_transformer": "tf_distill.models",
    "build_classifier": "tf_distill.models",
    "Distiller": "tf_distill.distiller",
    "losses": "tf_distill.losses",
    "features": "tf_distill.features",
    "model_features": "tf_distill.features",
    "init_from_teacher": "tf_distill.initialization",
    "decoding": "tf_distill.decoding",
    "translate_texts": "tf_distill.decoding",
    "data": "tf_distill.data",
    "evaluation": "tf_distill.evaluation",
    "export": "tf_distill.export",
    "sequence_kd": "tf_distill.sequence_kd",
    "teacher_cache": "tf_distill.teacher_cache",
    "tflite": "tf_distill.tflite",
    "transfer": "tf_distill.transfer",
    "runtime": "tf_distill.runtime",
    "config": "tf_distill.config",
    "errors": "tf_distill.errors",
}
# Names that need no Keras (the device runtime must not import it): no registration.
_KERAS_FREE = {"runtime", "config", "errors", "data"}


def register_keras_objects():
    """Registers every serializable tf_distill class with Keras (idempotent)."""
    importlib.import_module("tf_distill.layers")


def load_model(path, **kwargs):
    """`keras.saving.load_model` for a `.keras` file holding tf_distill layers.

    Registers the layers first, so it works in a fresh process; extra keyword arguments go
    to Keras (`compile=False`, `custom_objects=...`).
    """
    register_keras_objects()
    import keras

    return keras.saving.load_model(path, **kwargs)


def __getattr__(name):
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'tf_distill' has no attribute {name!r}")
    if name not in _KERAS_FREE:
        register_keras_objects()  # whatever needs Keras also needs the layers registered
    module = importlib.import_module(module_name)
    value = module if module_name.endswith("." + name) else getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ConfigError",
    "DataError",
    "ExportError",
    "TFDistillError",
    "TFDistillWarning",
    "TranslateError",
    "__version__",
    "load_model",
    "register_keras_objects",
    *_LAZY,
]
