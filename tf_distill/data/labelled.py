"""Labelled text for classification: a TSV/CSV reader and stratified splits.

`read_labelled` reads one text and one label per row from a tab- or comma-separated file,
with the columns given by 0-based index or by header name, and maps the labels to ids.
`stratified_split` cuts the examples into train / valid / test with every class in the same
proportion in each split, and identical texts always in one split (SMS and review sets hold
repeats; a repeat in train and test would reward memorising).
"""

import csv
import random
from typing import NamedTuple

from tf_distill.data.errors import DataError, located
from tf_distill.data.readers import _check_file, _lines, _preview


class LabelledTexts(NamedTuple):
    """Texts with integer labels; `label_names[label]` is the label as written in the file."""

    texts: list
    labels: list
    label_names: list


class LabelledSplits(NamedTuple):
    """Three `LabelledTexts` that share one `label_names`."""

    train: LabelledTexts
    valid: LabelledTexts
    test: LabelledTexts


def delimiter_for(path, delimiter=None):
    """The column delimiter: the one given, else `,` for a `.csv` file and tab otherwise."""
    if delimiter is not None:
        return delimiter
    return "," if str(path).lower().endswith(".csv") else "\t"


def read_labelled(
    path, text_column=1, label_column=0, header=None, delimiter=None, label_names=None
):
    """Reads `(text, label)` rows from a TSV or CSV file.

    Tab-separated files are read literally (quotes are ordinary characters, as in the SMS
    Spam Collection); comma-separated ones with CSV quoting (`"a, b"` is one field).

    Args:
        path: the file, UTF-8.
        text_column, label_column: 0-based column index, or a header name (then the file
            must have a header row).
        header: True (the first row names the columns), False (data from the first row),
            or None: a header exists when a column is given by name.
        delimiter: the column separator; default `,` for `.csv`, tab otherwise.
        label_names: the label set in id order (e.g. the one saved with a model); a label
            outside it is an error. Default: the sorted distinct labels of the file.

    Returns:
        `LabelledTexts(texts, labels, label_names)`.

    Raises:
        DataError: naming the file and line: missing or empty file, not UTF-8, too few
        columns, an empty text or label, an unknown column name or label.
    """
    path = _check_file(path)
    delimiter = delimiter_for(path, delimiter)
    by_name = isinstance(text_column, str) or isinstance(label_column, str)
    if header is None:
        header = by_name
    if by_name and not header:
        raise DataError(
            f"{located(path)}: columns given by name ({text_column!r}, {label_column!r}) "
            "need a header row; set data.header to true or give column numbers."
        )
    rows = _rows(path, delimiter)
    text_index = label_index = None
    found = []
    for number, columns in rows:
        if header and text_index is None:
            names = [c.strip() for c in columns]
            text_index = _column_index(path, number, names, text_column, "text")
            label_index = _column_index(path, number, names, label_column, "label")
            continue
        if text_index is None:
            text_index, label_index = int(text_column), int(label_column)
        need = max(text_index, label_index) + 1
        if len(columns) < need:
            raise DataError(
                f"{located(path, number)}: expected at least {need} columns separated by "
                f"{_delimiter_name(delimiter)}, found {len(columns)}: "
                f"{_preview(delimiter.join(columns))}"
            )
        label = columns[label_index].strip()
        text = columns[text_index].strip()
        if not label:
            raise DataError(f"{located(path, number)}: the label is empty.")
        if not text:
            raise DataError(f"{located(path, number)}: the text is empty.")
        found.append((number, text, label))
    if not found:
        raise DataError(f"{located(path)}: the file has no labelled rows.")
    if label_names is None:
        label_names = sorted({label for _, _, label in found}, key=_label_order)
    label_names = list(label_names)
    ids = {name: i for i, name in enumerate(label_names)}
    labels = []
    for number, _, label in found:
        if label not in ids:
            raise DataError(
                f"{located(path, number)}: label {label!r} is not one of {label_names}."
            )
        labels.append(ids[label])
    if len(label_names) < 2:
        raise DataError(
            f"{located(path)}: every row has the label {label_names[0]!r}; a classifier needs "
            "at least two classes."
        )
    return LabelledTexts([text for _, text, _ in found], labels, label_names)


def _label_order(label):
    """Numeric labels in numeric order (2 before 10), others alphabetically after them."""
    try:
        return (0, float(label), "")
    except ValueError:
        return (1, 0.0, label)


def _delimiter_name(delimiter):
    return {"\t": "tabs", ",": "commas", ";": "semicolons"}.get(delimiter, repr(delimiter))


