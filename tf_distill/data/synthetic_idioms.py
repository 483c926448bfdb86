"""Clauses French says its own way: states with avoir (`I am hungry` -> `J'ai faim`),
the weather (`Il fait froid`, `Il pleuvra`) and `there is` (`il y a`); methods that
`synthetic_clauses.Clauses` inherits (they use its `_tense`, `_subject`, `_negation` and
`_assemble`)."""

from tf_distill.data.synthetic_lexicon import Verb
from tf_distill.data.synthetic_morphology import (
    THIRD_SINGULAR,
    conjugate,
    english_number,
    french_number,
)
from tf_distill.data.synthetic_phrases import CONCRETE, NounPhrase, split_words

# English adjective -> French noun after avoir (j'ai faim), and after a negation.
_IDIOMS = (
    ("hungry", ["faim"], None), ("thirsty", ["soif"], None), ("cold", ["froid"], None),
    ("hot", ["chaud"], None), ("afraid", ["peur"], None), ("sleepy", ["sommeil"], None),
    ("right", ["raison"], None), ("wrong", ["tort"], None),
    ("lucky", ["de", "la", "chance"], ["de", "chance"]),
)  # fmt: skip
# Weather: English adjective or verb, French `il fait X` or a verb.
_WEATHER = (
    ("cold", "froid"),
    ("hot", "chaud"),
    ("nice", "beau"),
    ("rain", "pleuvoir"),
    ("snow", "neiger"),
)
_WH = {"where": "où", "when": "quand", "why": "pourquoi"}
_WEATHER_VERBS = {
    word: Verb(word, "", ((None, 1.0),), "in", "", "", "") for word in ("rain", "snow")
}
FRENCH_VERBS = {name: conjugate(name) for name in ("être", "faire", "pleuvoir", "neiger")}


class IdiomClauses:
    """Avoir idioms and ages, weather, `there is` (a mixin of `Clauses`)."""

    def idiom(self, mode, tense=None, fr_tense=None):
        """States French says with avoir: `I am hungry` -> `J'ai faim`; ages."""
        rng = self.rng
        tense, fr_tense = self._tense(tense, fr_tense)
        subject = self._subject(mode)
        negation = self._negation(mode, tense)
        question = mode not in ("statement", "who")
        if self.chance(0.25) and mode != "why":  # Tom is twenty years old.
            age = rng.randint(2, 99)
            en_tail = [english_number(age), "years", "old"]
            fr_tail = split_words(french_number(age)) + ["ans"]
            negation = None
        else:
            en_word, fr_tail, fr_negated = rng.choice(_IDIOMS)
            en_tail = [en_word]
            if negation and fr_negated:
                fr_tail = fr_negated
            elif fr_negated is None and self.chance(0.15):
                en_tail = ["very", en_word]
                fr_tail = ["très"] + fr_tail
        en_verb = self.english_verb("be", subject.en_agreement, tense, negation, None, question)
        fr_verb = self.french_state("avoir", subject, fr_tense, negation)
        en, fr = self._assemble(mode, subject, en_verb, fr_verb, en_tail, fr_tail, negation)
        if mode in _WH:
            return [mode] + en, [_WH[mode], "est-ce", "que"] + fr
        return en, fr

    def weather(self, mode, tense, fr_tense=None):
        """`It is cold` -> `Il fait froid`; `It will rain` -> `Il pleuvra`."""
        fr_tense = fr_tense or tense
        negation = "not" if self.chance(0.2) else None
        en_word, fr_word = self.rng.choice(_WEATHER)
        it = NounPhrase(["it"], "3sg", ["il"], THIRD_SINGULAR, "m", False, pronoun="it")
        question = mode == "yesno"
        if fr_word in ("pleuvoir", "neiger"):
            verb = _WEATHER_VERBS[en_word]
            progressive = tense == "present" and fr_tense == "present" and mode != "if"
            en_verb = self.english_verb(verb, "3sg", tense, negation, None, question, progressive)
            fr_verb = self.french_verb(FRENCH_VERBS[fr_word], it, fr_tense, negation)
            return self._assemble(mode, it, en_verb, fr_verb, [], [], negation)
        en_verb = self.english_verb("be", "3sg", tense, negation, None, question)
        faire = FRENCH_VERBS["faire"]
        if fr_tense == "past":
            finite = "faisait"
        elif fr_tense == "future":
            finite = faire.future(THIRD_SINGULAR)
        else:
            finite = faire.present[THIRD_SINGULAR]
        fr_verb = ["ne", finite, "pas"] if negation else [finite]
        return self._assemble(mode, it, en_verb, fr_verb, [en_word], [fr_word], negation)

    def there(self, mode, tense=None, fr_tense=None):
        """`There are three cats in the garden.` -> `Il y a trois chats dans le jardin.`"""
        rng = self.rng
        tense, fr_tense = self._tense(tense, fr_tense)
        noun = rng.choice(CONCRETE)
        negation = "not" if self.chance(0.25) else None
        if noun.mass:
            kind = "some"
        else:
            kind = "a" if negation or self.chance(0.7) else "number"
        thing = self.noun_phrase(noun, kind=kind, quantity=False)
        en_where, fr_where = self.location(noun.tags)
        be = "are" if thing.plural else "is"
        if tense == "past":
            be = "were" if thing.plural else "was"
        en_thing = thing.en
        if negation:
            en_thing = ["no"] + (en_thing[1:] if en_thing[0] in ("a", "some") else en_thing)
        if tense == "future":
            en_verb = (["will"], ["be"]) if mode == "yesno" else ([], ["will", "be"])
        else:
            en_verb = ([be], []) if mode == "yesno" else ([], [be])
        if mode == "yesno":
            en = en_verb[0] + ["there"] + en_verb[1] + en_thing + en_where
        else:
            en = ["there"] + en_verb[1] + en_thing + en_where
        finite = {"present": "a", "past": "avait", "future": "aura"}[fr_tense]
        fr_verb = ["il", "ne", "y", finite, "pas"] if negation else ["il", "y", finite]
        fr = fr_verb + (thing.fr_negated if negation else thing.fr) + fr_where
        if mode == "yesno" and self.hide("question") == "est-ce que":
            fr = ["est-ce", "que"] + fr
        return en, fr
