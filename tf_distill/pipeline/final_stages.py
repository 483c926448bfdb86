"""The pipeline's last stages: rounding the student to the int8 grid, evaluating every
model on the test set, exporting the student."""

import dataclasses
import json
import logging

from tf_distill import evaluation
from tf_distill import run_dir as run_dir_lib
from tf_distill.distiller import Distiller
from tf_distill.pipeline.data_stages import decode_length

_LOG = logging.getLogger(__name__)

# The models compared with the student by paired bootstrap.
COMPARED = ("baseline", "teacher", "student_ce")


@dataclasses.dataclass
class Evaluation:
    """Per-role test results (the report's table), the bootstrap comparisons, and the
    sample sentences the report shows."""

    results: dict  # role -> metrics; "significance" and "evaluation" entries
    sample_sources: list
    sample_references: list  # each a " | "-joined list of the source's references


def round_student(config, student, test_set, tokenizers, run_dir, resume=False):
    """Rounds the student's weights to the int8 grid (see `export.round_to_int8_grid`),
    saves it, and returns how many test sentences the rounding changed. A resumed run
    whose student was rounded already gives back what was measured then (rounding again
    changes nothing, so measuring again would say 100%)."""
    from tf_distill.tflite import round_to_int8_grid

    record = run_dir.record_file("int8_rounding")
    if resume and record.exists():
        # Rounding is idempotent: a student saved rounded stays as it is, one the kill
        # caught before its save is rounded now, exactly as it was then.
        round_to_int8_grid(student)
        run_dir_lib.save_model(student, run_dir.model_file("student"), note=tokenizers.note)
        return json.loads(record.read_text())

    source_ids = test_set.source_ids[: config.export.parity_sentences]
    length = decode_length(config)
    before = evaluation.translate_ids(student, source_ids, length, **tokenizers.special)
    tensors = round_to_int8_grid(student)
    after = evaluation.translate_ids(student, source_ids, length, **tokenizers.special)
    same = round(evaluation.sequence_agreement(before, after), 4)
    _LOG.info(
        f"student: {tensors} weight tensors rounded to the int8 grid; greedy output "
        f"unchanged on {same:.1%} of {len(source_ids)} test sentences"
    )
    summary = {"tensors": tensors, "same_greedy_output": same}
    run_dir_lib.write_json(record, summary)  # first: see the resumed case above
    run_dir_lib.save_model(student, run_dir.model_file("student"), note=tokenizers.note)
    return summary


def evaluate(config, models, files, training, test_set, test_ds, tokenizers):
    """Scores every model on the test sentences.

    Args:
        models: role -> model, or a list of models for a teacher ensemble.
        files: role -> the `.keras` files that make it up (for its size on disk).
        training: role -> the training record (pairs, epochs, steps) shown beside it.
    """
    e = config.evaluation
    special = tokenizers.special
    length = decode_length(config)
    sentences = test_set.head(min(e.max_sentences, len(test_set.sources)))
    refs = sentences.references
    multi = sum(len(r) > 1 for r in refs)
    n = len(sentences.sources)
    _LOG.info(
        f"evaluation: {n} distinct test sources, {sum(map(len, refs))} references "
        f"({multi} sources with several, all used: multi-reference BLEU)"
    )
    results, greedy_ids, outputs = {}, {}, {}
    for role, model in models.items():
        _LOG.info(f"evaluating {role} on {n} test sources")
        ids = evaluation.translate_ids(
            model, sentences.source_ids, length, batch_size=e.batch_size, **special
        )
        greedy_ids[role] = ids
        outputs[role] = {"greedy": tokenizers.target.detokenize(ids)}
        if e.beam_size > 1:
            beam = evaluation.translate_ids(
                model,
                sentences.source_ids,
                length,
                beam_size=e.beam_size,
                batch_size=e.batch_size,
                **special,
            )
            outputs[role]["beam"] = tokenizers.target.detokenize(beam)
        results[role] = _scores(outputs[role], refs)
        results[role].update(_test_loss(model, test_ds))
        latency = evaluation.median_latency_ms(
            model, sentences.source_ids[: e.latency_sentences], length, **special
        )
        members = model if isinstance(model, list) else [model]
        results[role].update(
            params=int(sum(m.count_params() for m in members)),
            size_bytes=sum(evaluation.file_size(f) for f in files[role]),
            latency_ms=round(latency, 2),
            samples=outputs[role]["greedy"][: e.num_samples],
            **training.get(role, {}),
        )
    for role in results:
        results[role]["agreement_with_teacher"] = round(
            evaluation.sequence_agreement(greedy_ids[role], greedy_ids["teacher"]), 4
        )
    results["significance"] = significance(outputs, refs, e.bootstrap_samples)
    results["evaluation"] = {
        "sources": n,
        "references": sum(map(len, refs)),
        "multi_reference_sources": multi,
    }
    return Evaluation(
        results,
        sentences.sources[: e.num_samples],
        [" | ".join(r) for r in refs[: e.num_samples]],
    )


def _scores(outputs, refs):
    bleu, chrf = evaluation.corpus_scores(outputs["greedy"], refs)
    beam_bleu = beam_chrf = None
    if "beam" in outputs:
        beam_bleu, beam_chrf = evaluation.corpus_scores(outputs["beam"], refs)
    return {
        "bleu": round(bleu, 2),
        "chrf": round(chrf, 2),
        "bleu_beam": None if beam_bleu is None else round(beam_bleu, 2),
        "chrf_beam": None if beam_chrf is None else round(beam_chrf, 2),
    }


def _test_loss(model, test_ds):
    """Token accuracy and cross-entropy on the test split (None for an ensemble, which is
    no single Keras model to score)."""
    if isinstance(model, list):
        return {"token_accuracy": None, "test_loss": None}
    scorer = Distiller(None, model, alpha=1.0)
    scorer.compile(optimizer="sgd")
    metrics = scorer.evaluate(test_ds, verbose=0, return_dict=True)
    return {
        "token_accuracy": round(float(metrics["token_accuracy"]), 4),
        "test_loss": round(float(metrics["loss"]), 4),
    }


def significance(outputs, refs, samples):
    """Paired bootstrap of the student's BLEU against each other model, greedy and beam."""
    if "student" not in outputs:
        return {}
    return {
        f"student_vs_{other}": {
            mode: evaluation.paired_bootstrap(
                outputs[other][mode], outputs["student"][mode], refs, n_samples=samples
            )
            for mode in outputs["student"]
        }
        for other in COMPARED
        if other in outputs
    }


def export_model(config, student, test_set, tokenizers, run_dir):
    """Exports the student into the run's `export/` (tf_distill.export) and returns the
    files' sizes and parity figures."""
    from tf_distill import export

    e = config.export
    sentences = test_set.head(e.parity_sentences)
    metadata = export.export_student(
        student,
        run_dir.path,
        sentences.source_ids,
        decode_length(config),
        formats=e.formats,
        special=tokenizers.special,
        tokenizer_dir=run_dir.tokenizer_dir,
        min_sequence_agreement=e.min_sequence_agreement,
        int8_mode=e.int8_mode,
        references=None if e.max_bleu_drop is None else sentences.references,
        detokenize=tokenizers.target.detokenize,
        max_bleu_drop=e.max_bleu_drop,
        source_texts=sentences.sources,
        beam_size=e.beam_size,
    )
    return {
        "files": {k: v["bytes"] for k, v in metadata["files"].items()},
        "parity": metadata["parity"],
    }
