"""Noun phrases and verb groups of the synthetic corpus, rendered in English and French at once.

`Phrases` holds the two random streams of one corpus: `rng` draws the *meaning* (which
words, tense, negation) and decides the English sentence alone; `choices` draws only among
the valid French translations of that meaning (`pick`). So a source sentence's
translation is a function of the source at `ambiguity=0`, and the sources do not change
when the ambiguity does.
"""

from tf_distill.data.synthetic_lexicon import NAMES, adjectives_for, nouns_with
from tf_distill.data.synthetic_morphology import (
    THIRD_PLURAL,
    THIRD_SINGULAR,
    english_number,
    french_adjective,
    french_number,
    starts_with_vowel_sound,
)
from tf_distill.data.synthetic_verbs import VerbGroups
from tf_distill.data.synthetic_words import (
    COLORS,
    ELIDED_PREFIX,
    FREQUENCY,
    LOCATIONS,
    MANNER,
    POSSESSIVE,
    SURFACE_PREPOSITIONS,
    TIMES,
    VERY,
)

# Hidden French choices that English does not mark, drawn once per sentence. The first
# option is the one used at ambiguity=0.
HIDDEN = {
    "you": (("tu", 0.6), ("vous", 0.4)),
    "you_plural": ((False, 0.5), (True, 0.5)),
    "we": (("nous", 0.7), ("on", 0.3)),
    "gender": (("m", 0.5), ("f", 0.5)),
    "they": (("m", 0.7), ("f", 0.3)),
    "question": (("est-ce que", 0.7), ("intonation", 0.3)),
    "past_state": (("imperfect", 0.8), ("compound", 0.2)),
}

PERSONS = nouns_with("P")
ANIMALS = nouns_with("A")
PLACES = nouns_with("L")
SURFACES = nouns_with("U")
PROFESSIONS = nouns_with("J")
CONCRETE = nouns_with("AVTLFR")


def split_words(text):
    """`"l'année dernière"` -> `["l'", "année", "dernière"]` (elided words stand alone)."""
    words = []
    for word in text.split():
        while word.startswith(ELIDED_PREFIX):
            cut = word.index("'") + 1
            words.append(word[:cut])
            word = word[cut:]
        words.append(word)
    return words


class NounPhrase:
    """A noun phrase in both languages plus what French agreement needs.

    `en_agreement` is `"1sg"`, `"3sg"` or `"pl"` (the English verb form). `fr_negated` is
    the French form after a negated verb, where `un`/`des`/`du` become `de`. `pronoun`
    is set for subject pronouns (`"I"`, `"tu"`, `"he"`, ...) and `None` otherwise.
    """

    __slots__ = (
        "en",
        "en_agreement",
        "fr",
        "fr_negated",
        "person",
        "gender",
        "plural",
        "pronoun",
        "gender_known",
        "tags",
        "has_relative",
    )

    def __init__(
        self,
        en,
        en_agreement,
        fr,
        person,
        gender,
        plural,
        fr_negated=None,
        pronoun=None,
        gender_known=True,
        tags="P",
    ):
        self.en = en
        self.en_agreement = en_agreement
        self.fr = fr
        self.fr_negated = fr if fr_negated is None else fr_negated
        self.person = person
        self.gender = gender
        self.plural = plural
        self.pronoun = pronoun
        self.gender_known = gender_known
        self.tags = tags
        self.has_relative = False


