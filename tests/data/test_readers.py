"""Readers: TSV pairs, parallel files, classification TSV, TFDS (offline), and their errors."""

import time

import pytest

from tf_distill.data import (
    DataError,
    read_classification_tsv,
    read_parallel,
    read_tfds,
    read_tsv,
)


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def test_read_tsv_anki_format(tmp_path):
    path = write(
        tmp_path / "spa.txt",
        "\ufeffGo.\tVe.\tCC-BY 2.0 (France) Attribution: tatoeba.org #2877272\r\n"
        'He said "hi".\tDijo "hola".\n'
        "\n"
        "  Where is it?  \t¿Dónde está?\n",
    )
    assert read_tsv(path) == [
        ("Go.", "Ve."),
        ('He said "hi".', 'Dijo "hola".'),
        ("Where is it?", "¿Dónde está?"),
    ]
    assert read_tsv(path, reverse=True)[2] == ("¿Dónde está?", "Where is it?")
    assert read_tsv(path, source_column=1, target_column=0)[0] == ("Ve.", "Go.")


def test_read_parallel(tmp_path):
    source = write(tmp_path / "train.en", "Hello.\nThe cat.\n\nBye.\n")
    target = write(tmp_path / "train.fr", "Bonjour.\nLe chat.\n\nAu revoir.\n")
    assert read_parallel(source, target) == [
        ("Hello.", "Bonjour."),
        ("The cat.", "Le chat."),
        ("Bye.", "Au revoir."),
    ]


def test_read_classification_tsv(tmp_path):
    path = write(tmp_path / "train.tsv", "pos\tGreat film.\nneg\tBoring.\npos\tLoved it.\n")
    data = read_classification_tsv(path)
    assert data.texts == ["Great film.", "Boring.", "Loved it."]
    assert data.label_names == ["neg", "pos"]
    assert data.labels == [1, 0, 1]
    test = write(tmp_path / "test.tsv", "neg\tMeh.\n")
    assert read_classification_tsv(test, label_names=data.label_names).labels == [0]


@pytest.mark.parametrize(
    "content, message",
    [
        ("", r"train\.tsv'.*empty"),
        ("\n\n  \n", r"train\.tsv'.*empty"),
        ("Go.\tVe.\nno tab here\n", r"train\.tsv', line 2: expected 2 tab-separated columns"),
        ("Go.\tVe.\n\tVete.\n", r"train\.tsv', line 2: the source sentence is empty"),
        ("Go.\t \n", r"train\.tsv', line 1: the target sentence is empty"),
        (
            b"Go.\tVe.\nHi.\tHola.\nBad\t\xff\xfe\n",
            r"train\.tsv', line 3: bytes that are not UTF-8",
        ),
    ],
)
def test_read_tsv_errors(tmp_path, content, message):
    path = write(tmp_path / "train.tsv", content)
    with pytest.raises(DataError, match=message):
        read_tsv(path)


def test_read_tsv_missing_file_and_bad_columns(tmp_path):
    with pytest.raises(DataError, match=r"nowhere\.tsv'.*not found"):
        read_tsv(tmp_path / "nowhere.tsv")
    with pytest.raises(DataError, match=r"is a directory"):
        read_tsv(tmp_path)
    path = write(tmp_path / "two.tsv", "Go.\tVe.\n")
    with pytest.raises(DataError, match=r"line 1: expected 3 tab-separated columns"):
        read_tsv(path, target_column=2)
    with pytest.raises(ValueError, match="must differ"):
        read_tsv(path, source_column=1, target_column=1)


def test_read_parallel_errors(tmp_path):
    source = write(tmp_path / "a.en", "One.\nTwo.\nThree.\n")
    with pytest.raises(DataError, match=r"a\.en' has 3 lines but .*b\.fr' has 2"):
        read_parallel(source, write(tmp_path / "b.fr", "Un.\nDeux.\n"))
    with pytest.raises(DataError, match=r"c\.fr', line 2: the target sentence is empty"):
        read_parallel(source, write(tmp_path / "c.fr", "Un.\n\nTrois.\n"))
    with pytest.raises(DataError, match=r"d\.fr'.*empty"):
        read_parallel(source, write(tmp_path / "d.fr", ""))
    with pytest.raises(DataError, match=r"e\.fr', line 1: bytes that are not UTF-8"):
        read_parallel(source, write(tmp_path / "e.fr", b"\xc3(\nDeux.\nTrois.\n"))
    with pytest.raises(DataError, match=r"missing\.fr'.*not found"):
        read_parallel(source, tmp_path / "missing.fr")


def test_read_classification_errors(tmp_path):
    with pytest.raises(DataError, match=r"line 2: expected 2 tab-separated columns"):
        read_classification_tsv(write(tmp_path / "a.tsv", "pos\tGood.\njust text\n"))
    with pytest.raises(DataError, match=r"line 1: the text is empty"):
        read_classification_tsv(write(tmp_path / "b.tsv", "pos\t  \n"))
    with pytest.raises(DataError, match=r"line 1: label 'maybe' is not one of"):
        read_classification_tsv(write(tmp_path / "c.tsv", "maybe\tHm.\n"), ["neg", "pos"])


def test_read_tfds_fails_fast_without_prepared_data(tmp_path):
    start = time.perf_counter()
    with pytest.raises(DataError, match=r"not prepared.*download=False"):
        read_tfds("ted_hrlr_translate/pt_to_en", data_dir=str(tmp_path))
    # tfds itself would retry the network for minutes.
    assert time.perf_counter() - start < 60
    with pytest.raises(DataError, match="No TensorFlow Datasets dataset named"):
        read_tfds("no_such_dataset_anywhere", data_dir=str(tmp_path))


def test_read_tfds_from_a_prepared_local_dataset(tmp_path):
    import tensorflow_datasets as tfds

    class TinyParallelForTest(tfds.core.GeneratorBasedBuilder):
        """Three English-French pairs, prepared offline into tmp_path."""

        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(
                builder=self,
                features=tfds.features.FeaturesDict(
                    {"en": tfds.features.Text(), "fr": tfds.features.Text()}
                ),
                supervised_keys=("en", "fr"),
            )

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples()}

        def _generate_examples(self):
            for i, (en, fr) in enumerate([("Hi.", "Salut."), ("Yes.", "Oui."), ("Go!", "Va !")]):
                yield i, {"en": en, "fr": fr}

    data_dir = str(tmp_path)
    pairs = read_tfds("tiny_parallel_for_test", data_dir=data_dir, download=True)
    assert sorted(pairs) == [("Go!", "Va !"), ("Hi.", "Salut."), ("Yes.", "Oui.")]
    reversed_keys = read_tfds(
        "tiny_parallel_for_test", data_dir=data_dir, source_key="fr", target_key="en"
    )
    assert sorted(reversed_keys)[0] == ("Oui.", "Yes.")
    with pytest.raises(DataError, match=r"no split 'test'"):
        read_tfds("tiny_parallel_for_test", split="test", data_dir=data_dir)
    with pytest.raises(DataError, match=r"no feature 'de'"):
        read_tfds("tiny_parallel_for_test", data_dir=data_dir, source_key="de")
