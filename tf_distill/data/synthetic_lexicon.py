"""The vocabulary of the synthetic corpus: English words, their French translations, classes.

Tables are plain text files in `lexicon/` (package data), one entry a line, `|` between
columns, parsed once at import.
French alternatives are separated by `;`, each with an optional `=weight`: the first is the
translation at `ambiguity=0`, the weights are the fixed probabilities at `ambiguity=1`.
Underscores stand for spaces inside one word (`pomme_de_terre`).

Noun classes (tags): P person, J profession (a person one can *be*), A animal, F countable
food, M mass food, D drink, R something to read or write, V vehicle, T thing, U a thing
with a surface (on / under), L place, Q question / problem / lesson, S something to listen
to, G game or sport, I musical instrument, N language.
"""

from importlib import resources

from tf_distill.data.synthetic_morphology import (
    conjugate,
    english_gerund,
    english_past,
    english_plural,
    english_third_singular,
    french_adjective_forms,
    french_plural,
)


def _table(name):
    """One word table of the lexicon/ folder beside this module (package data)."""
    return (resources.files("tf_distill.data") / "lexicon" / f"{name}.txt").read_text(
        encoding="utf-8"
    )


_NOUNS = _table("nouns")

_NAMES = _table("names")

# Prenominal French adjectives are marked `^` (une petite maison, une maison rouge).
_ADJECTIVES = _table("adjectives")

# English column: verb and particle (`wait for`). French column: infinitive (`*` = être in
# the past) and preposition. Frames: tr (direct object), in (no object), go (motion to an
# optional destination), gv (object and a person: give X to Y). Flags: g = generic
# object (English "I like apples" -> French "J'aime les pommes"), s = stative (no -ing),
# b = a language object without article in French (parler français).
_VERBS = _table("verbs")


class Noun:
    """One English noun with its French translations (options) and classes (tags)."""

    __slots__ = ("en", "en_plural", "options", "tags", "mass")

    def __init__(self, en, en_plural, options, tags):
        self.en = en
        self.en_plural = en_plural
        self.options = options
        self.tags = tags
        self.mass = "M" in tags or "D" in tags


class FrenchNoun:
    """`forms[gender] = (singular, plural)`; two genders when the person's sex decides."""

    __slots__ = ("forms", "genders")

    def __init__(self, forms):
        self.forms = forms
        self.genders = tuple(forms)


class Adjective:
    __slots__ = ("en", "options", "tags")

    def __init__(self, en, options, tags):
        self.en = en
        self.options = options
        self.tags = tags


class FrenchAdjective:
    __slots__ = ("forms", "prenominal")

    def __init__(self, forms, prenominal):
        self.forms = forms
        self.prenominal = prenominal


class Verb:
    """One English verb sense: forms, particle, frame and its French translations."""

    __slots__ = (
        "base",
        "third",
        "past",
        "gerund",
        "particle",
        "options",
        "frame",
        "subject_tags",
        "object_tags",
        "generic",
        "stative",
        "bare",
        "objects",
    )

    def __init__(self, base, particle, options, frame, subject_tags, object_tags, flags):
        self.base = base
        self.third = english_third_singular(base)
        self.past = english_past(base)
        self.gerund = english_gerund(base)
        self.particle = particle
        self.options = options
        self.frame = frame
        self.subject_tags = subject_tags
        self.object_tags = object_tags
        self.generic = "g" in flags
        self.stative = "s" in flags
        self.bare = "b" in flags
        self.objects = ()


class FrenchVerbSense:
    """A conjugated French verb plus the preposition its object takes (`parler à`)."""

    __slots__ = ("verb", "preposition")

    def __init__(self, verb, preposition):
        self.verb = verb
        self.preposition = preposition


def _rows(table):
    for line in table.strip().splitlines():
        yield [cell.strip() for cell in line.split("|")]


def _alternatives(spec, parse):
    """`"a =0.6; b =0.4"` -> ((parse("a"), 0.6), (parse("b"), 0.4))."""
    options = []
    for part in spec.split(";"):
        text, _, weight = part.partition("=")
        options.append((parse(text.strip()), float(weight) if weight else 1.0))
    total = sum(weight for _, weight in options)
    return tuple((value, weight / total) for value, weight in options)


def _french_noun(text):
    words = text.replace("_", " ").split()
    if ":" in words[0]:  # m:ami f:amie
        forms = {}
        for word in words:
            gender, _, form = word.partition(":")
            forms[gender] = _singular_plural(form)
        return FrenchNoun(forms)
    return FrenchNoun({words[-1]: _singular_plural(" ".join(words[:-1]))})


def _singular_plural(form):
    singular, _, plural = form.partition("/")
    return singular, plural or french_plural(singular)


def _french_adjective(text):
    prenominal = text.startswith("^")
    return FrenchAdjective(french_adjective_forms(text.lstrip("^").replace("_", " ")), prenominal)


def _french_verb(text):
    words = text.split()
    infinitive = words[0]
    auxiliary = "être" if infinitive.endswith("*") else "avoir"
    verb = conjugate(infinitive.rstrip("*"), auxiliary)
    return FrenchVerbSense(verb, words[1] if len(words) > 1 else "")


def _load_nouns():
    nouns = []
    for en, fr, tags in _rows(_NOUNS):
        singular, _, plural = en.partition("/")
        nouns.append(
            Noun(
                singular, plural or english_plural(singular), _alternatives(fr, _french_noun), tags
            )
        )
    return nouns


def _load_verbs(nouns):
    verbs = []
    for en, fr, frame, subject_tags, object_tags, flags in _rows(_VERBS):
        base, _, particle = en.partition(" ")
        verb = Verb(
            base, particle, _alternatives(fr, _french_verb), frame, subject_tags, object_tags, flags
        )
        verb.objects = tuple(n for n in nouns if any(tag in object_tags for tag in n.tags))
        verbs.append(verb)
    return verbs


NOUNS = _load_nouns()
NAMES = [(en, fr, gender) for en, fr, gender in _rows(_NAMES)]
ADJECTIVES = [
    Adjective(en, _alternatives(fr, _french_adjective), tags) for en, fr, tags in _rows(_ADJECTIVES)
]
VERBS = _load_verbs(NOUNS)


def nouns_with(tags):
    return [noun for noun in NOUNS if any(tag in tags for tag in noun.tags)]


_ADJECTIVES_FOR = {}


def adjectives_for(noun):
    """The adjectives that can describe `noun` (by class), computed once per noun."""
    found = _ADJECTIVES_FOR.get(noun.en)
    if found is None:
        found = _ADJECTIVES_FOR[noun.en] = [
            adjective for adjective in ADJECTIVES if any(t in adjective.tags for t in noun.tags)
        ]
    return found
