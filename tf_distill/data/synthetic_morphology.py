"""Inflection for the synthetic corpus: English and French verbs, plurals, numbers, elision.

Only what the grammar in `synthetic.py` uses, written out as rules plus small tables of
exceptions; `synthetic_lexicon.py` keeps its word lists free of inflected forms.
"""

# French persons are indexed 0..5: je, tu, il/elle/on, nous, vous, ils/elles.
THIRD_SINGULAR = 2
THIRD_PLURAL = 5

# ---------------------------------------------------------------------------------------
# English.

_EN_PAST = {
    "be": "was", "begin": "began", "break": "broke", "bring": "brought", "build": "built",
    "buy": "bought", "catch": "caught", "come": "came", "do": "did", "drink": "drank",
    "draw": "drew", "drive": "drove", "eat": "ate", "fall": "fell", "feed": "fed", "find": "found",
    "fly": "flew", "forget": "forgot", "get": "got", "give": "gave", "go": "went",
    "have": "had", "hear": "heard", "know": "knew", "leave": "left", "lend": "lent",
    "lose": "lost", "make": "made", "meet": "met", "pay": "paid", "ride": "rode",
    "run": "ran", "say": "said", "see": "saw", "sell": "sold", "send": "sent",
    "sing": "sang", "sleep": "slept", "speak": "spoke", "swim": "swam", "take": "took",
    "teach": "taught", "think": "thought", "understand": "understood", "win": "won",
    "write": "wrote", "stop": "stopped", "plan": "planned", "shop": "shopped",
}  # fmt: skip
_EN_PLURAL = {
    "man": "men", "woman": "women", "child": "children", "mouse": "mice", "wolf": "wolves",
    "knife": "knives", "potato": "potatoes", "tomato": "tomatoes", "person": "people",
    "policeman": "policemen", "grandchild": "grandchildren", "leaf": "leaves",
}  # fmt: skip
_EN_AN_EXCEPTIONS = ("uni", "use", "usu", "eu", "one")


def english_plural(noun):
    if noun in _EN_PLURAL:
        return _EN_PLURAL[noun]
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def english_third_singular(verb):
    if verb == "have":
        return "has"
    if verb.endswith("o"):
        return verb + "es"
    return english_plural(verb)


def english_past(verb):
    if verb in _EN_PAST:
        return _EN_PAST[verb]
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ied"
    return verb + "ed"


def english_gerund(verb):
    if verb in ("stop", "plan", "shop", "run", "swim", "win", "begin", "sit"):
        return verb + verb[-1] + "ing"
    if verb.endswith("ie"):
        return verb[:-2] + "ying"
    if verb.endswith("e") and verb not in ("see", "be"):
        return verb[:-1] + "ing"
    return verb + "ing"


def english_article_fix(words):
    """Turns `a` into `an` before a vowel sound, in place."""
    for i in range(len(words) - 1):
        if words[i] in ("a", "A"):
            nxt = words[i + 1].lower()
            if nxt.startswith(("hour", "honest")) or (
                nxt[:1] in ("a", "e", "i", "o", "u") and not nxt.startswith(_EN_AN_EXCEPTIONS)
            ):
                words[i] += "n"
    return words


_EN_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_EN_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def english_number(n):
    """1..100 as English words: `twenty-one`, `one hundred`."""
    if n == 100:
        return "one hundred"
    if n < 20:
        return _EN_UNITS[n]
    tens, unit = divmod(n, 10)
    return _EN_TENS[tens] + ("-" + _EN_UNITS[unit] if unit else "")


# ---------------------------------------------------------------------------------------
# French.

_FR_UNITS = (
    "zéro un deux trois quatre cinq six sept huit neuf dix onze douze treize quatorze "
    "quinze seize dix-sept dix-huit dix-neuf"
).split()
_FR_TENS = "_ _ vingt trente quarante cinquante soixante".split()


def french_number(n, gender="m"):
    """1..100 as French words, with `un`/`une` agreeing: `vingt et une`, `quatre-vingts`."""
    word = _french_number(n)
    if gender == "f" and (word == "un" or word.endswith(("-un", " un"))):
        word += "e"
    return word


def _french_number(n):
    if n == 100:
        return "cent"
    if n < 20:
        return _FR_UNITS[n]
    if n < 70:
        tens, unit = divmod(n, 10)
        if unit == 0:
            return _FR_TENS[tens]
        if unit == 1:
            return _FR_TENS[tens] + " et un"
        return _FR_TENS[tens] + "-" + _FR_UNITS[unit]
    if n < 80:  # 70..79 count on from sixty: soixante-dix, soixante et onze
        return "soixante" + (" et " if n == 71 else "-") + _FR_UNITS[n - 60]
    if n == 80:
        return "quatre-vingts"
    return "quatre-vingt-" + _FR_UNITS[n - 80]  # 81..99: no "et", no plural s


def french_plural(noun):
    if noun.endswith(("s", "x", "z")):
        return noun
    if noun.endswith(("eau", "eu")):
        return noun + "x"
    if noun.endswith("al") and noun not in ("festival", "carnaval", "bal"):
        return noun[:-2] + "aux"
    return noun + "s"


