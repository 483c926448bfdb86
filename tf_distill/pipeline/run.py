"""The main job, stage by stage: data -> tokenizer -> datasets -> teacher -> baseline ->
teacher translations / transfer set -> CE-only ablation -> teacher cache -> student ->
int8 rounding -> evaluation -> export -> report.

Each stage is a function of what earlier stages returned; this module only calls them in
order, times them, and keeps the run directory consistent (lock, clean-up of a fresh run
that fails on bad input).
"""

import functools
import json
import logging
import time
from pathlib import Path

import keras

from tf_distill import config as config_lib
from tf_distill import distribution
from tf_distill import report as report_lib
from tf_distill.data import DataError
from tf_distill.errors import ConfigError
from tf_distill.export import ExportError
from tf_distill.pipeline import data_stages, final_stages, model_stages
from tf_distill.run_dir import RunDirectory, write_json

_LOG = logging.getLogger(__name__)


class _Timer:
    """Runs stages, logging their start and end and recording their seconds in
    `state/timings.json`; a resumed run adds its seconds to those of the processes before
    it, so the report's timings cover the whole run."""

    def __init__(self, record, resume):
        self.record = record
        self.seconds = {}
        if resume and record.exists():
            self.seconds = json.loads(record.read_text())

    def __call__(self, name, fn, /, *args, **kwargs):
        _LOG.info(f"stage {name}: start")
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        spent = time.perf_counter() - start
        self.seconds[name] = round(self.seconds.get(name, 0.0) + spent, 2)
        _LOG.info(f"stage {name}: done in {spent:.1f} s")
        self.record.parent.mkdir(exist_ok=True)
        write_json(self.record, self.seconds)
        return result


def run_pipeline(config, resume=False):
    """Runs every stage for `config` in `config.output_dir`; returns the report dict.

    A fresh run that stops on bad input (a data file, a teacher of another vocabulary)
    leaves nothing behind unless it got as far as a checkpoint: a directory it made is
    removed, one that existed keeps what it held before and only that.
    """
    run_stages = _run_stages
    if config.task == "classification":
        from tf_distill.pipeline.classification import run_stages
    kind = distribution.resolve(config.training.distribution)
    strategy = distribution.make_strategy(kind)
    if strategy is not None:
        _LOG.info(
            f"distribution: {kind}, {strategy.num_replicas_in_sync} replicas, global batch "
            f"{config.training.batch_size}"
        )
    if not distribution.is_chief():
        return _run_as_worker(config, resume, strategy, run_stages)
    if resume:  # the other workers copy the run directory before the chief writes to it
        distribution.barrier(strategy)
    distribution.use(strategy)
    try:
        return _run_in(config, resume, run_stages)
    finally:
        distribution.use(None)


def _run_as_worker(config, resume, strategy, run_stages):
    """A non-chief worker runs every stage like the chief (training needs it at every
    step) but writes to a scratch copy of the run directory, removed at the end; a resumed
    worker starts from a copy of the chief's directory (shared storage), so it restores the
    checkpoints the chief restores; the chief waits until every worker has made its copy
    before it writes there."""
    import dataclasses
    import shutil
    import tempfile

    scratch = Path(tempfile.mkdtemp(prefix="tf_distill_worker_"))
    own = scratch / "run"
    chief_dir = Path(config.output_dir)
    if resume:
        if not (chief_dir / "config.json").exists():
            raise ConfigError(
                f"--resume: this worker cannot see the chief's run directory {chief_dir} "
                "(it needs storage shared with the chief to restore the same checkpoints)."
            )
        try:
            shutil.copytree(chief_dir, own, ignore=shutil.ignore_patterns(".lock", "*.lock"))
        finally:  # the chief waits for this copy before it writes (also if it failed)
            distribution.barrier(strategy)
    _LOG.info(f"worker: not the chief; writing to scratch {own}, removed at the end")
    distribution.use(strategy)
    try:
        return _run_in(dataclasses.replace(config, output_dir=str(own)), resume, run_stages)
    finally:
        distribution.use(None)
        shutil.rmtree(scratch, ignore_errors=True)


def _run_in(config, resume, run_stages):
    run_dir = RunDirectory(config.output_dir)
    run_dir.check_start(resume)
    if resume:
        run_dir.check_resume_config(config.to_dict(), config_lib.Config().to_dict())
    fresh = not resume
    run_dir.create()
    with run_dir.lock():
        try:
            return run_stages(model_stages.RunContext(config, run_dir, resume))
        except (ConfigError, DataError):
            if fresh and not run_dir.holds_run():
                run_dir.remove_fresh_run()
            raise


