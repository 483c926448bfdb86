"""Readers for the user's own data: TSV pair files, line-aligned files, TFDS, classification TSV.

Every reader returns plain Python lists, checks the input as it reads, and raises one
`DataError` naming the file and 1-based line for the first problem it finds: a missing or
empty file, bytes that are not UTF-8, a line with too few tab-separated columns, or an
empty sentence. Blank lines are skipped in TSV files; surrounding whitespace is trimmed.
"""

import itertools
import os
from typing import NamedTuple

from tf_distill.data.errors import DataError, located


def _check_file(path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"{located(path)}: file not found.")
    if os.path.isdir(path):
        raise DataError(f"{located(path)}: is a directory, expected a text file.")
    return path


def _lines(path):
    """Yields `(line_number, text)` for every line of a UTF-8 file, without the newline."""
    path = _check_file(path)
    with open(path, "rb") as file:
        for number, raw in enumerate(file, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):  # a byte order mark
                raw = raw[3:]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                bad = raw[error.start : error.start + 1].hex()
                raise DataError(
                    f"{located(path, number)}: bytes that are not UTF-8 (0x{bad} at byte "
                    f"{error.start + 1} of the line). Re-save the file as UTF-8."
                ) from None
            yield number, text.rstrip("\r\n")


def _columns(path, need, description):
    """Yields `(line_number, columns)` for each non-blank line with at least `need` columns."""
    seen_any = False
    for number, text in _lines(path):
        if not text.strip():
            continue
        seen_any = True
        columns = text.split("\t")
        if len(columns) < need:
            raise DataError(
                f"{located(path, number)}: expected {need} tab-separated columns "
                f"({description}), found {len(columns)}: {_preview(text)}"
            )
        yield number, columns
    if not seen_any:
        raise DataError(f"{located(path)}: the file is empty; expected lines of {description}.")


def _preview(text, limit=60):
    return repr(text if len(text) <= limit else text[:limit] + "...")


def read_tsv(path, source_column=0, target_column=1, reverse=False):
    """Reads sentence pairs from a tab-separated file (Tatoeba / manythings.org Anki format).

    Lines look like `source<TAB>target[<TAB>attribution...]`; quotes are ordinary
    characters (no CSV quoting). A source with several translations appears on several
    lines, which is kept (`split_pairs` keeps them in one split).

    Args:
        path: the file, UTF-8.
        source_column: 0-based column of the source sentence.
        target_column: 0-based column of the target sentence.
        reverse: swap source and target after reading (translate the other way).

    Returns:
        A list of `(source, target)` string pairs in file order.

    Example:
    >>> pairs = read_tsv("spa.txt")            # [("Go.", "Ve."), ...]
    >>> pairs = read_tsv("spa.txt", reverse=True)   # Spanish to English
    """
    for name, value in (("source_column", source_column), ("target_column", target_column)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"`{name}` must be a non-negative integer. Received: {name}={value!r}")
    if source_column == target_column:
        raise ValueError(
            "`source_column` and `target_column` must differ. "
            f"Received: source_column={source_column}, target_column={target_column}"
        )
    return list(iter_tsv(path, source_column, target_column, reverse))


def iter_tsv(path, source_column=0, target_column=1, reverse=False):
    """`read_tsv` as a stream: yields the pairs one by one, reading the file line by line
    (a corpus larger than memory). The same checks, raised at the line they concern."""
    for name, value in (("source_column", source_column), ("target_column", target_column)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"`{name}` must be a non-negative integer. Received: {name}={value!r}")
    need = max(source_column, target_column) + 1
    for number, columns in _columns(path, need, "source<TAB>target"):
        source = _sentence(columns[source_column], path, number, "source")
        target = _sentence(columns[target_column], path, number, "target")
        yield (target, source) if reverse else (source, target)


def _sentence(text, path, number, side):
    text = text.strip()
    if not text:
        raise DataError(f"{located(path, number)}: the {side} sentence is empty.")
    return text


def read_parallel(source_path, target_path):
    """Reads line-aligned parallel files: line N of one translates line N of the other.

    Args:
        source_path: e.g. `train.en`, one sentence a line, UTF-8.
        target_path: e.g. `train.fr`, the same number of lines.

    Returns:
        A list of `(source, target)` pairs. Lines blank in both files are skipped; a line
        blank in only one of them is an error (the files have slipped out of alignment).
    """
    return list(iter_parallel(source_path, target_path))


def iter_parallel(source_path, target_path):
    """`read_parallel` as a stream: yields the pairs one by one, reading both files line
    by line; a file that ends before the other (blank lines aside) is an error, raised
    when the stream gets there."""
    sources, targets = _lines(source_path), _lines(target_path)
    seen = 0
    for number, (source, target) in enumerate(
        itertools.zip_longest(sources, targets, fillvalue=None), start=1
    ):
        if source is None or target is None:
            longer = sources if source is None else targets
            rest = [(source or target)[1], *(text for _, text in longer)]
            while rest and not rest[-1].strip():  # a final newline is not an extra line
                rest.pop()
            if not rest:
                continue
            if number == 1:
                empty = source_path if source is None else target_path
                raise DataError(f"{located(os.fspath(empty))}: the file is empty.")
            counts = {"source": number - 1, "target": number - 1}
            counts["target" if source is None else "source"] += len(rest)
            raise DataError(
                f"{located(os.fspath(source_path))} has {counts['source']} lines but "
                f"{located(os.fspath(target_path))} has {counts['target']}; parallel files "
                "must be line-aligned."
            )
        source, target = source[1].strip(), target[1].strip()
        if not source and not target:
            continue
        if not source:
            raise DataError(
                f"{located(os.fspath(source_path), number)}: the source sentence is empty "
                f"(its translation is {_preview(target)})."
            )
        if not target:
            raise DataError(
                f"{located(os.fspath(target_path), number)}: the target sentence is empty "
                f"(its source is {_preview(source)})."
            )
        seen += 1
        yield source, target
    if not seen:
        raise DataError(f"{located(os.fspath(source_path))}: the file is empty.")


