"""Word tables of the synthetic corpus's phrases: adverbials, possessives, colours; each
English word with its French options (and their weights: the first is the one used at
ambiguity=0)."""

VERY = ("very", (("très", 1.0),))
COLORS = {"red", "blue", "green", "yellow", "black", "white", "gray", "brown", "orange", "pink"}
# English possessive determiner and French (masculine, feminine, plural) per possessor.
POSSESSIVE = {
    "I": ("my", ("mon", "ma", "mes")),
    "tu": ("your", ("ton", "ta", "tes")),
    "vous": ("your", ("votre", "votre", "vos")),
    "he": ("his", ("son", "sa", "ses")),
    "she": ("her", ("son", "sa", "ses")),
    "we": ("our", ("notre", "notre", "nos")),
    "they": ("their", ("leur", "leur", "leurs")),
}
LOCATIONS = (
    ("in", ("dans",)), ("at", ("à",)), ("near", ("près", "de")), ("behind", ("derrière",)),
    ("in front of", ("devant",)), ("next to", ("à", "côté", "de")), ("far from", ("loin", "de")),
)  # fmt: skip
SURFACE_PREPOSITIONS = (("on", ("sur",)), ("under", ("sous",)), ("next to", ("à", "côté", "de")))
FREQUENCY = (
    ("often", (("souvent", 1.0),)),
    ("always", (("toujours", 1.0),)),
    ("sometimes", (("parfois", 0.6), ("quelquefois", 0.4))),
    ("rarely", (("rarement", 1.0),)),
)
MANNER = (
    ("quickly", (("vite", 0.6), ("rapidement", 0.4))),
    ("slowly", (("lentement", 1.0),)),
    ("well", (("bien", 1.0),)),
    ("badly", (("mal", 1.0),)),
    ("quietly", (("doucement", 0.6), ("calmement", 0.4))),
)
# Time adverbials by tense: English words, French options.
TIMES = {
    "present": (
        ("today", (("aujourd'hui", 1.0),)),
        ("now", (("maintenant", 0.7), ("à présent", 0.3))),
        ("every day", (("tous les jours", 0.7), ("chaque jour", 0.3))),
        ("every morning", (("tous les matins", 0.7), ("chaque matin", 0.3))),
        ("in the evening", (("le soir", 1.0),)),
    ),
    "past": (
        ("yesterday", (("hier", 1.0),)),
        ("last week", (("la semaine dernière", 1.0),)),
        ("last year", (("l'année dernière", 1.0),)),
        ("this morning", (("ce matin", 1.0),)),
        ("last night", (("hier soir", 1.0),)),
    ),
    "future": (
        ("tomorrow", (("demain", 1.0),)),
        ("next week", (("la semaine prochaine", 1.0),)),
        ("next year", (("l'année prochaine", 1.0),)),
        ("tonight", (("ce soir", 1.0),)),
        ("soon", (("bientôt", 1.0),)),
    ),
}
ELIDED_PREFIX = ("l'", "d'", "qu'")