def french_adjective_forms(spec):
    """`"vert"` -> (ms, fs, mp, fp, ms before a vowel); explicit forms as `a,b,c,d[,e]`."""
    forms = spec.split(",")
    ms = forms[0]
    fs = forms[1] if len(forms) > 1 else (ms if ms.endswith("e") else ms + "e")
    mp = forms[2] if len(forms) > 2 else (ms if ms.endswith(("s", "x")) else ms + "s")
    fp = forms[3] if len(forms) > 3 else (fs if fs.endswith("s") else fs + "s")
    ms_vowel = forms[4] if len(forms) > 4 else ms
    return ms, fs, mp, fp, ms_vowel


def french_adjective(forms, gender, plural, before_vowel=False):
    if plural:
        return forms[3] if gender == "f" else forms[2]
    if gender == "f":
        return forms[1]
    return forms[4] if before_vowel else forms[0]


class FrenchVerb:
    """The forms of one French verb the grammar needs."""

    __slots__ = ("infinitive", "present", "participle", "future_stem", "imperative", "auxiliary")

    def __init__(self, infinitive, present, participle, future_stem, auxiliary="avoir"):
        self.infinitive = infinitive
        self.present = present
        self.participle = participle
        self.future_stem = future_stem
        self.auxiliary = auxiliary
        # Imperative (tu, vous): -er verbs drop the s of the tu form (mange!, va!).
        tu = present[1]
        if tu.endswith("es") or tu == "vas":
            tu = tu[:-1]
        self.imperative = _IMPERATIVE.get(infinitive) or (tu, present[4])

    def future(self, person):
        return self.future_stem + _FUTURE_ENDINGS[person]


_FUTURE_ENDINGS = ("ai", "as", "a", "ons", "ez", "ont")
_IMPERATIVE = {"être": ("sois", "soyez"), "avoir": ("aie", "ayez"), "savoir": ("sache", "sachez")}

# Present (6 forms), past participle, future stem.
_IRREGULAR = {
    "être": ("suis es est sommes êtes sont", "été", "ser"),
    "avoir": ("ai as a avons avez ont", "eu", "aur"),
    "aller": ("vais vas va allons allez vont", "allé", "ir"),
    "faire": ("fais fais fait faisons faites font", "fait", "fer"),
    "prendre": ("prends prends prend prenons prenez prennent", "pris", "prendr"),
    "venir": ("viens viens vient venons venez viennent", "venu", "viendr"),
    "voir": ("vois vois voit voyons voyez voient", "vu", "verr"),
    "vouloir": ("veux veux veut voulons voulez veulent", "voulu", "voudr"),
    "boire": ("bois bois boit buvons buvez boivent", "bu", "boir"),
    "dormir": ("dors dors dort dormons dormez dorment", "dormi", "dormir"),
    "partir": ("pars pars part partons partez partent", "parti", "partir"),
    "sortir": ("sors sors sort sortons sortez sortent", "sorti", "sortir"),
    "courir": ("cours cours court courons courez courent", "couru", "courr"),
    "écrire": ("écris écris écrit écrivons écrivez écrivent", "écrit", "écrir"),
    "dire": ("dis dis dit disons dites disent", "dit", "dir"),
    "lire": ("lis lis lit lisons lisez lisent", "lu", "lir"),
    "connaître": ("connais connais connaît connaissons connaissez connaissent", "connu",
                  "connaîtr"),
    "savoir": ("sais sais sait savons savez savent", "su", "saur"),
    "croire": ("crois crois croit croyons croyez croient", "cru", "croir"),
    "ouvrir": ("ouvre ouvres ouvre ouvrons ouvrez ouvrent", "ouvert", "ouvrir"),
    "offrir": ("offre offres offre offrons offrez offrent", "offert", "offrir"),
    "construire": ("construis construis construit construisons construisez construisent",
                   "construit", "construir"),
    "conduire": ("conduis conduis conduit conduisons conduisez conduisent", "conduit",
                 "conduir"),
    "rire": ("ris ris rit rions riez rient", "ri", "rir"),
    "vivre": ("vis vis vit vivons vivez vivent", "vécu", "vivr"),
    "envoyer": ("envoie envoies envoie envoyons envoyez envoient", "envoyé", "enverr"),
    "pleuvoir": ("pleus pleus pleut pleuvons pleuvez pleuvent", "plu", "pleuvr"),
    "mettre": ("mets mets met mettons mettez mettent", "mis", "mettr"),
    "peindre": ("peins peins peint peignons peignez peignent", "peint", "peindr"),
    "appeler": ("appelle appelles appelle appelons appelez appellent", "appelé", "appeller"),
}  # fmt: skip
# Verbs conjugated like another one with a prefix: apprendre like prendre.
_PREFIXED = {
    "apprendre": "prendre", "comprendre": "prendre", "revenir": "venir",
    "devenir": "venir", "sourire": "rire", "découvrir": "ouvrir",
}  # fmt: skip
_CONSONANTS = set("bcdfghjklmnpqrstvwxz")


