"""The labelled-text reader, stratified splits and the built-in review corpus."""

import re
from collections import Counter

import pytest

from tf_distill.data import DataError
from tf_distill.data.labelled import LabelledTexts, read_labelled, stratified_split
from tf_distill.data.synthetic_reviews import LABEL_NAMES, generate_reviews


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_tsv_without_header_reads_label_then_text_and_keeps_quotes(tmp_path):
    path = write(tmp_path, "sms.txt", 'ham\tsee you "soon"\nspam\tWIN now\n\nham\tok\n')
    data = read_labelled(path)
    assert data.texts == ['see you "soon"', "WIN now", "ok"]
    assert data.label_names == ["ham", "spam"]
    assert data.labels == [0, 1, 0]


def test_csv_with_header_names_and_quoted_commas(tmp_path):
    path = write(tmp_path, "s.csv", 'sentence,label\n"good, really",1\nbad,0\nmeh,10\n')
    data = read_labelled(path, text_column="sentence", label_column="label")
    assert data.texts == ["good, really", "bad", "meh"]
    assert data.label_names == ["0", "1", "10"]  # numeric labels in numeric order
    assert data.labels == [1, 0, 2]


def test_given_label_names_fix_the_ids(tmp_path):
    path = write(tmp_path, "t.tsv", "b\tx\na\ty\n")
    assert read_labelled(path, label_names=["b", "a"]).labels == [0, 1]
    with pytest.raises(DataError, match=r"t.tsv', line 2: label 'a' is not one of \['b', 'c'\]"):
        read_labelled(path, label_names=["b", "c"])


@pytest.mark.parametrize(
    "content, kwargs, message",
    [
        ("ham only one column\n", {}, r"x.tsv', line 1: expected at least 2 columns"),
        ("ham\t  \n", {}, r"x.tsv', line 1: the text is empty"),
        ("\tsome text\n", {}, r"x.tsv', line 1: the label is empty"),
        ("text\tlabel\nhi\t1\n", {"text_column": "sentence", "label_column": "label"},
         r"x.tsv', line 1: no column named 'sentence' for the text"),
        ("a\tb\n", {"text_column": "a", "header": False}, r"columns given by name"),
        ("ham\tone\nham\ttwo\n", {}, r"a classifier needs at least two classes"),
        ("", {}, r"x.tsv': the file"),
    ],
)  # fmt: skip
def test_bad_files_name_the_file_and_line(tmp_path, content, kwargs, message):
    path = write(tmp_path, "x.tsv", content)
    with pytest.raises(DataError, match=message):
        read_labelled(path, **kwargs)


def test_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_bytes(b"ham\tfine\nspam\t\xff\xfe\n")
    with pytest.raises(DataError, match=r"x.tsv', line 2: bytes that are not UTF-8"):
        read_labelled(path)


def test_stratified_split_keeps_class_shares_and_repeats_together():
    texts = [f"text {i}" for i in range(1000)] + ["repeated"] * 4
    labels = [int(i % 10 == 0) for i in range(1000)] + [1] * 4  # 10% minority + repeats
    data = LabelledTexts(texts, labels, ["ham", "spam"])
    splits = stratified_split(data, 0.1, 0.2, seed=3)
    sizes = [len(s.texts) for s in splits]
    assert sum(sizes) == len(texts)
    for split, share in zip(splits, (0.7, 0.1, 0.2), strict=True):
        assert abs(len(split.texts) / len(texts) - share) < 0.04
        spam = Counter(split.labels)[1] / len(split.labels)
        assert 0.07 < spam < 0.16, spam
    holding = [i for i, s in enumerate(splits) if "repeated" in s.texts]
    assert len(holding) == 1  # every copy of a repeated text is in one split
    assert set(splits.train.texts).isdisjoint(splits.test.texts)
    assert stratified_split(data, 0.1, 0.2, seed=3) == splits  # deterministic


def _label_by_rule(text):
    """The corpus rule, re-implemented from its docstring by parsing the text."""
    adjectives = {"superb": 2, "excellent": 2, "wonderful": 2, "amazing": 2, "perfect": 2,
                  "good": 1, "nice": 1, "decent": 1, "pleasant": 1, "friendly": 1, "clean": 1,
                  "bad": -1, "poor": -1, "slow": -1, "noisy": -1, "dirty": -1, "rude": -1,
                  "awful": -2, "terrible": -2, "horrible": -2, "dreadful": -2,
                  "disgusting": -2}  # fmt: skip
    clause = re.compile(
        r"the \w+ (?:was|is|seemed|felt) (not )?(very |really |a bit |slightly )?(\w+)"
    )

    def score(part):
        negated, intensity, adjective = clause.search(part).groups()
        value = adjectives[adjective] * {None: 1, "very ": 1.5, "really ": 1.5}.get(intensity, 0.5)
        return -0.5 * value if negated else value

    total = 0.0
    main = text
    if "although " in text:
        subordinate, main = text.split("although ", 1)[1].split(" , ", 1)
    for part in re.split(r" (?=(?:and|but) the )", main):
        total += (2 if part.startswith("but ") else 1) * score(part)
    if "although " in text:
        total = 2 * total + score(subordinate)
    return 2 if total > 0.75 else 0 if total < -0.75 else 1


def test_review_labels_follow_the_documented_rule():
    texts, labels = generate_reviews(3000, seed=5)
    assert len(set(texts)) == 3000
    assert [_label_by_rule(t) for t in texts] == labels
    counts = Counter(labels)
    assert all(counts[c] > 400 for c in range(len(LABEL_NAMES)))  # no class is rare


def test_review_corpus_is_deterministic_and_noise_redraws_labels():
    assert generate_reviews(200, seed=1) == generate_reviews(200, seed=1)
    assert generate_reviews(200, seed=1) != generate_reviews(200, seed=2)
    texts, clean = generate_reviews(2000, seed=1)
    noisy_texts, noisy = generate_reviews(2000, seed=1, noise=0.3)
    assert noisy_texts == texts
    changed = sum(a != b for a, b in zip(clean, noisy, strict=True)) / 2000
    assert 0.15 < changed < 0.25  # 30% redrawn, a third of them to the same label


def test_augment_makes_distinct_perturbed_copies_deterministically():
    from tf_distill.data.labelled import MASK_WORD, augment

    texts, _ = generate_reviews(300, seed=2)
    copies = augment(texts, 3, seed=1, exclude=["x"])
    assert copies == augment(texts, 3, seed=1, exclude=["x"])
    assert copies != augment(texts, 3, seed=2, exclude=["x"])
    assert 600 < len(copies) <= 900 and len(set(copies)) == len(copies)
    assert not set(copies) & set(texts)
    words = [w for c in copies for w in c.split()]
    assert 0.05 < words.count(MASK_WORD) / len(words) < 0.15  # 10% of the words masked
    vocabulary = {w for t in texts for w in t.split()} | {MASK_WORD}
    assert set(words) <= vocabulary  # swaps draw words of the texts
    shortest = min(len(t.split()) for t in texts)
    assert min(len(c.split()) for c in copies) >= (shortest + 1) // 2  # spans keep half
    assert augment(texts, 0) == []
