"""Clauses of the synthetic corpus: actions, states, weather, `there is`, relative clauses.

Each clause comes in a *mode*: a statement, a yes/no question, or a question about one
part of it (what, whom, who, where, when, why, how many), rendered in English and French
together. `synthetic.SentenceMaker` joins clauses into sentences.
"""

from tf_distill.data.synthetic_idioms import IdiomClauses
from tf_distill.data.synthetic_lexicon import ADJECTIVES, VERBS
from tf_distill.data.synthetic_morphology import (
    THIRD_SINGULAR,
    french_adjective,
)
from tf_distill.data.synthetic_phrases import (
    CONCRETE,
    PERSONS,
    PROFESSIONS,
    NounPhrase,
    Phrases,
    split_words,
)

TENSES = ("present",) * 9 + ("past",) * 6 + ("future",) * 5
_WH = {"where": "où", "when": "quand", "why": "pourquoi"}


_PREDICATES = {}  # noun tags -> adjectives that can describe them
_RELATIVE_VERBS = {}  # noun -> verbs that can take it as a direct object
_PREDICATE_INTENSIFIERS = (
    ("very", (("très", 1.0),)),
    ("too", (("trop", 1.0),)),
    ("quite", (("assez", 0.6), ("plutôt", 0.4))),
)


def _verb_pools():
    pools = {}
    for animate in ("P", "A"):
        usable = [verb for verb in VERBS if animate in verb.subject_tags]
        direct = [v for v in usable if v.frame == "tr" and not v.options[0][0].preposition]
        pools[animate, "any"] = usable
        pools[animate, "what"] = [
            v for v in direct if not v.generic and any("P" not in n.tags for n in v.objects)
        ]
        pools[animate, "whom"] = [v for v in direct if any("P" in n.tags for n in v.objects)]
        pools[animate, "howmany"] = [
            v for v in direct if not v.generic and any(_countable(n) for n in v.objects)
        ]
    return pools


def _countable(noun):
    return not noun.mass and not any(tag in noun.tags for tag in "GNXS")


# Verbs by subject (P person, A animal) and by question: "what" needs a thing as object.
VERB_POOLS = _verb_pools()