def conjugate(infinitive, auxiliary="avoir"):
    """A `FrenchVerb` for a regular -er, -ir or -re verb or one of the irregular ones."""
    base = _PREFIXED.get(infinitive)
    if base is not None:
        prefix = infinitive[: len(infinitive) - len(base)]
        present, participle, future = _IRREGULAR[base]
        return FrenchVerb(
            infinitive,
            tuple(prefix + form for form in present.split()),
            prefix + participle,
            prefix + future,
            auxiliary,
        )
    if infinitive in _IRREGULAR:
        present, participle, future = _IRREGULAR[infinitive]
        return FrenchVerb(infinitive, tuple(present.split()), participle, future, auxiliary)
    stem, ending = infinitive[:-2], infinitive[-2:]
    if ending == "er":
        return _conjugate_er(infinitive, stem, auxiliary)
    if ending == "ir":
        present = (
            stem + "is",
            stem + "is",
            stem + "it",
            stem + "issons",
            stem + "issez",
            stem + "issent",
        )
        return FrenchVerb(infinitive, present, stem + "i", infinitive, auxiliary)
    if ending == "re":
        present = (stem + "s", stem + "s", stem, stem + "ons", stem + "ez", stem + "ent")
        return FrenchVerb(infinitive, present, stem + "u", infinitive[:-1], auxiliary)
    raise ValueError(f"Cannot conjugate {infinitive!r}.")


def _conjugate_er(infinitive, stem, auxiliary):
    # The stem the singular and the third plural use (the "boot" forms).
    strong = stem
    future = infinitive
    if stem.endswith("y"):  # nettoyer: nettoie, nettoyons; future nettoiera
        strong = stem[:-1] + "i"
        future = strong + "er"
    elif stem[-2] == "e" and stem[-1] in _CONSONANTS:  # acheter: achète, achèterai
        strong = stem[:-2] + "è" + stem[-1]
        future = strong + "er"
    elif stem[-2] == "é" and stem[-1] in _CONSONANTS:  # préférer: préfère, préférerai
        strong = stem[:-2] + "è" + stem[-1]
    nous = stem + "ons"
    if stem.endswith("g"):  # mangeons
        nous = stem + "eons"
    elif stem.endswith("c"):  # commençons
        nous = stem[:-1] + "çons"
    present = (strong + "e", strong + "es", strong + "e", nous, stem + "ez", strong + "ent")
    return FrenchVerb(infinitive, present, stem + "é", future, auxiliary)


# Imperfect of the two auxiliaries, used for states in the past (il était, il avait).
IMPERFECT = {
    "être": ("étais", "étais", "était", "étions", "étiez", "étaient"),
    "avoir": ("avais", "avais", "avait", "avions", "aviez", "avaient"),
}

_VOWELS = set("aeiouyâàäéèêëîïôöûùüœæh")
_VOWELS |= {c.upper() for c in _VOWELS}
_H_ASPIRE_OR_NUMBER = ("haut", "hibou", "héros", "huit", "onze", "honte", "hache")
_ELIDED = {
    "le": "l'",
    "la": "l'",
    "je": "j'",
    "ne": "n'",
    "de": "d'",
    "que": "qu'",
    "me": "m'",
    "te": "t'",
    "lorsque": "lorsqu'",
    "puisque": "puisqu'",
}
_BEFORE_VOWEL = {"ma": "mon", "ta": "ton", "sa": "son", "ce": "cet"}
_CONTRACTED = {("à", "le"): "au", ("à", "les"): "aux", ("de", "le"): "du", ("de", "les"): "des"}
_CHANGING = set(_ELIDED) | set(_BEFORE_VOWEL) | {"à", "si"}


def starts_with_vowel_sound(word):
    if word[:1] not in _VOWELS:
        return False
    return word[0] not in "hHoO" or not word.lower().startswith(_H_ASPIRE_OR_NUMBER)


def french_surface(words):
    """Applies elision and contraction: `de le` -> `du`, `le homme` -> `l'homme`.

    Works right to left so each word sees its right neighbour in final form
    (`à la école` -> `à l'école`, not `au`). Elided words end with an apostrophe and
    `join_words` attaches them to the next word.
    """
    out = [words[-1]]
    for i in range(len(words) - 2, -1, -1):
        word = words[i]
        if word in _CHANGING:
            nxt = out[-1]
            contracted = _CONTRACTED.get((word, nxt))
            if contracted is not None:
                out[-1] = contracted
                continue
            if starts_with_vowel_sound(nxt):
                if word in _ELIDED:
                    word = _ELIDED[word]
                elif word in _BEFORE_VOWEL:
                    word = _BEFORE_VOWEL[word]
                elif word == "si" and nxt in ("il", "ils"):
                    word = "s'"
        out.append(word)
    out.reverse()
    return out


def join_words(words, final):
    """Joins words into a sentence: capital first letter, no space after `'` or before `,`."""
    text = " ".join(words).replace("' ", "'").replace(" ,", ",") + final
    return text[0].upper() + text[1:]