class Phrases(VerbGroups):
    """Draws and renders phrases; `synthetic.SentenceMaker` builds sentences from them."""

    def __init__(self, rng, choices, ambiguity):
        self.rng = rng
        self.choices = choices
        self.ambiguity = ambiguity
        self.hidden = {}

    # Choices among French translations. --------------------------------------------------

    def pick(self, options):
        """A French option: the first at ambiguity 0, the fixed weights at ambiguity 1."""
        if self.ambiguity == 0.0 or len(options) == 1:
            return options[0][0]
        choices = self.choices
        if choices.random() >= self.ambiguity:
            return options[0][0]
        r = choices.random()
        for value, weight in options:
            r -= weight
            if r < 0.0:
                return value
        return options[-1][0]

    def hide(self, name):
        """A hidden choice (tu or vous, the speaker's gender), the same for a whole sentence."""
        value = self.hidden.get(name)
        if value is None:
            value = self.hidden[name] = self.pick(HIDDEN[name])
        return value

    def chance(self, p):
        return self.rng.random() < p

    # Noun phrases. -----------------------------------------------------------------------

    def pronoun(self, which):
        """A subject pronoun: I, you, he, she, we, they."""
        if which == "I":
            gender = self.hide("gender")
            return NounPhrase(
                ["I"], "1sg", ["je"], 0, gender, False, pronoun="I", gender_known=False
            )
        if which == "you":
            form = self.hide("you")
            gender = self.hide("gender")
            if form == "tu":
                return NounPhrase(
                    ["you"], "pl", ["tu"], 1, gender, False, pronoun="tu", gender_known=False
                )
            return NounPhrase(
                ["you"],
                "pl",
                ["vous"],
                4,
                gender,
                self.hide("you_plural"),
                pronoun="vous",
                gender_known=False,
            )
        if which == "he":
            return NounPhrase(["he"], "3sg", ["il"], THIRD_SINGULAR, "m", False, pronoun="he")
        if which == "she":
            return NounPhrase(["she"], "3sg", ["elle"], THIRD_SINGULAR, "f", False, pronoun="she")
        if which == "we":
            gender = self.hide("gender")
            if self.hide("we") == "on":
                return NounPhrase(
                    ["we"],
                    "pl",
                    ["on"],
                    THIRD_SINGULAR,
                    gender,
                    True,
                    pronoun="we",
                    gender_known=False,
                )
            return NounPhrase(
                ["we"], "pl", ["nous"], 3, gender, True, pronoun="we", gender_known=False
            )
        gender = self.hide("they")
        return NounPhrase(
            ["they"],
            "pl",
            ["ils" if gender == "m" else "elles"],
            THIRD_PLURAL,
            gender,
            True,
            pronoun="they",
            gender_known=False,
        )

    def name(self):
        en, fr, gender = self.rng.choice(NAMES)
        return NounPhrase([en], "3sg", [fr], THIRD_SINGULAR, gender, False)

    def subject(self, animate=True):
        """A subject: a pronoun, a name or a noun phrase about a person or an animal."""
        r = self.rng.random()
        if r < 0.3:
            return self.pronoun(self.rng.choice(("I", "you", "he", "she", "we", "they")))
        if r < 0.45:
            return self.name()
        if r < 0.5:  # Tom and Mary
            first, second = self.name(), self.name()
            if first.en == second.en:
                return first
            gender = "f" if first.gender == second.gender == "f" else "m"
            return NounPhrase(
                first.en + ["and"] + second.en,
                "pl",
                first.fr + ["et"] + second.fr,
                THIRD_PLURAL,
                gender,
                True,
            )
        pool = PERSONS if (not animate or self.rng.random() < 0.75) else ANIMALS
        return self.noun_phrase(self.rng.choice(pool), definite_only=True)

    def possessor(self):
        """A pronoun key of `POSSESSIVE` for my / your / his ...; `you` is hidden tu or vous."""
        which = self.rng.choice(("I", "you", "he", "she", "we", "they"))
        return self.hide("you") if which == "you" else which

    def noun_phrase(
        self,
        noun,
        *,
        definite_only=False,
        generic=False,
        plural=None,
        adjectives=True,
        relative=None,
        quantity=True,
        kind=None,
    ):
        """A noun phrase about `noun` with a determiner, adjectives and maybe a relative clause.

        `definite_only` keeps to the, my, this, Mary's (subjects, places);
        `generic` is the object of like / hate: bare in English, definite in French.
        `relative` is a callable that returns a relative clause `(en, fr)` for the noun.
        `kind` forces the determiner: "the", "a", "some" (mass), "number", ...
        """
        rng = self.rng
        mass = noun.mass
        if plural is None:
            plural = not mass and rng.random() < 0.4
        # Determiner kind.
        r = rng.random()
        if kind is not None:
            pass
        elif generic:
            kind = "generic" if r < 0.6 else ("the" if r < 0.8 else "possessive")
            if kind == "generic" and not mass:
                plural = True
        elif definite_only:
            kind = (
                "the" if r < 0.6 else "possessive" if r < 0.8 else "this" if r < 0.9 else "genitive"
            )
        elif mass:
            kind = "the" if r < 0.3 else "some" if r < 0.75 else "quantity" if quantity else "some"
        else:
            kind = (
                "the"
                if r < 0.35
                else "a"
                if r < 0.65
                else "possessive"
                if r < 0.78
                else "this"
                if r < 0.86
                else "number"
                if r < 0.95
                else "genitive"
            )
            if kind == "number" and not quantity:
                kind = "the"
        if kind == "number":
            plural = True

        french = self.pick(noun.options)
        genders = french.genders
        gender = genders[0] if len(genders) == 1 else self.pick(HIDDEN["gender"])
        singular_form, plural_form = french.forms[gender]
        fr_plural = plural or "X" in noun.tags
        fr_noun = plural_form if fr_plural else singular_form
        en_noun = noun.en_plural if plural else noun.en

        # Adjectives: English puts them all first; French splits them around the noun.
        en_adjectives, fr_before, fr_after = [], [], []
        if adjectives and rng.random() < 0.35:
            candidates = adjectives_for(noun)
            if candidates:
                adjective = rng.choice(candidates)
                intensifier = None
                if adjective.en not in COLORS and rng.random() < 0.15:
                    intensifier = VERY
                    en_adjectives.append(intensifier[0])
                en_adjectives.append(adjective.en)
                french_adjective_ = self.pick(adjective.options)
                words = [
                    french_adjective(
                        french_adjective_.forms, gender, fr_plural, starts_with_vowel_sound(fr_noun)
                    )
                ]
                if intensifier is not None:
                    words.insert(0, self.pick(intensifier[1]))
                (fr_before if french_adjective_.prenominal else fr_after).extend(words)

        en_det, fr_det, fr_negated_det = self._determiner(
            kind, noun, gender, fr_plural, plural, bool(fr_before)
        )
        en = en_det + en_adjectives + [en_noun]
        fr_rest = fr_before + split_words(fr_noun) + fr_after
        if kind == "genitive":
            owner = (
                self.name()
                if rng.random() < 0.5
                else self.noun_phrase(
                    rng.choice(PERSONS), definite_only=True, plural=False, adjectives=False
                )
            )
            en = owner.en[:-1] + [owner.en[-1] + "'s"] + en_adjectives + [en_noun]
            fr_rest = fr_rest + ["de"] + owner.fr
        if relative is not None:
            en_relative, fr_relative = relative(noun, plural, gender)
            en = en + en_relative
            fr_rest = fr_rest + fr_relative
        fr = fr_det + fr_rest
        fr_negated = fr if fr_negated_det is None else fr_negated_det + fr_rest
        person = THIRD_PLURAL if plural else THIRD_SINGULAR
        phrase = NounPhrase(
            en,
            "pl" if plural else "3sg",
            fr,
            person,
            gender,
            plural,
            fr_negated,
            gender_known=len(genders) == 1,
            tags=noun.tags,
        )
        phrase.has_relative = relative is not None
        return phrase

    def _determiner(self, kind, noun, gender, fr_plural, plural, adjective_before):
        """English and French determiner words; French after a negation (or None: same)."""
        rng = self.rng
        definite = ["les"] if fr_plural else ["le" if gender == "m" else "la"]
        if kind in ("the", "genitive", "generic"):
            en = [] if kind != "the" else ["the"]
            return en, definite, None
        if kind == "a":
            if plural:
                en = ["some"] if rng.random() < 0.3 else []
                fr = ["de"] if adjective_before else ["de", "les"]
            else:
                en, fr = ["a"], ["un" if gender == "m" else "une"]
            return en, fr, ["de"]
        if kind == "some":  # mass: du pain, de l'eau
            en = ["some"] if rng.random() < 0.3 else []
            return en, ["de"] + definite, ["de"]
        if kind == "quantity":
            if rng.random() < 0.6:
                return ["a", "lot", "of"], ["beaucoup", "de"], None
            return ["a", "little"], ["un", "peu", "de"], None
        if kind == "possessive":
            owner = self.possessor()
            en_word, fr_words = POSSESSIVE[owner]
            fr_word = fr_words[2] if fr_plural else fr_words[0 if gender == "m" else 1]
            return [en_word], [fr_word], None
        if kind == "this":
            if plural:
                en = ["these" if rng.random() < 0.5 else "those"]
            else:
                en = ["this" if rng.random() < 0.5 else "that"]
            return en, ["ces" if fr_plural else ("ce" if gender == "m" else "cette")], None
        # A number 2..100, small ones more often.
        n = rng.randint(2, 10) if rng.random() < 0.6 else rng.randint(11, 100)
        en, fr = [english_number(n)], split_words(french_number(n, gender))
        if rng.random() < 0.2:
            return ["the"] + en, ["les"] + fr, None
        return en, fr, None

    def place(self):
        """A definite noun phrase about a place (for in / to / near)."""
        return self.noun_phrase(self.rng.choice(PLACES), definite_only=True, quantity=False)

    def location(self, subject_tags="P"):
        """`in the garden` / `dans le jardin`; `on the table` for things that stand on one."""
        rng = self.rng
        if "L" not in subject_tags and rng.random() < 0.5:
            en_prep, fr_prep = rng.choice(SURFACE_PREPOSITIONS)
            where = self.noun_phrase(rng.choice(SURFACES), definite_only=True)
        else:
            en_prep, fr_prep = rng.choice(LOCATIONS)
            where = self.place()
        return en_prep.split() + where.en, list(fr_prep) + where.fr

    def destination(self, preposition="to"):
        """`to the market` / `au marché`, or `home` / `à la maison`."""
        if self.rng.random() < 0.15:
            return ["home"], ["à", "la", "maison"]
        where = self.place()
        return [preposition] + where.en, ["à"] + where.fr

    def time(self, tense):
        en, options = self.rng.choice(TIMES[tense])
        return en.split(), split_words(self.pick(options))

    def clock(self):
        hour = self.rng.randint(1, 11)
        fr = split_words(french_number(hour, "f")) + ["heure" if hour == 1 else "heures"]
        return ["at", english_number(hour), "o'clock"], ["à"] + fr

    def frequency(self):
        en, options = self.rng.choice(FREQUENCY)
        return en, self.pick(options)

    def manner(self):
        en, options = self.rng.choice(MANNER)
        return en, self.pick(options)

    # Verb groups. ------------------------------------------------------------------------
