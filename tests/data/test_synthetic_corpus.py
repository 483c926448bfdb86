"""The built-in corpus: determinism, size, and the French phenomena it is meant to teach."""

import collections
import re

import pytest

from tf_distill.data import generate_corpus
from tf_distill.data.synthetic_morphology import conjugate, english_number, french_number


@pytest.fixture(scope="module")
def corpus():
    """100k pairs at ambiguity 0: the size the issue asks for, and enough for spot checks."""
    return generate_corpus(100_000, seed=0)


@pytest.fixture(scope="module")
def ambiguous():
    return generate_corpus(20_000, seed=0, ambiguity=1.0)


def matching(pairs, pattern, flags=0):
    compiled = re.compile(pattern, flags)
    return [(en, fr) for en, fr in pairs if compiled.search(en)]


def test_deterministic_and_prefix_stable():
    first = generate_corpus(300, seed=7)
    assert generate_corpus(300, seed=7) == first
    assert generate_corpus(120, seed=7) == first[:120]
    assert generate_corpus(300, seed=8) != first


def test_100k_distinct_pairs(corpus):
    assert len(corpus) == 100_000
    assert len(set(corpus)) == 100_000


def test_translation_is_a_function_of_the_source_at_ambiguity_0(corpus):
    targets = collections.defaultdict(set)
    for en, fr in corpus:
        targets[en].add(fr)
    assert all(len(found) == 1 for found in targets.values())


def test_sentences_look_like_text(corpus):
    for en, fr in corpus[:2000]:
        for text in (en, fr):
            assert text[0].isupper(), text
            assert text[-1] in ".?!", text
            assert "  " not in text and " ," not in text, text
        assert en[-1] == fr[-1]
    french = " ".join(fr for _, fr in corpus[:2000])
    for accented in ("é", "è", "ê", "à", "ç", "œ", "î"):
        assert accented in french


def test_length_range(corpus):
    lengths = [len(en.split()) for en, _ in corpus]
    assert min(lengths) >= 3 and max(lengths) <= 30
    assert sum(length <= 5 for length in lengths) > 1000
    assert sum(length >= 20 for length in lengths) > 500


def test_vocabulary_has_several_hundred_words(corpus):
    english, french = set(), set()
    for en, fr in corpus[:20000]:
        english.update(re.findall(r"[a-z]+", en.lower()))
        french.update(re.findall(r"[a-zàâçéèêëîïôûùœ]+", fr.lower()))
    assert len(english) > 500 and len(french) > 1000


def test_adjectives_follow_the_noun(corpus):
    nouns = {
        "car": "(?:voiture|auto)",
        "house": "maison",
        "dog": "chien",
        "box": "boîte",
        "dress": "robe",
    }
    colors = {
        "red": "rouges?",
        "green": "vert(?:e|s|es)?",
        "black": "noir(?:e|s|es)?",
        "white": "blanc(?:he|s|hes)?",
    }
    pattern = r"\b(?:a|the) (red|green|black|white) (car|house|dog|box|dress)(?:e?s)?\b"
    found = matching(corpus, pattern)
    assert len(found) > 30
    for en, fr in found:
        color, noun = re.search(pattern, en).groups()
        assert re.search(rf"\b{nouns[noun]}s? {colors[color]}", fr), (en, fr)


def test_gender_agreement(corpus):
    found = matching(
        corpus, r"\bshe (?:is|was|will be) (?:not )?(?:very )?(tired|busy|polite)\b", re.IGNORECASE
    )
    assert len(found) > 10
    for en, fr in found:
        assert re.search(r"\b(?:fatiguée|occupée|polie)\b", fr), (en, fr)
    # Participles of être verbs agree with the subject: elle est allée.
    found = matching(corpus, r"\bshe (went|came|arrived|fell|stayed)\b", re.IGNORECASE)
    assert len(found) > 10
    for en, fr in found:
        assert re.search(r"elle est (?:\w+ )?(?:allée|venue|arrivée|tombée|restée)\b", fr, re.I), (
            en,
            fr,
        )


