"""The one exception type for bad input data."""


class DataError(ValueError):
    """Bad input data: a missing or empty file, a malformed line, a split too large.

    A `ValueError`, so callers that already catch `ValueError` for bad configuration
    (the CLI turns both into one line on stderr) need nothing new. The message names the
    file and the 1-based line number where there is one.
    """


def located(path, line_number=None):
    """`'path'` or `'path', line N` for the start of an error message."""
    where = f"'{path}'"
    if line_number is not None:
        where += f", line {line_number}"
    return where
