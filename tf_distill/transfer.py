"""A transfer set: source sentences without references, translated by the teacher for the
student (Hinton et al., 2015, train the student on a "transfer set" labelled by the teacher).

This is what a teacher buys that no amount of tuning buys the baseline: text in the source
language is usually far easier to come by than translations of it, and a trained teacher
turns it into training pairs. The distilled student trains on the labelled pairs plus the
teacher's translations of these sentences (with the usual CE + T^2 KL loss: on the
transfer rows the CE target is the teacher's own output, as in sequence-level KD); the
no-teacher baseline can only use the labelled pairs.

Sentences that are also a source of the training, validation or test split are left out,
so that no test source reaches the student through the transfer set.
"""

from pathlib import Path

from tf_distill.data import DataError, generate_corpus

# The built-in corpus' transfer sentences are drawn from a generator seeded apart from the
# corpus itself (data.seed + this); their French side is discarded.
SYNTHETIC_SEED_OFFSET = 104_729


def read_sources(path, column=None):
    """Source sentences from a UTF-8 text file, one per line (blank lines skipped); with
    `column`, each line is tab-separated and the sentence is that (0-based) column, so the
    source side of a Tatoeba file can serve as the transfer set."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(
            f"distillation.transfer_path {str(path)!r} does not exist. Point it at a text "
            "file with one source sentence per line."
        ) from None
    except UnicodeDecodeError as error:
        raise DataError(
            f"distillation.transfer_path {str(path)!r} is not UTF-8 text (byte "
            f"{error.start}). Re-save it as UTF-8."
        ) from None
    lines = text.splitlines()
    if column is not None:
        for number, line in enumerate(lines, 1):
            if line.strip() and len(line.split("\t")) <= column:
                raise DataError(
                    f"distillation.transfer_path {str(path)!r} line {number} has no column "
                    f"{column} (distillation.transfer_column; columns are tab-separated and "
                    "counted from 0). Fix the line or the key."
                )
        lines = [line.split("\t")[column] if line.strip() else "" for line in lines]
    sentences = [line.strip() for line in lines if line.strip()]
    if not sentences:
        raise DataError(
            f"distillation.transfer_path {str(path)!r} holds no sentences. Give one source "
            "sentence per line."
        )
    return sentences


def select_sources(candidates, exclude, limit=None):
    """The first `limit` distinct candidates (all if None) that are not in `exclude` and
    hold no tab (they are stored as TSV lines), in order."""
    chosen, seen = [], set(exclude)
    for sentence in candidates:
        sentence = sentence.strip()
        if not sentence or "\t" in sentence or sentence in seen:
            continue
        seen.add(sentence)
        chosen.append(sentence)
        if limit is not None and len(chosen) == limit:
            break
    return chosen


def synthetic_sources(count, exclude, seed=0, ambiguity=0.0):
    """`count` distinct English sentences of the built-in corpus' grammar, none of them in
    `exclude`, drawn with a generator seeded `seed + SYNTHETIC_SEED_OFFSET`."""
    if count < 1:
        raise ValueError(f"`count` must be positive. Received: count={count}")
    exclude = set(exclude)
    requested = count + count // 4 + 100
    while True:
        # A longer corpus with the same seed starts with the shorter one: each retry only
        # extends the list, and the result does not depend on how many retries it took.
        pairs = generate_corpus(requested, seed=seed + SYNTHETIC_SEED_OFFSET, ambiguity=ambiguity)
        chosen = select_sources((s for s, _ in pairs), exclude, count)
        if len(chosen) == count:
            return chosen
        if requested >= 8 * count + 1000:
            raise DataError(
                f"The built-in corpus gave only {len(chosen)} new source sentences; ask for "
                f"fewer with distillation.transfer_size (received {count})."
            )
        requested *= 2


def transfer_sources(config, splits):
    """The run's transfer sentences (`distillation.transfer_size` / `transfer_path`), with
    every source of `splits` left out; [] when the config asks for none. Raises DataError
    when a file leaves no sentence."""
    d, data = config.distillation, config.data
    exclude = {s for part in (splits.train, splits.valid, splits.test) for s, _ in part}
    if d.transfer_path is not None:
        candidates = read_sources(d.transfer_path, d.transfer_column)
        sources = select_sources(candidates, exclude, d.transfer_size)
        if not sources:
            raise DataError(
                f"distillation.transfer_path {d.transfer_path!r}: every sentence is also a "
                "source of the corpus, so the transfer set is empty. Give other sentences, or "
                "remove the key."
            )
        return sources
    if d.transfer_size is None:
        return []
    return synthetic_sources(d.transfer_size, exclude, seed=data.seed, ambiguity=data.ambiguity)