class Clauses(IdiomClauses, Phrases):
    """Draws one clause in both languages; `depth` > 0 inside a relative or second clause."""

    def __init__(self, rng, choices, ambiguity):
        super().__init__(rng, choices, ambiguity)
        self.depth = 0

    def clause(self, mode, tense=None, fr_tense=None):
        """One clause in `mode`: statement, yesno, what, whom, who, where, when, why, howmany.

        `tense` is the English tense; `fr_tense` the French one when they differ
        (`when he comes` -> `quand il viendra`). Returns `(english_words, french_words)`.
        """
        rng = self.rng
        if mode in ("what", "whom", "howmany", "when"):
            return self.action(mode, tense, fr_tense)
        r = rng.random()
        if mode in ("statement", "yesno") and r < 0.04:
            return self.weather(mode, tense or rng.choice(TENSES), fr_tense)
        if mode in ("statement", "yesno") and r < 0.09:
            return self.there(mode, tense, fr_tense)
        if r < 0.16 and mode != "where":
            return self.idiom(mode, tense, fr_tense)
        if r < 0.36 or (mode == "where" and r < 0.5):
            return self.copula(mode, tense, fr_tense)
        return self.action(mode, tense, fr_tense)

    def _tense(self, tense, fr_tense):
        tense = tense or self.rng.choice(TENSES)
        return tense, fr_tense or tense

    def _negation(self, mode, tense):
        r = self.rng.random()
        if r < 0.2:
            return "not"
        if r < 0.25 and mode in ("statement", "who"):
            return "never"
        if r < 0.27 and tense != "past" and mode == "statement":
            return "anymore"
        return None

    def _subject(self, mode, things=False):
        if mode == "who":
            return NounPhrase(
                ["who"], "3sg", ["qui"], THIRD_SINGULAR, "m", False, gender_known=False
            )
        if things and self.chance(0.3):
            return self.noun_phrase(
                self.rng.choice(CONCRETE), definite_only=True, relative=self._relative_maker()
            )
        return self.subject()

    def _assemble(self, mode, subject, en_verb, fr_verb, en_tail, fr_tail, negation):
        """Puts a clause together in both languages for its mode."""
        front, rest = en_verb
        if negation == "anymore":
            en_tail = en_tail + ["anymore"]
        if mode in ("statement", "who"):
            en = subject.en + front + rest + en_tail
        else:
            en = front + subject.en + rest + en_tail
        fr = subject.fr + fr_verb + fr_tail
        if mode == "yesno" and self.hide("question") == "est-ce que":
            fr = ["est-ce", "que"] + fr
        return en, fr

    def action(self, mode, tense=None, fr_tense=None, subject=None):
        """Someone does something: `Tom ate three apples in the garden yesterday.`"""
        rng = self.rng
        tense, fr_tense = self._tense(tense, fr_tense)
        subject = subject or self._subject(mode)
        animate = "A" if "A" in subject.tags else "P"
        pool_name = mode if mode in ("what", "whom", "howmany") else "any"
        verb = rng.choice(VERB_POOLS[animate, pool_name])
        sense = self.pick(verb.options)
        negation = self._negation(mode, tense) if mode != "howmany" else None
        frequency = None
        progressive = tense == "present" and fr_tense == "present" and self.chance(0.2)
        if (
            negation is None
            and not progressive
            and mode in ("statement", "yesno")
            and self.chance(0.1)
        ):
            frequency = self.frequency()
        question = mode not in ("statement", "who")
        en_verb = self.english_verb(
            verb,
            subject.en_agreement,
            tense,
            negation,
            frequency and frequency[0],
            question,
            progressive,
        )
        fr_frequency = frequency and frequency[1]

        en_tail, fr_tail = [], []
        en_front, fr_front = [], []  # for what / whom / how many
        timed = mode != "when"
        if verb.frame in ("tr", "gv"):
            en_object, fr_object, obj = self._object(verb, sense, mode, negation)
            # A time after a relative clause would read as the relative clause's time.
            timed = timed and not obj.has_relative
            if mode in ("what", "whom"):
                en_front = ["what"] if mode == "what" else ["who"]
                fr_front = ["qu'est-ce", "que"] if mode == "what" else ["qui", "est-ce", "que"]
                en_tail = [verb.particle] if verb.particle else []
            elif mode == "howmany":
                en_front = ["how", "many", obj.en[-1]]
                fr_front = ["combien"] + obj.fr_negated + ["est-ce", "que"]
                en_tail = [verb.particle] if verb.particle else []
            else:
                en_tail, fr_tail = en_object, fr_object
            if verb.frame == "gv":
                if self.chance(0.6):
                    recipient = self.noun_phrase(rng.choice(PERSONS), definite_only=True)
                else:
                    recipient = self.name()
                if mode not in ("what", "howmany") and self.chance(0.4):
                    en_tail = recipient.en + en_tail
                else:
                    en_tail = en_tail + ["to"] + recipient.en
                fr_tail = fr_tail + ["à"] + recipient.fr
        elif verb.frame == "go" and mode != "where" and self.chance(0.75):
            en_tail, fr_tail = self.destination("at" if verb.base == "arrive" else "to")
        elif verb.frame == "in" and mode != "where":
            r = rng.random()
            if r < 0.4:
                en_tail, fr_tail = self.location(subject.tags)
            elif r < 0.55 and frequency is None:
                en_manner, fr_manner = self.manner()
                en_tail = [en_manner]
                if fr_manner in ("bien", "mal"):  # il a bien dormi
                    fr_frequency = fr_manner
                else:
                    fr_tail = [fr_manner]
        if timed and self.chance(0.2):
            en_time, fr_time = self.time(tense) if self.chance(0.8) else self.clock()
            en_tail, fr_tail = en_tail + en_time, fr_tail + fr_time

        fr_verb = self.french_verb(sense.verb, subject, fr_tense, negation, fr_frequency)
        en, fr = self._assemble(mode, subject, en_verb, fr_verb, en_tail, fr_tail, negation)
        if mode in ("what", "whom", "howmany"):
            return en_front + en, fr_front + fr
        if mode in _WH:
            return [mode] + en, [_WH[mode], "est-ce", "que"] + fr
        return en, fr

    def _object(self, verb, sense, mode, negation):
        """The object of a transitive verb: `(en, fr, phrase)`."""
        rng = self.rng
        objects = verb.objects
        if mode == "what":
            objects = [n for n in objects if "P" not in n.tags]
        elif mode == "whom":
            objects = [n for n in objects if "P" in n.tags]
        elif mode == "howmany":
            objects = [n for n in objects if _countable(n)]
        noun = rng.choice(objects)
        preposition = sense.preposition
        if "G" in noun.tags or "N" in noun.tags:  # play football, speak French
            french = self.pick(noun.options)
            gender = french.genders[0]
            singular, plural = french.forms[gender]
            if verb.bare:
                fr = split_words(singular)
            elif "X" in noun.tags:
                fr = ["les"] + split_words(plural)
            else:
                fr = ["le" if gender == "m" else "la"] + split_words(singular)
            obj = NounPhrase([noun.en], "3sg", fr, THIRD_SINGULAR, gender, False)
        elif mode == "howmany":
            obj = self.noun_phrase(noun, plural=True, adjectives=False, kind="a")
            obj.en = obj.en[-1:]
        elif "I" in noun.tags and verb.base == "play":
            obj = self.noun_phrase(noun, definite_only=True, plural=False)
        else:
            relative = self._relative_maker() if mode == "statement" else None
            obj = self.noun_phrase(noun, generic=verb.generic, relative=relative)
        en_words = obj.en
        if negation and en_words[0] == "some":  # not "does not eat some apples"
            en_words = en_words[1:]
        en = ([verb.particle] if verb.particle else []) + en_words
        fr_words = obj.fr_negated if negation and not preposition else obj.fr
        fr = ([preposition] if preposition else []) + fr_words
        return en, fr, obj

    def copula(self, mode, tense=None, fr_tense=None):
        """Something is some way or somewhere: `The red cars are not in the garage.`"""
        rng = self.rng
        tense, fr_tense = self._tense(tense, fr_tense)
        subject = self._subject(mode, things=mode != "who")
        negation = self._negation(mode, tense) if mode != "where" else None
        kind = rng.random()
        if mode == "where":
            kind = 1.0
        en_tail, fr_tail = [], []
        frequency = None
        if kind < 0.12 and "P" in subject.tags and mode != "who":  # She is a doctor.
            en_tail, fr_tail = self._profession(subject)
        if not en_tail and kind < 0.75:
            adjective = self._predicate_adjective(subject)
            if adjective is not None:
                en_tail, fr_tail = adjective
                if negation is None and self.chance(0.1):
                    frequency = self.frequency()
        if not en_tail and mode != "where":
            en_tail, fr_tail = self.location(subject.tags)
        question = mode not in ("statement", "who")
        en_verb = self.english_verb(
            "be", subject.en_agreement, tense, negation, frequency and frequency[0], question
        )
        if mode == "where":  # Où est le chat ? Où est-il ?
            front, rest = en_verb
            en = ["where"] + front + subject.en + rest
            if subject.pronoun is not None:
                return en, ["où"] + self.french_state("être", subject, fr_tense, None, invert=True)
            return en, ["où"] + self.french_state("être", subject, fr_tense, None) + subject.fr
        fr_verb = self.french_state("être", subject, fr_tense, negation, frequency and frequency[1])
        en, fr = self._assemble(mode, subject, en_verb, fr_verb, en_tail, fr_tail, negation)
        if mode in _WH:
            return [mode] + en, [_WH[mode], "est-ce", "que"] + fr
        return en, fr

    def _predicate_adjective(self, subject):
        candidates = _PREDICATES.get(subject.tags)
        if candidates is None:
            candidates = _PREDICATES[subject.tags] = [
                a for a in ADJECTIVES if any(t in a.tags for t in subject.tags)
            ]
        if not candidates:
            return None
        adjective = self.rng.choice(candidates)
        french = self.pick(adjective.options)
        fr = split_words(french_adjective(french.forms, subject.gender, subject.plural))
        en = [adjective.en]
        if self.chance(0.25):
            en_word, options = self.rng.choice(_PREDICATE_INTENSIFIERS)
            return [en_word] + en, [self.pick(options)] + fr
        return en, fr

    def _profession(self, subject):
        """`a doctor` / `médecin`: French drops the article and agrees the noun."""
        gender = subject.gender
        if subject.gender_known:
            candidates = [n for n in PROFESSIONS if all(gender in o.genders for o, _ in n.options)]
        else:
            candidates = [n for n in PROFESSIONS if all(len(o.genders) == 2 for o, _ in n.options)]
        noun = self.rng.choice(candidates)
        french = self.pick(noun.options)
        singular, plural = french.forms[gender]
        if subject.en_agreement == "pl":  # they, we, you (English cannot tell one "you")
            return [noun.en_plural], split_words(plural if subject.plural else singular)
        return ["a", noun.en], split_words(singular)

    # Relative clauses. -------------------------------------------------------------------

    def _relative_maker(self):
        """A callable for `noun_phrase(relative=...)`, or None (no relative clause here)."""
        if self.depth > 0 or not self.chance(0.12):
            return None
        return self._relative

    def _relative(self, noun, plural, gender):
        """`who sleeps in the garden` / `qui dort dans le jardin`, or `that Tom bought`."""
        self.depth += 1
        try:
            head = NounPhrase(
                [],
                "pl" if plural else "3sg",
                [],
                5 if plural else 2,
                gender,
                plural,
                tags=noun.tags,
            )
            if "P" in noun.tags or "A" in noun.tags:
                en, fr = self.action("statement", subject=head)
                return ["who" if "P" in noun.tags else "that"] + en, ["qui"] + fr
            verbs = _RELATIVE_VERBS.get(noun.en)
            if verbs is None:
                verbs = _RELATIVE_VERBS[noun.en] = [
                    v
                    for v in VERB_POOLS["P", "any"]
                    if v.frame == "tr" and noun in v.objects and not v.options[0][0].preposition
                ]
            if not verbs:
                return [], []
            verb = self.rng.choice(verbs)
            sense = self.pick(verb.options)
            subject = (
                self.name()
                if self.chance(0.5)
                else self.pronoun(self.rng.choice(("I", "you", "he", "she", "we", "they")))
            )
            tense = self.rng.choice(TENSES)
            en_verb = self.english_verb(verb, subject.en_agreement, tense, None)
            fr_verb = self.french_verb(sense.verb, subject, tense, None, object_before=head)
            particle = [verb.particle] if verb.particle else []
            pronoun = "that" if self.chance(0.6) else "which"
            return [pronoun] + subject.en + en_verb[1] + particle, ["que"] + subject.fr + fr_verb
        finally:
            self.depth -= 1