def _run_stages(ctx):
    config, run_dir = ctx.config, ctx.run_dir
    d, e = config.distillation, config.export
    stage = _Timer(run_dir.record_file("timings"), ctx.resume)
    write_json(run_dir.config_file, config.to_dict(), indent=2)
    keras.utils.set_random_seed(config.training.seed)

    data = stage("data", data_stages.prepare_data, config)
    tokenizers = stage(
        "tokenizer",
        data_stages.prepare_tokenizers,
        config,
        data.tokenizer_pairs,
        run_dir,
        ctx.resume,
    )
    datasets = stage(
        "datasets", data_stages.make_datasets, config, data.splits, tokenizers, run_dir, ctx.resume
    )
    valid_bleu = functools.partial(
        data_stages.bleu_of, sentences=datasets.valid_set, tokenizers=tokenizers, config=config
    )
    teachers = stage("teacher", model_stages.train_teachers, ctx, tokenizers, datasets, valid_bleu)
    trained = dict(teachers.trained)
    train = functools.partial(
        model_stages.train_student,
        ctx,
        tokenizers=tokenizers,
        datasets=datasets,
        valid_bleu=valid_bleu,
    )
    if d.baseline:
        trained["baseline"] = stage("baseline", train, "baseline", pairs=datasets.train_split)

    student_pairs = datasets.train_split  # a list, or shards when streamed
    if isinstance(student_pairs, list):
        student_pairs = list(student_pairs)  # a copy: a transfer set may join it
    translate = functools.partial(
        model_stages.translate_with_teacher, ctx, teachers.teacher, tokenizers=tokenizers
    )
    if d.sequence_level:
        sources = list(dict.fromkeys(s for s, _ in data.splits.train))  # one per source
        student_pairs = stage(
            "teacher_translations",
            translate,
            sources,
            name="teacher_translations",
            what="training sources (sequence-level KD)",
        )
    data_summary = {**data.summary, "truncation": datasets.truncation}
    if data.transfer_sources:
        transfer = stage(
            "transfer_set",
            translate,
            data.transfer_sources,
            name="transfer_set",
            what="transfer-set sentences",
        )
        data_summary["transfer"] = len(transfer)
        student_pairs += transfer
    if d.ce_only_ablation:
        trained["student_ce"] = stage("student_ce", train, "student_ce", pairs=student_pairs)
    cache = None
    if d.teacher_top_k and not (ctx.resume and run_dir.model_file("student").exists()):
        cache = stage(
            "teacher_outputs",
            model_stages.cache_teacher_outputs,
            config,
            teachers.teacher,
            student_pairs,
            tokenizers,
            run_dir,
        )
    trained["student"] = stage(
        "student", train, "student", pairs=student_pairs, teacher=teachers.teacher, cache=cache
    )
    student = trained["student"].model

    rounding = None
    if e.enabled and e.round_to_int8_grid and "tflite_int8" in e.formats:
        rounding = stage(
            "int8_rounding",
            final_stages.round_student,
            config,
            student,
            datasets.test_set,
            tokenizers,
            run_dir,
            ctx.resume,
        )

    models = {role: t.model for role, t in teachers.trained.items()}
    files = {role: [path] for role, path in teachers.files.items()}
    if len(models) > 1:  # the ensemble is evaluated as one teacher too
        models["teacher"] = teachers.teacher
        files["teacher"] = list(teachers.files.values())
    models.update({role: t.model for role, t in trained.items() if role not in models})
    files.update({role: [run_dir.model_file(role)] for role in models if role not in files})
    evaluation = stage(
        "evaluation",
        final_stages.evaluate,
        config,
        models,
        files,
        {role: t.training for role, t in trained.items()},
        datasets.test_set,
        datasets.test,
        tokenizers,
    )

    export, export_error = None, None
    if e.enabled:
        try:
            export = stage(
                "export",
                final_stages.export_model,
                config,
                student,
                datasets.test_set,
                tokenizers,
                run_dir,
            )
        except ExportError as error:  # keep the evaluation: write the report, then fail
            export_error, export = error, {"error": str(error)}
            _LOG.info(f"stage export: failed: {error}")

    result = report_lib.RunResult(
        results=evaluation.results,
        data=data_summary,
        config=config.to_dict(),
        timings=stage.seconds,
        curves={role: t.curves for role, t in trained.items()},
        export=export,
        int8_rounding=rounding,
        checkpoint_averaging={r: t.averaging for r, t in trained.items() if t.averaging},
        sample_sources=evaluation.sample_sources,
        sample_references=evaluation.sample_references,
    )
    report = stage("report", report_lib.write_report, run_dir, result)
    if export_error is not None:
        raise export_error
    return report


def export_run(run_dir, overrides=()):
    """Exports the student of a finished run again (e.g. other formats, or full int8).

    Reads `<run_dir>/config.json`, applies `section.key=value` overrides, rebuilds the test
    split from the config's data (deterministic) for the parity checks, loads
    `<run_dir>/student.keras` and the run's tokenizer, and writes `<run_dir>/export`
    (replacing a previous export only when the new one is complete and passes parity).
    """
    run_dir = RunDirectory(run_dir)
    config_path, student_path = run_dir.finished_run_files()
    try:
        raw = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ConfigError(f"{config_path}: not a valid JSON config.") from None
    for override in overrides:
        config_lib.apply_override(raw, override)
    raw["output_dir"] = str(run_dir.path)
    config = config_lib.from_dict(raw)
    if config.task == "classification":
        from tf_distill.pipeline.classification import export_finished_run

        with run_dir.lock():
            return export_finished_run(config, run_dir, student_path)
    with run_dir.lock():
        data = data_stages.prepare_data(config, with_transfer=False)
        tokenizers = data_stages.load_tokenizers(run_dir)
        test_set = data_stages.eval_set(
            data.splits.test, tokenizers.source, config.training.max_sequence_length
        )
        try:
            student = keras.saving.load_model(student_path)
        except Exception as error:  # a truncated or foreign file fails in Keras' own way
            raise ConfigError(
                f"{student_path} cannot be loaded ({type(error).__name__}: "
                f"{str(error).splitlines()[0][:160]}). Finish the run with `tf-distill train "
                "--config ... --resume`, which writes it again."
            ) from None
        _LOG.info(f"exporting {student_path}")
        return final_stages.export_model(config, student, test_set, tokenizers, run_dir)