def _rows(path, delimiter):
    """Yields `(line_number, columns)` for each non-blank row."""
    lines = ((number, text) for number, text in _lines(path) if text.strip())
    if delimiter == "\t":
        for number, text in lines:
            yield number, text.split("\t")
        return
    numbers = []

    def texts():
        for number, text in lines:
            numbers.append(number)
            yield text

    try:
        for columns in csv.reader(texts(), delimiter=delimiter):
            yield numbers[-1], columns
    except csv.Error as error:
        raise DataError(f"{located(path, numbers[-1] if numbers else None)}: {error}.") from None


def _column_index(path, number, names, column, role):
    if isinstance(column, str):
        if column not in names:
            raise DataError(
                f"{located(path, number)}: no column named {column!r} for the {role} in the "
                f"header {names}. Set data.{role}_column to one of them."
            )
        return names.index(column)
    if column >= len(names):
        raise DataError(
            f"{located(path, number)}: data.{role}_column is {column} but the header has "
            f"{len(names)} columns {names}."
        )
    return int(column)


def stratified_split(data, valid_size, test_size, seed=0):
    """Splits `LabelledTexts` into train / valid / test, stratified by label.

    Sizes are a fraction in [0, 1) or a count of examples, of the whole set. Each class
    gives each split its share (rounded), so a 13% minority class is about 13% of every
    split. Identical texts form one group that goes to a single split (the label of its
    first occurrence decides its class for the stratification).

    Returns:
        `LabelledSplits(train, valid, test)`; examples keep their input order in a split.
    """
    total = len(data.texts)
    if total == 0:
        raise DataError("Cannot split an empty set of labelled texts.")
    counts = [
        _size(name, size, total) for name, size in (("valid", valid_size), ("test", test_size))
    ]
    if sum(counts) >= total:
        raise DataError(
            f"The valid and test splits ({counts[0]} + {counts[1]} examples) leave nothing "
            f"for train: the data has {total} examples. Ask for smaller splits."
        )
    groups = {}
    for index, text in enumerate(data.texts):
        groups.setdefault(text, []).append(index)
    by_class = {}
    for text, members in groups.items():
        by_class.setdefault(data.labels[members[0]], []).append(text)
    rng = random.Random(seed)
    assignment = {}
    for label in sorted(by_class):
        texts = by_class[label]
        rng.shuffle(texts)
        size = sum(len(groups[t]) for t in texts)
        position = 0
        for split, count in (("test", counts[1]), ("valid", counts[0])):
            wanted = round(count * size / total)
            taken = 0
            while taken < wanted and position < len(texts) - 1:
                assignment[texts[position]] = split
                taken += len(groups[texts[position]])
                position += 1
    parts = {"train": ([], []), "valid": ([], []), "test": ([], [])}
    for text, label in zip(data.texts, data.labels, strict=True):
        texts, labels = parts[assignment.get(text, "train")]
        texts.append(text)
        labels.append(label)
    return LabelledSplits(
        *(
            LabelledTexts(*parts[name], list(data.label_names))
            for name in ("train", "valid", "test")
        )
    )


def _size(name, size, total):
    if isinstance(size, bool) or not isinstance(size, (int, float)) or size < 0:
        raise DataError(f"data.{name}_size must be a number >= 0. Received: {size!r}.")
    if isinstance(size, float):
        if size >= 1:
            raise DataError(f"A fractional data.{name}_size must be below 1. Received: {size}.")
        return round(size * total)
    return int(size)


MASK_WORD = "[MASK]"


def augment(texts, copies, seed=0, mask=0.1, swap=0.1, span=0.2, exclude=()):
    """Perturbed copies of `texts` for a transfer set (after Tang et al., 2019): in each
    copy every word is masked with probability `mask` (replaced by the marker word
    `[MASK]`) or swapped for a random word of `texts` with probability
    `swap`; with probability `span` only a random contiguous span of at least half the
    words is kept. Copies equal to a text of `exclude` or to an earlier copy are dropped.

    Returns:
        A list of distinct new texts, deterministic for a seed.
    """
    rng = random.Random(f"augment-{seed}")
    words = [text.split() for text in texts]
    pool = [w for row in words for w in row]
    seen = set(exclude) | set(texts)
    out = []
    for _ in range(int(copies)):
        for row in words:
            if not row:
                continue
            new = []
            for word in row:
                draw = rng.random()
                new.append(
                    MASK_WORD if draw < mask else rng.choice(pool) if draw < mask + swap else word
                )
            if len(new) > 2 and rng.random() < span:
                length = rng.randint((len(new) + 1) // 2, len(new))
                start = rng.randint(0, len(new) - length)
                new = new[start : start + length]
            text = " ".join(new)
            if text not in seen:
                seen.add(text)
                out.append(text)
    return out