def read_tfds(name, split="train", data_dir=None, download=False, source_key=None, target_key=None):
    """Reads a TensorFlow Datasets translation set, e.g. `ted_hrlr_translate/pt_to_en`.

    With `download=False` (the default: the project must work offline) the data must
    already be prepared under `data_dir` (default `~/tensorflow_datasets`); if it is
    not, this fails at once with a `DataError` instead of letting TFDS retry the network
    for minutes.

    Args:
        name: TFDS name with config, e.g. `"ted_hrlr_translate/pt_to_en"`.
        split: a split name or slice such as `"train"` or `"validation[:500]"`.
        data_dir: where TFDS keeps prepared data.
        download: download and prepare the data if it is missing (needs the network).
        source_key, target_key: the feature names of the two sentences. Default: the
            dataset's supervised keys (`("pt", "en")` for the example above).

    Returns:
        A list of `(source, target)` string pairs.
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:  # pragma: no cover - it is a dependency of the project
        raise ImportError(
            "Reading TFDS data needs `tensorflow-datasets`: pip install tensorflow-datasets"
        ) from error

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise DataError(
            f"No TensorFlow Datasets dataset named {name!r}. Names look like "
            "'ted_hrlr_translate/pt_to_en'; see https://www.tensorflow.org/datasets/catalog."
        ) from None
    if not builder.is_prepared():
        if not download:
            raise DataError(
                f"TFDS dataset {name!r} is not prepared in {builder.data_dir!r} and "
                "download=False. Prepare it once on a machine with network access "
                f"(`tfds build {name} --data_dir=...`) and pass that data_dir, or set "
                "download=True."
            )
        try:
            builder.download_and_prepare()
        except Exception as error:  # network and archive errors come in many types
            raise DataError(
                f"Could not download TFDS dataset {name!r} into {builder.data_dir!r}: {error}"
            ) from error
    source_key, target_key = _tfds_keys(builder, name, source_key, target_key)
    available = list(builder.info.splits)
    if any(part.split("[")[0].strip() not in available for part in split.split("+")):
        raise DataError(
            f"TFDS dataset {name!r} has no split {split!r}. Available splits: {available}."
        )
    dataset = builder.as_dataset(split=split)
    pairs = []
    for number, example in enumerate(tfds.as_numpy(dataset), start=1):
        where = f"TFDS dataset {name!r}, split {split!r}, example {number}"
        source = example[source_key].decode("utf-8").strip()
        target = example[target_key].decode("utf-8").strip()
        if not source or not target:
            raise DataError(f"{where}: the {'source' if not source else 'target'} is empty.")
        pairs.append((source, target))
    return pairs


def _tfds_keys(builder, name, source_key, target_key):
    features = list(builder.info.features.keys())
    if source_key is None or target_key is None:
        supervised = builder.info.supervised_keys
        if not supervised or len(supervised) != 2:
            raise DataError(
                f"TFDS dataset {name!r} names no (source, target) pair of features; pass "
                f"source_key and target_key. Its features: {features}."
            )
        source_key = source_key or supervised[0]
        target_key = target_key or supervised[1]
    for key in (source_key, target_key):
        if key not in features:
            raise DataError(
                f"TFDS dataset {name!r} has no feature {key!r}. Its features: {features}."
            )
    return source_key, target_key


class ClassificationData(NamedTuple):
    """Texts with integer labels; `label_names[label]` is the label as written in the file."""

    texts: list
    labels: list
    label_names: list


def read_classification_tsv(path, label_names=None):
    """Reads `label<TAB>text` lines for the classifier.

    Args:
        path: the file, UTF-8. The label is any string (`positive`, `3`, `sports`).
        label_names: the label set to use, in id order. Pass the `label_names` read from
            the training file when reading the test file, so ids agree; a label outside
            it is an error. Default: the sorted distinct labels of this file.

    Returns:
        `ClassificationData(texts, labels, label_names)` with integer `labels`.
    """
    rows = []
    for number, columns in _columns(path, 2, "label<TAB>text"):
        label = columns[0].strip()
        if not label:
            raise DataError(f"{located(path, number)}: the label is empty.")
        text = "\t".join(columns[1:]).strip()
        if not text:
            raise DataError(f"{located(path, number)}: the text is empty.")
        rows.append((number, label, text))
    if label_names is None:
        label_names = sorted({label for _, label, _ in rows})
    label_names = list(label_names)
    ids = {label: i for i, label in enumerate(label_names)}
    labels = []
    for number, label, _ in rows:
        if label not in ids:
            raise DataError(
                f"{located(path, number)}: label {label!r} is not one of {label_names}."
            )
        labels.append(ids[label])
    return ClassificationData([text for _, _, text in rows], labels, label_names)