def test_split_negation(corpus):
    found = matching(corpus, r"\b(?:doesn't|does not|don't|do not|didn't|did not) \w+")
    assert len(found) > 1000
    for en, fr in found:
        # ne ... pas, or ne ... plus for "not ... anymore"
        assert re.search(r"\bne\b|\bn'", fr) and re.search(r"\b(?:pas|plus)\b", fr), (en, fr)
    for en, fr in matching(corpus, r"\bnever\b"):
        assert re.search(r"(?:\bne\b|\bn').* jamais\b", fr), (en, fr)
    # After a negation the indefinite article becomes de: Il n'a pas d'horloge.
    found = matching(corpus, r"\b(?:doesn't|does not|don't|do not) have an? \w+\.$")
    assert found
    for en, fr in found:
        assert re.search(r"\bpas d(?:e |')", fr), (en, fr)


def test_numbers_are_words(corpus):
    assert not any(ch.isdigit() for en, fr in corpus for ch in en + fr)
    found = matching(corpus, r"\bseventy-one\b")
    assert found and all("soixante et onze" in fr for _, fr in found)
    assert [french_number(n) for n in (21, 71, 80, 81, 99, 100)] == [
        "vingt et un",
        "soixante et onze",
        "quatre-vingts",
        "quatre-vingt-un",
        "quatre-vingt-dix-neuf",
        "cent",
    ]
    assert french_number(21, "f") == "vingt et une"
    assert [english_number(n) for n in (13, 40, 42)] == ["thirteen", "forty", "forty-two"]


def test_questions(corpus):
    yes_no = matching(corpus, r"^(?:Does|Did|Will|Do) .*\?$")
    assert len(yes_no) > 1000
    assert all(fr.startswith(("Est-ce que", "Est-ce qu'")) for _, fr in yes_no)
    what = matching(corpus, r"^What ")
    assert what and all(fr.startswith("Qu'est-ce qu") for _, fr in what)


def test_elision_and_contraction(corpus):
    unelided = re.compile(r"\b(?:le|la|de|je|ne|que) (?!huit|onze)[aeiouyéèêàâîôûœh]", re.I)
    uncontracted = re.compile(r"\b(?:à|de) les?\b")
    for en, fr in corpus[:20000]:
        assert not unelided.search(fr), (en, fr)
        assert not uncontracted.search(fr), (en, fr)


def test_conjugation():
    assert conjugate("manger").present[3] == "mangeons"
    assert conjugate("acheter").present[0] == "achète"
    assert conjugate("acheter").future(0) == "achèterai"
    assert conjugate("finir").present[5] == "finissent"
    assert conjugate("prendre").present[5] == "prennent"
    assert conjugate("aller", "être").future(2) == "ira"


def test_ambiguity_gives_several_targets_with_fixed_probabilities(corpus, ambiguous):
    targets = collections.defaultdict(set)
    for en, fr in ambiguous:
        targets[en].add(fr)
    assert sum(len(found) > 1 for found in targets.values()) >= 10
    # "you" is tu (0.6) or vous (0.4) at ambiguity 1, always tu at 0.
    for pairs, expected in ((corpus[:20000], 1.0), (ambiguous, 0.6)):
        forms = [fr.split()[0] for en, fr in pairs if en.startswith("You ")]
        assert len(forms) > 300
        share = forms.count("Tu") / len(forms)
        assert abs(share - expected) < 0.06, share
        assert all(form in ("Tu", "Vous") for form in forms)


def test_ambiguity_keeps_the_english_side(corpus, ambiguous):
    assert [en for en, _ in ambiguous[:100]] == [en for en, _ in corpus[:100]]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_pairs": 0}, "num_pairs"),
        ({"num_pairs": 10, "ambiguity": 1.5}, "ambiguity"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_corpus(**kwargs)
