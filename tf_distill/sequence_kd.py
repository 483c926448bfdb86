"""Sequence-level knowledge distillation (Kim & Rush, 2016): the student learns from the
teacher's own translations of the training sources instead of the references.

Token-level KD matches the teacher's distribution one position at a time along the
*reference* prefix; sequence-level KD trains on the sequences the teacher actually
produces. Where a source has several valid translations (Tatoeba, the built-in corpus with
`ambiguity` > 0) the references are multi-modal and a small student spends capacity on
every mode; the teacher's outputs pick one mode per source, which a small student learns
faster. Both combine: the pipeline's student is trained with the usual CE + T^2 KL loss on
the teacher's translations.
"""

import logging
import time
from pathlib import Path

import numpy as np

from tf_distill import decoding

_LOG = logging.getLogger(__name__)


def teacher_translations(
    teacher,
    sources,
    source_tokenizer,
    target_tokenizer,
    max_sequence_length,
    max_length,
    batch_size=256,
    beam_size=1,
    length_penalty=0.6,
    progress_path=None,
):
    """The teacher's translations of `sources` (greedy, or beam search), detokenized, in order.

    Sources are decoded in batches of similar length (sorted by token count), so that a
    batch's rows finish together and no batch carries long padding; the results are put
    back in the input order.

    Args:
        teacher: a trained `build_transformer` model, or a list of them (an ensemble: every
            step decodes with the mean of their probabilities).
        sources: source sentences (strings).
        source_tokenizer, target_tokenizer: the run's tokenizers.
        max_sequence_length: longest source, in tokens (longer ones are cut).
        max_length: most target tokens to generate.
        batch_size: sources decoded per call (each carries `beam_size` hypotheses).
        beam_size: 1 for greedy decoding, more for beam search (Kim & Rush, 2016, take the
            teacher's beam output as the student's target).
        length_penalty: the GNMT exponent of the beam search.
        progress_path: optional file where each finished batch is appended (`row<TAB>text`
            lines); the rows it already holds are not decoded again, so a killed call
            continues where it stopped. Delete it to start over.

    Returns:
        A list of `len(sources)` strings.
    """
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be positive. Received: batch_size={batch_size}.")
    if beam_size < 1:
        raise ValueError(f"`beam_size` must be positive. Received: beam_size={beam_size}.")
    rows = [list(r)[:max_sequence_length] for r in source_tokenizer.tokenize(list(sources))]
    outputs = [None] * len(rows)
    if progress_path is not None:
        for row, text in _read_progress(progress_path, len(rows)):
            outputs[row] = text
    todo = [i for i in np.argsort([len(r) for r in rows], kind="stable") if outputs[i] is None]
    special = {
        "start_id": target_tokenizer.start_id,
        "end_id": target_tokenizer.end_id,
        "pad_id": target_tokenizer.pad_id,
    }
    done = len(rows) - len(todo)
    if done:
        _LOG.info(f"teacher translations: {done}/{len(rows)} kept from {progress_path}")
    start_time = last_log = time.perf_counter()
    progress = None if progress_path is None else open(progress_path, "a", encoding="utf-8")
    try:
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            width = max(1, max(len(rows[i]) for i in chunk))
            ids = np.zeros((len(chunk), width), np.int32)
            for j, i in enumerate(chunk):
                ids[j, : len(rows[i])] = rows[i]
            if beam_size > 1:
                decoded = decoding.beam_search(
                    teacher, ids, max_length, beam_size, length_penalty, **special
                )
            else:
                decoded = decoding.greedy_decode(teacher, ids, max_length, **special)
            texts = target_tokenizer.detokenize(np.asarray(decoded))
            for j, text in enumerate(texts):
                outputs[chunk[j]] = text
            if progress is not None:
                # Newlines and tabs would break the line format; such outputs are re-made.
                progress.write(
                    "".join(
                        f"{chunk[j]}\t{text}\n"
                        for j, text in enumerate(texts)
                        if "\n" not in text and "\t" not in text
                    )
                )
                progress.flush()
            done += len(chunk)
            now = time.perf_counter()
            if now - last_log > 30 or done == len(rows):
                last_log = now
                rate = (start + len(chunk)) / max(now - start_time, 1e-9)
                left = (len(rows) - done) / max(rate, 1e-9)
                _LOG.info(
                    f"teacher translations: {done}/{len(rows)}, {now - start_time:.0f} s, "
                    f"about {left:.0f} s left"
                )
    finally:
        if progress is not None:
            progress.close()
    return outputs


def _read_progress(path, count):
    """`(row, text)` pairs of a progress file; rows out of range are skipped, and a torn last
    line (a kill mid-write) is cut off the file so that appending starts on a new line."""
    path = Path(path)
    if not path.exists():
        return []
    raw = path.read_bytes()
    if raw and not raw.endswith(b"\n"):
        raw = raw[: raw.rfind(b"\n") + 1]
        with open(path, "r+b") as handle:
            handle.truncate(len(raw))
    found = []
    for line in raw.decode("utf-8", errors="replace").split("\n")[:-1]:
        row, tab, text = line.partition("\t")
        if tab and row.isdigit() and int(row) < count:
            found.append((int(row), text))
    return found
