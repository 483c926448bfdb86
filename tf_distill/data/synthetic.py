"""A built-in English-to-French parallel corpus, generated from a small grammar.

The corpus lets the first command run offline on a fresh machine, and is hard in the ways
real translation is hard: French puts most adjectives after the noun (`une voiture
rouge`), agrees articles, adjectives and participles in gender and number (`elles sont
arrivées`), splits negation around the verb (`ne ... pas`, `n'a jamais mangé`, `pas de
pommes`), conjugates three tenses, asks questions with `est-ce que`, writes numbers as
words (`soixante et onze`), contracts and elides (`au marché`, `l'école`), and says some
things with other words (`j'ai faim`, `il fait froid`, `Tom a vingt ans`). Sentences run
from 3 to 30 English words, with relative and subordinate clauses for the long ones.

`ambiguity` makes the targets multi-modal: where English does not say which of several
valid French translations is meant (`car` -> `voiture` or `auto`, `you` -> `tu` or
`vous`, the gender of `my friend`, `because` -> `parce que` or `car`), each one is drawn
with probability `(1 - ambiguity) * [primary] + ambiguity * fixed_weight`. At 0 the
translation is a function of the source; the same seed gives the same English sentences
at every ambiguity.

Example:
>>> pairs = generate_corpus(3, seed=0)
>>> len(pairs)
3
"""

import hashlib
import random

from tf_distill.data.synthetic_clauses import TENSES, VERB_POOLS, Clauses
from tf_distill.data.synthetic_idioms import FRENCH_VERBS
from tf_distill.data.synthetic_morphology import (
    conjugate,
    english_article_fix,
    french_adjective,
    french_adjective_forms,
    french_surface,
    join_words,
)
from tf_distill.data.synthetic_phrases import split_words

MIN_WORDS = 3
MAX_WORDS = 30

_CONNECTORS = (  # English, French options, may come first, comma before
    ("because", (("parce que", 0.7), ("car", 0.3)), False, False),
    ("when", (("quand", 0.7), ("lorsque", 0.3)), True, False),
    ("if", (("si", 1.0),), True, False),
    ("while", (("pendant que", 1.0),), False, False),
    ("but", (("mais", 1.0),), False, True),
    ("and", (("et", 1.0),), False, False),
    ("so", (("donc", 0.5), ("alors", 0.5)), False, True),
)  # fmt: skip
_REPORTING = (  # English (base, third person), French options
    ("think", "thinks", (("penser", 0.6), ("croire", 0.4))),
    ("believe", "believes", (("croire", 1.0),)),
    ("say", "says", (("dire", 1.0),)),
    ("know", "knows", (("savoir", 1.0),)),
    ("hope", "hopes", (("espérer", 1.0),)),
)  # fmt: skip
# Be careful! -> Sois prudent !
_IMPERATIVE_ADJECTIVES = (
    ("careful", (("prudent", 1.0),)), ("quiet", (("calme", 0.6), ("tranquille", 0.4))),
    ("nice", (("gentil,gentille", 1.0),)), ("polite", (("poli", 1.0),)),
    ("patient", (("patient", 1.0),)), ("ready", (("prêt", 1.0),)),
    ("brave", (("courageux,courageuse,courageux,courageuses", 1.0),)),
)  # fmt: skip
_REPORTING_VERBS = {
    name: conjugate(name) for name in ("penser", "croire", "dire", "savoir", "espérer")
}


