"""The WordPiece tokenizer: special ids, round trips, files, and parity with keras-hub."""

import json

import numpy as np
import pytest

from tf_distill.data import SPECIAL_TOKENS, DataError, Tokenizer, generate_corpus
from tf_distill.data.tokenizer import join_words, normalize

ACCENTED = [
    "¿Dónde está el baño?",
    "¡Qué día tan bonito!",
    "L'élève très âgé n'a pas 3,5 € à dépenser.",
    "Où est-ce qu'il va à 9:30, à l'école ?",
    "C'est l'œuvre d'Ève, dit-il.",
    'Il a dit "bonjour" à São Paulo.',
    "Zürich, Kraków und Ærøskøbing.",
    "Tom's car isn't here (yet)...",
    "Ça coûte 12.000 pesos; ¿vale?",
]


@pytest.fixture(scope="module")
def tokenizer():
    return Tokenizer.train(ACCENTED * 3, vocabulary_size=300)


def test_special_tokens(tokenizer):
    assert SPECIAL_TOKENS == ("[PAD]", "[UNK]", "[START]", "[END]")
    assert tokenizer.vocabulary[:4] == list(SPECIAL_TOKENS)
    assert (tokenizer.pad_id, tokenizer.unk_id, tokenizer.start_id, tokenizer.end_id) == (
        0,
        1,
        2,
        3,
    )
    assert tokenizer.vocabulary_size == len(tokenizer.vocabulary) <= 300


def test_round_trip_keeps_accents_and_punctuation(tokenizer):
    ids = tokenizer.tokenize(ACCENTED)
    assert all(tokenizer.unk_id not in row for row in ids)
    # French spacing before "?" is not restored; everything else comes back as written.
    expected = [text.replace(" ?", "?") for text in ACCENTED]
    assert tokenizer.detokenize(ids) == expected
    assert tokenizer.detokenize(tokenizer.tokenize("¿Dónde está?")) == "¿Dónde está?"


def test_subwords_rejoin(tokenizer):
    # Unseen words made of known pieces: several ids, one word back.
    ids = tokenizer.tokenize("Dónde dépenser bonitos")
    assert len(ids) > 3 and tokenizer.unk_id not in ids
    assert tokenizer.detokenize(ids) == "Dónde dépenser bonitos"
    # A word with a character never seen becomes one [UNK], as in keras-hub.
    assert tokenizer.tokenize("día 漢x") == tokenizer.tokenize("día") + [1, 1]


def test_detokenize_strips_special_tokens(tokenizer):
    body = tokenizer.tokenize("¡Qué día!")
    row = [tokenizer.start_id, *body, tokenizer.end_id, *body, 0, 0]
    batch = np.array([row, [tokenizer.start_id, *body, 0, 0, 0, 0, 0, 0, 0][: len(row)]])
    assert tokenizer.detokenize(batch) == ["¡Qué día!", "¡Qué día!"]
    assert tokenizer.detokenize(row) == "¡Qué día!"
    assert tokenizer.detokenize([[tokenizer.end_id, *body]]) == [""]
    assert tokenizer.detokenize([tokenizer.unk_id]) == "[UNK]"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tokenizer.detokenize([10_000])


def test_join_words_spacing():
    assert join_words(["¿", "Dónde", "está", "?"]) == "¿Dónde está?"
    assert join_words(["l", "'", "homme", "n", "'", "a", "pas", "3", ",", "5", "€", "."]) == (
        "l'homme n'a pas 3,5 €."
    )
    assert join_words(["Il", "dit", '"', "oui", '"', "."]) == 'Il dit "oui".'
    assert join_words(["à", "6", "p", ".", "m", "."]) == "à 6 p.m."


def test_normalize_keeps_accents():
    decomposed = "e\u0301le\u0300ve\u00a0 tre\u0300s"
    assert normalize(decomposed) == "élève très"
    assert normalize("ÉLÈVE Straße", lowercase=True) == "élève strasse"


def test_training_is_deterministic_and_learns_words():
    texts = [en for en, _ in generate_corpus(400, seed=1)]
    first = Tokenizer.train(texts, vocabulary_size=400)
    assert Tokenizer.train(texts, vocabulary_size=400).vocabulary == first.vocabulary
    assert first.vocabulary_size == 400
    # Frequent words become single tokens.
    assert len(first.tokenize("the")) == 1


def test_round_trip_on_the_built_in_corpus():
    pairs = generate_corpus(1500, seed=2, ambiguity=0.5)
    texts = [text for pair in pairs for text in pair]
    tokenizer = Tokenizer.train(texts, vocabulary_size=600)
    assert tokenizer.detokenize(tokenizer.tokenize(texts)) == texts


def test_lowercase(tmp_path):
    tokenizer = Tokenizer.train(["Élève ÉTUDIE.", "élève étudie."], 60, lowercase=True)
    assert tokenizer.tokenize("ÉLÈVE") == tokenizer.tokenize("élève")
    assert tokenizer.detokenize(tokenizer.tokenize("Élève étudie.")) == "élève étudie."
    tokenizer.save(tmp_path, "lower")
    assert Tokenizer.load(tmp_path, "lower").lowercase


def test_save_and_load(tokenizer, tmp_path):
    path = tokenizer.save(tmp_path / "tok", "source")
    assert path.endswith("source_vocab.txt")
    lines = (tmp_path / "tok" / "source_vocab.txt").read_text(encoding="utf-8").splitlines()
    assert lines == tokenizer.vocabulary
    config = json.loads((tmp_path / "tok" / "source_tokenizer.json").read_text(encoding="utf-8"))
    assert config["special_tokens"] == {"[PAD]": 0, "[UNK]": 1, "[START]": 2, "[END]": 3}
    loaded = Tokenizer.load(tmp_path / "tok", "source")
    assert loaded.vocabulary == tokenizer.vocabulary
    assert loaded.tokenize(ACCENTED) == tokenizer.tokenize(ACCENTED)
    with pytest.raises(DataError, match=r"target_tokenizer\.json'.*not found"):
        Tokenizer.load(tmp_path / "tok", "target")


def test_same_ids_as_keras_hub(tokenizer):
    layer = tokenizer.keras_hub_tokenizer()
    texts = [normalize(text) for text in ACCENTED + ["Unseen wörds, ünd 漢字!"]]
    expected = [[int(i) for i in row] for row in layer(texts)]
    assert tokenizer.tokenize(texts) == expected


def test_keras_hub_learner():
    texts = [fr for _, fr in generate_corpus(200, seed=3)]
    tokenizer = Tokenizer.train(texts, vocabulary_size=200, learner="keras_hub")
    assert tokenizer.vocabulary[:4] == list(SPECIAL_TOKENS)
    assert tokenizer.detokenize(tokenizer.tokenize(texts[:20])) == texts[:20]


def test_bad_arguments():
    with pytest.raises(ValueError, match="too small"):
        Tokenizer.train(["abcdefghijklmnopqrstuvwxyz"], vocabulary_size=10)
    with pytest.raises(ValueError, match="learner"):
        Tokenizer.train(["a b"], vocabulary_size=50, learner="bpe")
    with pytest.raises(ValueError, match="must start with"):
        Tokenizer(["a", "b", "[PAD]", "[UNK]"])
    with pytest.raises(ValueError, match="empty"):
        Tokenizer.train(["", "  "], vocabulary_size=50)
