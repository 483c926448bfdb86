"""The transfer set: source sentences without references, for the teacher to translate."""

import pytest

from tf_distill import config as config_lib
from tf_distill import transfer
from tf_distill.data import DataError, generate_corpus, split_pairs


def test_select_sources_dedupes_excludes_and_caps_in_order():
    candidates = [" b ", "a", "b", "", "x\ty", "c", "a", "d"]
    assert transfer.select_sources(candidates, exclude={"c"}) == ["b", "a", "d"]
    assert transfer.select_sources(candidates, exclude=set(), limit=2) == ["b", "a"]
    assert transfer.select_sources(candidates, exclude={"a", "b", "c", "d"}) == []


def test_read_sources_skips_blank_lines(tmp_path):
    path = tmp_path / "mono.txt"
    path.write_text("Hello there.\n\n  Good night.  \n", encoding="utf-8")
    assert transfer.read_sources(path) == ["Hello there.", "Good night."]


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "does not exist"),
        (b"caf\xe9\n", "is not UTF-8"),
        (b"\n  \n", "holds no sentences"),
    ],
)
def test_read_sources_errors(tmp_path, content, message):
    path = tmp_path / "mono.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        transfer.read_sources(path)


def test_synthetic_sources_are_new_distinct_and_deterministic():
    corpus = generate_corpus(2000, seed=0)
    exclude = {s for s, _ in corpus}
    sources = transfer.synthetic_sources(1500, exclude, seed=0)
    assert len(sources) == len(set(sources)) == 1500
    assert not exclude & set(sources)
    # Same arguments, same sentences; a smaller set is the start of a larger one.
    assert transfer.synthetic_sources(1500, exclude, seed=0) == sources
    assert transfer.synthetic_sources(300, exclude, seed=0) == sources[:300]
    assert transfer.synthetic_sources(300, exclude, seed=1) != sources[:300]
    # Without the exclusion some of them would be corpus sources: the filter does work.
    unfiltered = transfer.synthetic_sources(1500, set(), seed=0)
    assert exclude & set(unfiltered)


def _config(**distillation):
    raw = {"data": {"num_pairs": 600, "valid_size": 0.1, "test_size": 0.1}}
    raw["distillation"] = distillation
    return config_lib.from_dict(raw)


def test_transfer_sources_leave_out_every_split_source(tmp_path):
    config = _config(transfer_size=400)
    pairs = generate_corpus(600, seed=0, ambiguity=config.data.ambiguity)
    splits = split_pairs(pairs, valid_size=0.1, test_size=0.1, seed=0)
    sources = transfer.transfer_sources(config, splits)
    assert len(sources) == 400
    assert not {s for s, _ in pairs} & set(sources)

    # From a file: the test split's sources and repeats are dropped, the cap applies.
    test_source = splits.test[0][0]
    path = tmp_path / "mono.txt"
    path.write_text(f"{test_source}\nOne new line.\nOne new line.\nTwo.\nThree.\n", "utf-8")
    config = _config(transfer_path=str(path), transfer_size=2)
    assert transfer.transfer_sources(config, splits) == ["One new line.", "Two."]
    config = _config(transfer_path=str(path))
    assert transfer.transfer_sources(config, splits) == ["One new line.", "Two.", "Three."]
    assert transfer.transfer_sources(_config(), splits) == []


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"distillation": {"transfer_size": 0}}, "distillation.transfer_size must be a positive"),
        ({"distillation": {"transfer_path": "/no/such/file.txt"}}, "does not exist"),
        (
            {"data": {"source": "tfds", "tfds_name": "x"}, "distillation": {"transfer_size": 5}},
            "needs data.source 'synthetic'",
        ),
        ({"training": {"student_epochs": 0}}, "training.student_epochs must be positive"),
    ],
)
def test_transfer_config_errors(raw, message):
    with pytest.raises(config_lib.ConfigError, match=message):
        config_lib.from_dict(raw)


def test_transfer_file_of_corpus_sources_only_is_refused(tmp_path):
    pairs = generate_corpus(600, seed=0, ambiguity=0.3)
    splits = split_pairs(pairs, valid_size=0.1, test_size=0.1, seed=0)
    path = tmp_path / "mono.txt"
    path.write_text(f"{splits.train[0][0]}\n{splits.test[0][0]}\n", "utf-8")
    with pytest.raises(DataError, match="every sentence is also a source of the corpus"):
        transfer.transfer_sources(_config(transfer_path=str(path)), splits)


def test_read_sources_takes_a_tab_separated_column(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("Go.\tVe.\tCC-BY\n\nHi.\tHola.\tCC-BY\n", encoding="utf-8")
    assert transfer.read_sources(path, column=0) == ["Go.", "Hi."]
    assert transfer.read_sources(path, column=1) == ["Ve.", "Hola."]
    with pytest.raises(DataError, match="line 1 has no column 3"):
        transfer.read_sources(path, column=3)
