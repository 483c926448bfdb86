"""Verb groups of the synthetic corpus: English verb forms and the French ones that
translate them (tenses, negation, inversion), as methods `Phrases` inherits.

They draw from `self.rng` / `self.choices` through `Phrases.pick`, `chance` and `hide`.
"""

from tf_distill.data.synthetic_morphology import IMPERFECT, conjugate, french_adjective

_AUXILIARIES = {"être": conjugate("être"), "avoir": conjugate("avoir")}


class VerbGroups:
    """English and French verb groups (a mixin of `Phrases`)."""

    def english_verb(
        self, verb, agreement, tense, negation, frequency=None, question=False, progressive=False
    ):
        """English verb group, split as `(front, rest)`: front moves before the subject.

        `verb` is a lexicon `Verb` or `"be"`. Negation is None, "not", "never" or
        "anymore" (rendered as not + a final `anymore` by the caller).
        """
        extra = [frequency] if frequency else []
        contract = negation in ("not", "anymore") and self.rng.random() < 0.3
        if verb == "be":
            if tense == "future":
                forms = ["will", "be"]
            elif tense == "past":
                forms = ["was" if agreement != "pl" else "were"]
            else:
                forms = [{"1sg": "am", "3sg": "is", "pl": "are"}[agreement]]
            aux, rest = forms[0], forms[1:]
            if negation == "never":
                return ([aux] if question else []), ([] if question else [aux]) + ["never"] + rest
            if negation is not None:
                if contract and aux != "am":
                    aux = "won't" if aux == "will" else aux + "n't"
                else:
                    rest = ["not"] + rest
            if question:
                return [aux], extra + rest
            return [], [aux] + extra + rest
        if tense == "future":
            aux, main = "will", verb.base
        elif progressive and not verb.stative and negation != "never":
            aux = {"1sg": "am", "3sg": "is", "pl": "are"}[agreement]  # present only
            main = verb.gerund
            extra = []
        elif negation in ("not", "anymore") or question:
            aux = "did" if tense == "past" else ("does" if agreement == "3sg" else "do")
            main = verb.base
        else:  # A plain statement: ate, eats; "never" takes the place of do.
            main = (
                verb.past if tense == "past" else (verb.third if agreement == "3sg" else verb.base)
            )
            adverb = ["never"] if negation == "never" else extra
            return [], adverb + [main]
        if negation == "never":
            return ([aux], ["never", main]) if question else ([], [aux, "never", main])
        rest = [main]
        if negation is not None:
            if contract and aux != "am":
                aux = "won't" if aux == "will" else aux + "n't"
            else:
                rest = ["not"] + rest
        if question:
            return [aux], extra + rest
        return [], [aux] + extra + rest

    def french_verb(
        self, verb, subject, tense, negation, frequency=None, invert=False, object_before=None
    ):
        """French verb group: `ne mange pas`, `n'a jamais mangé`, `est allée`, `mangera`.

        `verb` is a `FrenchVerb`; `subject` a `NounPhrase` (person, gender, number).
        With `invert` the subject pronoun follows the verb (`est-il`, `sera-t-elle`).
        `object_before` is a direct object placed before the verb (`la lettre qu'il a
        écrite`), which the participle of an avoir verb agrees with.
        """
        person = subject.person
        if tense == "past":
            auxiliary = _AUXILIARIES[verb.auxiliary]
            finite = auxiliary.present[person]
            participle = verb.participle
            agrees_with = subject if verb.auxiliary == "être" else object_before
            if agrees_with is not None:
                participle = french_adjective(
                    _participle_forms(participle), agrees_with.gender, agrees_with.plural
                )
            after = [participle]
        elif tense == "future":
            finite, after = verb.future(person), []
        else:
            finite, after = verb.present[person], []
        return self._negate(finite, after, subject, negation, frequency, invert)

    def french_state(self, verb_name, subject, tense, negation, frequency=None, invert=False):
        """être / avoir for states: the past is the imperfect (était), or passé composé."""
        verb = _AUXILIARIES[verb_name]
        person = subject.person
        if tense == "past" and self.hide("past_state") == "imperfect":
            return self._negate(
                IMPERFECT[verb_name][person], [], subject, negation, frequency, invert
            )
        if tense == "past":
            finite = _AUXILIARIES["avoir"].present[person]
            return self._negate(finite, [verb.participle], subject, negation, frequency, invert)
        finite = verb.future(person) if tense == "future" else verb.present[person]
        return self._negate(finite, [], subject, negation, frequency, invert)

    def _negate(self, finite, after, subject, negation, frequency, invert):
        if invert:
            pronoun = subject.fr[0]
            joint = "-t-" if finite[-1] in "ae" and pronoun in ("il", "elle", "on") else "-"
            finite = finite + joint + pronoun
        words = [finite]
        if negation is not None:
            words = ["ne", finite, {"not": "pas", "never": "jamais", "anymore": "plus"}[negation]]
        if frequency:
            words.append(frequency)
        return words + after


def _participle_forms(participle):
    # Participles agree like adjectives ending in a consonant or é: allé, allée, allés.
    plural = participle if participle.endswith("s") else participle + "s"
    return participle, participle + "e", plural, participle + "es", participle