class SentenceMaker(Clauses):
    """Makes one `(english, french)` pair per call of `pair()`."""

    def pair(self):
        while True:
            self.hidden = {}
            en, fr, final = self._sentence()
            if MIN_WORDS <= len(en) - en.count(",") <= MAX_WORDS:
                en = join_words(english_article_fix(en), final)
                return en, join_words(french_surface(fr), final)

    def _sentence(self):
        r = self.rng.random()
        if r < 0.40:
            en, fr = self.clause("statement")
            return en, fr, "."
        if r < 0.52:
            en, fr = self.clause("yesno")
            return en, fr, "?"
        if r < 0.62:
            mode = self.rng.choice(("what", "whom", "who", "where", "when", "why", "howmany"))
            en, fr = self.clause(mode)
            return en, fr, "?"
        if r < 0.68:
            en, fr = self.imperative()
            return en, fr, "!" if self.chance(0.7) else "."
        if r < 0.88:
            en, fr = self.connected()
            return en, fr, "."
        en, fr = self.reported()
        return en, fr, "."

    def imperative(self):
        """`Close the door, please.` -> `Ferme la porte, s'il te plaît.`"""
        rng = self.rng
        you = self.pronoun("you")
        formal = you.pronoun == "vous"
        negation = "not" if self.chance(0.25) else None
        if self.chance(0.15):  # Be careful!
            en_word, options = rng.choice(_IMPERATIVE_ADJECTIVES)
            forms = french_adjective_forms(self.pick(options))
            fr_tail = [french_adjective(forms, you.gender, you.plural)]
            verb = FRENCH_VERBS["être"]
            en = ["be", en_word]
        else:
            verb_entry = rng.choice(VERB_POOLS["P", "any"])
            sense = self.pick(verb_entry.options)
            verb = sense.verb
            en = [verb_entry.base]
            fr_tail = []
            if verb_entry.frame in ("tr", "gv"):
                en_object, fr_tail, _ = self._object(verb_entry, sense, "statement", negation)
                en += en_object
                if verb_entry.frame == "gv":
                    recipient = self.name()
                    en += ["to"] + recipient.en
                    fr_tail += ["à"] + recipient.fr
            elif verb_entry.frame == "go" and self.chance(0.7):
                en_where, fr_tail = self.destination()
                en += en_where
        finite = verb.imperative[1 if formal else 0]
        fr = ["ne", finite, "pas"] + fr_tail if negation else [finite] + fr_tail
        if negation:
            en = (["don't"] if self.chance(0.6) else ["do", "not"]) + en
        if self.chance(0.2):
            en = en + [",", "please"]
            fr = fr + [",", "s'il", "vous" if formal else "te", "plaît"]
        return en, fr

    def connected(self):
        """Two clauses joined by because / when / if / while / but / and / so."""
        rng = self.rng
        en_word, options, may_lead, comma = rng.choice(_CONNECTORS)
        fr_words = split_words(self.pick(options))
        main_tense = rng.choice(TENSES)
        sub_tense = fr_sub_tense = None
        if en_word == "if":
            main_tense = rng.choice(("present", "future"))
            sub_tense = fr_sub_tense = "present"
        elif en_word == "when" and main_tense == "future":
            sub_tense, fr_sub_tense = "present", "future"  # quand il viendra
        elif en_word in ("when", "while"):
            sub_tense = fr_sub_tense = main_tense
        main = self.clause("statement", main_tense)
        if en_word == "if" and self.chance(0.3):
            sub = self.weather("if", "present")
        elif sub_tense is None and self.depth == 0 and self.chance(0.25):
            self.depth += 1  # a third clause: ... because Tom thinks that ...
            sub = self.reported() if self.chance(0.5) else self.connected()
            self.depth -= 1
        else:
            sub = self.clause("statement", sub_tense, fr_sub_tense)
        if may_lead and self.chance(0.4):
            return ([en_word] + sub[0] + [","] + main[0], fr_words + sub[1] + [","] + main[1])
        joint = [","] if comma else []
        return main[0] + joint + [en_word] + sub[0], main[1] + joint + fr_words + sub[1]

    def reported(self):
        """`Mary thinks that the train will be late.` -> `Marie pense que ...`"""
        rng = self.rng
        subject = self.subject(animate=False)
        base, third, options = rng.choice(_REPORTING)
        verb = _REPORTING_VERBS[self.pick(options)]
        en_verb = third if subject.en_agreement == "3sg" else base
        if self.depth == 0 and self.chance(0.3):
            self.depth += 1
            content = self.connected()
            self.depth -= 1
        else:
            content = self.clause("statement")
        en = subject.en + [en_verb] + (["that"] if self.chance(0.6) else []) + content[0]
        fr = subject.fr + [verb.present[subject.person], "que"] + content[1]
        return en, fr


def generate_corpus(num_pairs, seed=0, ambiguity=0.0):
    """Generates `num_pairs` distinct (English, French) sentence pairs, deterministically.

    Args:
        num_pairs: int, how many distinct pairs to return (more than a million exist).
        seed: int, the same seed gives the same corpus, and a longer corpus with the same
            seed starts with the shorter one.
        ambiguity: float in [0, 1]. 0: each English sentence has one translation.
            Towards 1, words English leaves open (tu / vous, voiture / auto, the gender of
            `my friend`) take their other valid translations with fixed probabilities.

    Returns:
        A list of `(source, target)` string pairs in generation order.
    """
    if isinstance(num_pairs, bool) or not isinstance(num_pairs, int) or num_pairs < 1:
        raise ValueError(
            f"`num_pairs` must be a positive integer. Received: num_pairs={num_pairs!r}"
        )
    if not 0.0 <= float(ambiguity) <= 1.0:
        raise ValueError(f"`ambiguity` must be between 0 and 1. Received: ambiguity={ambiguity!r}")
    return list(iter_corpus(num_pairs, seed, ambiguity))


def iter_corpus(num_pairs, seed=0, ambiguity=0.0):
    """`generate_corpus` as a stream: yields the same pairs one by one. Memory grows only
    by a set of 8-byte hashes of the pairs made so far (to keep them distinct)."""
    maker = SentenceMaker(random.Random(seed), random.Random(f"choices-{seed}"), float(ambiguity))
    seen = set()
    made = attempts = 0
    max_attempts = 10 * num_pairs + 1000
    while made < num_pairs:
        attempts += 1
        if attempts > max_attempts:
            raise ValueError(
                f"Could only generate {made} distinct pairs in {max_attempts} attempts; "
                f"ask for fewer. Received: num_pairs={num_pairs}"
            )
        pair = maker.pair()
        key = hashlib.blake2b("\t".join(pair).encode(), digest_size=8).digest()
        if key not in seen:
            seen.add(key)
            made += 1
            yield pair
