"""tf_distill: teacher-student knowledge distillation of Transformers (Keras 3 / TensorFlow).

Importing the package is cheap: TensorFlow (about 5 s to import on a 2-core machine) loads
only when a name that needs it is first used, so `tf-distill --help` and config errors
answer at once. Loading a `.keras` file still works right after `import tf_distill`: the
custom layers are registered with Keras as soon as Keras itself is imported.
"""

import importlib
import importlib.abc
import importlib.util
import os
import sys

from tf_distill.version import __version__

# TensorFlow's C++ start-up chatter (CUDA probes, CPU feature notes) buries our own output.
# Only applies if TensorFlow is not imported yet; a user's explicit setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


class TFDistillWarning(UserWarning):
    """Warnings issued by tf_distill itself (the test suite turns them into errors)."""


# Public name -> module that defines it. Modules load on first access.
_LAZY = {
    "layers": "tf_distill.layers",
    "models": "tf_distill.models",
    "build_transformer": "tf_distill.models",
    "build_classifier": "tf_distill.models",
    "Distiller": "tf_distill.distiller",
    "losses": "tf_distill.losses",
    "decoding": "tf_distill.decoding",
    "data": "tf_distill.data",
}
# Modules whose import registers every serializable tf_distill class with Keras.
_REGISTERING_MODULES = ("tf_distill.layers",)


def __getattr__(name):
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'tf_distill' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if module_name.endswith("." + name) else getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


def _register_with_keras():
    for module_name in _REGISTERING_MODULES:
        importlib.import_module(module_name)


class _RegisterOnKerasImport(importlib.abc.MetaPathFinder):
    """Registers tf_distill's layers once both `keras` and `tensorflow` finish importing.

    Keras resolves `"tf_distill>Encoder"` in a `.keras` file from its registry, so the
    classes must be registered before `keras.saving.load_model` runs; this does it without
    making `import tf_distill` pay for TensorFlow. Each of the two packages imports the
    other part-way through its own import, so registration waits for whichever finishes
    last.
    """

    watched = ("keras", "tensorflow")

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self.watched or self._busy:
            return None
        self._busy = True
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._busy = False
        if spec is None or spec.loader is None:
            return spec
        original_exec = spec.loader.exec_module

        def exec_module(module):
            original_exec(module)
            if self._all_imported(finished=fullname):
                _register_with_keras()

        spec.loader.exec_module = exec_module
        return spec

    _busy = False

    def _all_imported(self, finished):
        for name in self.watched:
            if name == finished:
                continue
            module = sys.modules.get(name)
            if module is None or getattr(module.__spec__, "_initializing", False):
                return False
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        return True


if "keras" in sys.modules and "tensorflow" in sys.modules:
    _register_with_keras()
else:
    sys.meta_path.insert(0, _RegisterOnKerasImport())

__all__ = ["TFDistillWarning", "__version__", *_LAZY]
