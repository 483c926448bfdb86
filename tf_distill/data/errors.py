"""Bad input data (`DataError`, defined with the others in tf_distill.errors) and where."""

from tf_distill.errors import DataError  # noqa: F401  (re-exported for the readers)


def located(path, line_number=None):
    """`'path'` or `'path', line N` for the start of an error message."""
    where = f"'{path}'"
    if line_number is not None:
        where += f", line {line_number}"
    return where
