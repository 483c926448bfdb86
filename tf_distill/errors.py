"""Every exception and warning tf_distill raises on purpose, in one place.

`TFDistillError` is the base of every problem the user can fix (a bad config, data file,
model file, output path or command-line input): its message is one line that names the
problem and the fix, and the command line prints it and exits with status 2. `ExportError`
is apart from it: the input was fine but an exported file did not match the Keras model
(status 1). The module imports nothing, so any part of the package can use it.
"""


class TFDistillError(Exception):
    """A problem the user can fix, described in one line that says how."""


class ConfigError(TFDistillError, ValueError):
    """A configuration problem: an unknown key, a wrong type, an impossible value."""


class DataError(TFDistillError, ValueError):
    """Bad input data: a missing or empty file, a malformed line, a split too large.

    The message names the file and the 1-based line number where there is one.
    """


class TranslateError(TFDistillError, ValueError):
    """A problem with the model directory or the sentences given to `translate`."""


class ExportError(RuntimeError):
    """An export that could not be completed or failed its parity checks."""


class TFDistillWarning(UserWarning):
    """Warnings issued by tf_distill itself (the test suite turns them into errors)."""
