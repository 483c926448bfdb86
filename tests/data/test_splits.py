"""Splits by distinct source sentence."""

import collections

import pytest

from tf_distill.data import DataError, split_pairs


def tatoeba_like(num_sources=400):
    """Sources with 1-3 translations each, like Tatoeba."""
    pairs = []
    for i in range(num_sources):
        for j in range(1 + i % 3):
            pairs.append((f"Sentence {i}.", f"Frase {i}, versión {j}."))
    return pairs


def test_splits_are_disjoint_by_source_and_complete():
    pairs = tatoeba_like()
    splits = split_pairs(pairs, valid_size=80, test_size=0.1, seed=3)
    sources = [{source for source, _ in split} for split in splits]
    assert not (sources[0] & sources[1] or sources[0] & sources[2] or sources[1] & sources[2])
    assert collections.Counter(splits.train + splits.valid + splits.test) == collections.Counter(
        pairs
    )
    # At least the asked size, over by less than one group of translations (at most 3).
    assert 80 <= len(splits.valid) < 83
    assert 80 <= len(splits.test) < 83  # 0.1 of 800 pairs
    # Order within a split follows the input.
    assert splits.train == [pair for pair in pairs if pair in set(splits.train)]


def test_splits_are_seeded():
    pairs = tatoeba_like()
    assert split_pairs(pairs, 50, 50, seed=1) == split_pairs(pairs, 50, 50, seed=1)
    assert split_pairs(pairs, 50, 50, seed=1) != split_pairs(pairs, 50, 50, seed=2)


def test_zero_sized_splits():
    splits = split_pairs(tatoeba_like(10), valid_size=0, test_size=0.0)
    assert splits.valid == [] and splits.test == [] and len(splits.train) == 19


def test_split_larger_than_the_data():
    pairs = tatoeba_like(10)  # 19 pairs
    with pytest.raises(DataError, match=r"`test_size`=50 pairs is larger than the data \(19"):
        split_pairs(pairs, valid_size=1, test_size=50)
    with pytest.raises(DataError, match="leave no pairs for train"):
        split_pairs(pairs, valid_size=10, test_size=9)
    # Few sources, each with many translations: whole groups use up every source.
    grouped = [("Same.", f"Igual {i}.") for i in range(10)] + [("Other.", "Otra.")]
    with pytest.raises(DataError, match="take all 2 distinct source sentences"):
        split_pairs(grouped, valid_size=1, test_size=1, seed=0)
    with pytest.raises(DataError, match="empty list"):
        split_pairs([], 1, 1)


@pytest.mark.parametrize("size, message", [(1.5, r"in \[0, 1\)"), (-1, ">= 0"), ("10", "int")])
def test_bad_sizes(size, message):
    with pytest.raises(ValueError, match=message):
        split_pairs(tatoeba_like(10), valid_size=size, test_size=1)
