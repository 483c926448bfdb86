"""Train / valid / test splits that never share a source sentence."""

import hashlib
import random
from typing import NamedTuple

from tf_distill.data.errors import DataError


class Splits(NamedTuple):
    """Three lists of `(source, target)` pairs."""

    train: list
    valid: list
    test: list


def split_pairs(pairs, valid_size, test_size, seed=0):
    """Splits pairs by distinct source sentence, so no source is in two splits.

    Tatoeba lists many sources with several translations; putting one translation in train
    and another in test would reward memorising. All pairs of one source go together, to
    a split drawn at random (seeded): sources are shuffled, then whole groups fill the
    test split, then the valid split, and the rest is train.

    Sizes count *pairs*, not sources. An int is a number of pairs, a float in [0, 1) a
    fraction of all pairs. Because groups are not cut, a split gets at least its size and
    overshoots by less than its largest group (one pair for the built-in corpus at
    ambiguity 0, usually 1-3 for Tatoeba).

    Args:
        pairs: a list of `(source, target)`.
        valid_size, test_size: int >= 0 or float in [0, 1).
        seed: the same seed and input give the same splits.

    Returns:
        `Splits(train, valid, test)`; pairs keep their input order within a split.

    Raises:
        DataError: the data is empty, or valid + test leave nothing for train.
    """
    pairs = list(pairs)
    if not pairs:
        raise DataError("Cannot split an empty list of pairs.")
    total = len(pairs)
    valid_count = _count("valid_size", valid_size, total)
    test_count = _count("test_size", test_size, total)
    if valid_count + test_count >= total:
        raise DataError(
            f"The valid and test splits ({valid_count} + {test_count} pairs) leave no pairs "
            f"for train: the data has {total} pairs. Ask for smaller splits."
        )
    groups = {}
    for index, (source, _) in enumerate(pairs):
        groups.setdefault(source, []).append(index)
    sources = list(groups)
    random.Random(seed).shuffle(sources)

    assignment = {}
    position = 0
    for split_name, wanted in (("test", test_count), ("valid", valid_count)):
        taken = 0
        while taken < wanted and position < len(sources):
            assignment[sources[position]] = split_name
            taken += len(groups[sources[position]])
            position += 1
    if position >= len(sources):
        raise DataError(
            f"The valid and test splits ({valid_count} + {test_count} pairs) take all "
            f"{len(sources)} distinct source sentences, leaving none for train "
            f"({total} pairs). Ask for smaller splits."
        )
    splits = {"train": [], "valid": [], "test": []}
    for pair in pairs:
        splits[assignment.get(pair[0], "train")].append(pair)
    return Splits(splits["train"], splits["valid"], splits["test"])


def _count(name, size, total):
    if isinstance(size, bool) or not isinstance(size, (int, float)):
        raise ValueError(f"`{name}` must be an int or a float. Received: {name}={size!r}")
    if isinstance(size, float):
        if not 0.0 <= size < 1.0:
            raise ValueError(f"A fractional `{name}` must be in [0, 1). Received: {name}={size}")
        return round(size * total)
    if size < 0:
        raise ValueError(f"`{name}` must be >= 0. Received: {name}={size}")
    if size > total:
        raise DataError(f"`{name}`={size} pairs is larger than the data ({total} pairs).")
    return size


def hash_split(source, valid_share, test_share, seed=0):
    """ "train", "valid" or "test" for a pair with this source sentence, drawn from a hash
    of the seed and the sentence: a split for a corpus read as a stream (no shuffle of the
    whole), where every pair of one source lands in the same split and each split gets
    about its share of the sources."""
    digest = hashlib.blake2b(f"{seed}\t{source}".encode(), digest_size=8).digest()
    draw = int.from_bytes(digest, "big") / 2.0**64
    if draw < test_share:
        return "test"
    return "valid" if draw < test_share + valid_share else "train"
