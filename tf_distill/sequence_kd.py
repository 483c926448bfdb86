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

import numpy as np

from tf_distill import decoding


def teacher_translations(
    teacher,
    sources,
    source_tokenizer,
    target_tokenizer,
    max_sequence_length,
    max_length,
    batch_size=256,
    log=None,
):
    """Greedy translations of `sources` by `teacher`, as detokenized strings, in order.

    Sources are decoded in batches of similar length (sorted by token count), so that a
    batch's rows finish together and no batch carries long padding; the results are put
    back in the input order.

    Args:
        teacher: a trained `build_transformer` model.
        sources: source sentences (strings).
        source_tokenizer, target_tokenizer: the run's tokenizers.
        max_sequence_length: longest source, in tokens (longer ones are cut).
        max_length: most target tokens to generate.
        batch_size: rows decoded per call.
        log: optional callable for progress lines.

    Returns:
        A list of `len(sources)` strings.
    """
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be positive. Received: batch_size={batch_size}.")
    rows = [list(r)[:max_sequence_length] for r in source_tokenizer.tokenize(list(sources))]
    order = np.argsort([len(r) for r in rows], kind="stable")
    special = {
        "start_id": target_tokenizer.start_id,
        "end_id": target_tokenizer.end_id,
        "pad_id": target_tokenizer.pad_id,
    }
    outputs = [None] * len(rows)
    batches = range(0, len(rows), batch_size)
    for number, start in enumerate(batches, 1):
        chunk = order[start : start + batch_size]
        width = max(1, max(len(rows[i]) for i in chunk))
        ids = np.zeros((len(chunk), width), np.int32)
        for j, i in enumerate(chunk):
            ids[j, : len(rows[i])] = rows[i]
        decoded = np.asarray(decoding.greedy_decode(teacher, ids, max_length, **special))
        for j, text in enumerate(target_tokenizer.detokenize(decoded)):
            outputs[chunk[j]] = text
        if log is not None and (number % max(1, len(batches) // 5) == 0 or number == len(batches)):
            log(f"teacher translations: {min(start + batch_size, len(rows))}/{len(rows)}")
    return outputs
