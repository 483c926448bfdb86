"""A built-in, offline text classification corpus: short reviews labelled negative, mixed
or positive.

A review is one to three clauses such as `the soup was not very good`, joined by `and`,
`but` or `although`, sometimes after an opener (`honestly ,`). Its label follows a fixed
rule a model has to learn from examples, which needs word order and scope, not just a bag
of words:

- each adjective has a strength (`awful` -2, `bad` -1, `decent` +1, `superb` +2);
- an intensifier scales it (`very`, `really` x1.5; `a bit`, `slightly` x0.5);
- `not` flips the sign and halves it (`not bad` is mildly positive, +0.5);
- after `but` a clause counts double, the clause before it once; after `although X ,`
  the main clause counts double;
- the weighted sum above +0.75 is positive, below -0.75 negative, otherwise mixed.

With `noise` > 0 that share of labels is redrawn at random, as in real annotations.
A model that ignores negation or the `but` rule tops out well below one that learns them,
so a small student trained alone sits clearly below a larger teacher.
"""

import random

LABEL_NAMES = ["negative", "mixed", "positive"]

_ASPECTS = (
    "food soup pasta pizza dessert coffee wine bread menu service waiter staff manager room "
    "bed bathroom view pool breakfast price bill music location parking wifi checkin table "
    "terrace lobby shower garden"
).split()
_ADJECTIVES = {
    "superb": 2, "excellent": 2, "wonderful": 2, "amazing": 2, "perfect": 2,
    "good": 1, "nice": 1, "decent": 1, "pleasant": 1, "friendly": 1, "clean": 1,
    "bad": -1, "poor": -1, "slow": -1, "noisy": -1, "dirty": -1, "rude": -1,
    "awful": -2, "terrible": -2, "horrible": -2, "dreadful": -2, "disgusting": -2,
}  # fmt: skip
_INTENSIFIERS = {"": 1.0, "very": 1.5, "really": 1.5, "a bit": 0.5, "slightly": 0.5}
_VERBS = ("was", "is", "seemed", "felt")
_OPENERS = ("", "", "", "honestly ,", "overall", "to be fair", "i think", "we found that")
_THRESHOLD = 0.75


def _clause(rng):
    """One clause and its signed score."""
    aspect = rng.choice(_ASPECTS)
    adjective = rng.choice(list(_ADJECTIVES))
    intensifier = rng.choice(list(_INTENSIFIERS))
    negated = rng.random() < 0.3
    score = _ADJECTIVES[adjective] * _INTENSIFIERS[intensifier]
    if negated:
        score = -0.5 * score
    words = ["the", aspect, rng.choice(_VERBS)]
    words += ["not"] if negated else []
    words += [intensifier] if intensifier else []
    words.append(adjective)
    return " ".join(words), score


def review(rng):
    """`(text, label_id)` of one random review (see the module docstring for the rule)."""
    count = rng.choice((1, 2, 2, 3))
    clauses = [_clause(rng) for _ in range(count)]
    subordinate = None
    if count >= 2 and rng.random() < 0.3:  # `although <first clause> , <the rest>`
        subordinate, clauses = clauses[0], clauses[1:]
    parts, total = [], 0.0
    for i, (text, score) in enumerate(clauses):
        joiner = "" if i == 0 else rng.choice(("and", "but", "but"))
        parts.append(f"{joiner} {text}".strip())
        total += (2 if joiner == "but" else 1) * score  # after `but` a clause counts double
    if subordinate is not None:  # the main part counts double against the concession
        parts.insert(0, f"although {subordinate[0]} ,")
        total = 2 * total + subordinate[1]
    opener = rng.choice(_OPENERS)
    text = " ".join(([opener] if opener else []) + parts)
    label = 2 if total > _THRESHOLD else 0 if total < -_THRESHOLD else 1
    return text, label


def generate_reviews(num_examples, seed=0, noise=0.0):
    """`num_examples` distinct labelled reviews, deterministically for a seed.

    Returns:
        `(texts, labels)`: lists of strings and of ids into `LABEL_NAMES`.
    """
    if isinstance(num_examples, bool) or not isinstance(num_examples, int) or num_examples < 1:
        raise ValueError(f"`num_examples` must be a positive integer. Received: {num_examples!r}")
    if not 0.0 <= float(noise) <= 1.0:
        raise ValueError(f"`noise` must be between 0 and 1. Received: noise={noise!r}")
    rng = random.Random(f"reviews-{seed}")
    noise_rng = random.Random(f"review-noise-{seed}")
    seen, texts, labels = set(), [], []
    attempts = 0
    while len(texts) < num_examples:
        attempts += 1
        if attempts > 20 * num_examples + 1000:
            raise ValueError(f"Could only generate {len(texts)} distinct reviews; ask for fewer.")
        text, label = review(rng)
        if text in seen:
            continue
        seen.add(text)
        if noise and noise_rng.random() < noise:
            label = noise_rng.randrange(len(LABEL_NAMES))
        texts.append(text)
        labels.append(label)
    return texts, labels
