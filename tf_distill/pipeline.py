"""The main job: data -> tokenizer -> teacher -> baseline -> distilled student -> evaluation
-> report, with per-epoch checkpoints so a killed run continues with `--resume`.

Each stage logs its progress; the resolved config is written into the output directory
before any training starts, and every artifact sits beside it.
"""

import collections
import json
import logging
import math
import shutil
import time
from pathlib import Path

import keras
import numpy as np

from tf_distill import config as config_lib
from tf_distill import data as data_lib
from tf_distill import evaluation, transfer
from tf_distill.config import ConfigError, resolve_jit_compile
from tf_distill.data import DataError
from tf_distill.distiller import Distiller
from tf_distill.export import ExportError
from tf_distill.models import build_transformer
from tf_distill.sequence_kd import teacher_translations

# The student architecture trained three ways: on the labelled pairs alone, on the
# teacher-labelled pairs with cross-entropy alone (an ablation), and distilled.
STUDENT_ROLES = ("baseline", "student_ce", "student")


_LOG = logging.getLogger(__name__)  # the CLI shows it; in code, configure logging to see it


# Data.


def load_pairs(config):
    """All (source, target) pairs named by `config.data`."""
    d = config.data
    if d.source == "synthetic":
        pairs = data_lib.generate_corpus(d.num_pairs, seed=d.seed, ambiguity=d.ambiguity)
    elif d.source == "tsv":
        pairs = data_lib.read_tsv(
            d.path, source_column=d.source_column, target_column=d.target_column, reverse=d.reverse
        )
    elif d.source == "parallel":
        pairs = data_lib.read_parallel(d.path, d.target_path)
        if d.reverse:
            pairs = [(t, s) for s, t in pairs]
    else:
        pairs = data_lib.read_tfds(d.tfds_name, data_dir=d.data_dir, download=d.download)
        if d.reverse:
            pairs = [(t, s) for s, t in pairs]
    if d.max_sources is not None:
        sources = sorted({s for s, _ in pairs})
        rng = np.random.default_rng(d.seed)
        count = int(d.max_sources) if d.max_sources >= 1 else round(d.max_sources * len(sources))
        chosen = {sources[i] for i in rng.permutation(len(sources))[:count]}
        pairs = [p for p in pairs if p[0] in chosen]
    if d.max_pairs is not None:
        rng = np.random.default_rng(d.seed)
        order = rng.permutation(len(pairs))[: d.max_pairs]
        pairs = [pairs[i] for i in sorted(order)]
    return pairs


def _size(value):
    return float(value) if value < 1 else int(value)


class Run:
    """One run of the pipeline in `output_dir`."""

    def __init__(self, config, resume=False):
        self.config = config
        self.output_dir = Path(config.output_dir)
        self.resume = resume
        self.timings = {}
        self.teacher_pairs = None  # sequence-level KD: sources with teacher translations
        self.teacher_outputs = None  # distillation.teacher_top_k: the teacher's top k logits
        self.transfer_pairs = []  # the transfer set, with the teacher's translations
        self.curves = collections.defaultdict(lambda: {"loss": [], "val_loss": [], "val_bleu": []})
        self.training_summary = {}  # role -> pairs, epochs and optimizer steps
        self.averaging_summary = {}  # teacher role -> validation BLEU before / after

    # Stage plumbing.

    def _stage(self, name, fn):
        _LOG.info(f"stage {name}: start")
        start = time.perf_counter()
        result = fn()
        self.timings[name] = round(time.perf_counter() - start, 2)
        _LOG.info(f"stage {name}: done in {self.timings[name]:.1f} s")
        return result

    def run(self):
        if self.output_dir.exists() and any(self.output_dir.iterdir()) and not self.resume:
            if (self.output_dir / "report.json").exists() or (self.output_dir / "state").exists():
                raise ConfigError(
                    f"Output directory {str(self.output_dir)!r} already holds a run. "
                    "Pass --resume to continue it, or choose another --output-dir."
                )
        created = not self.output_dir.exists()
        fresh = not self.resume and (created or not any(self.output_dir.iterdir()))
        try:
            return self._run_stages()
        except (ConfigError, DataError):
            # Bad input found mid-run (a data file, a teacher of another vocabulary): a
            # fresh run leaves nothing behind, unless it got as far as checkpointing.
            if fresh and not (self.output_dir / "state").exists():
                _remove_run_files(self.output_dir, created)
            raise

    def _run_stages(self):
        c = self.config
        try:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(
                f"output_dir {str(self.output_dir)!r} cannot be created ({error.strerror}). "
                "Choose another output_dir (or --output-dir)."
            ) from None
        (self.output_dir / "config.json").write_text(json.dumps(c.to_dict(), indent=2) + "\n")
        keras.utils.set_random_seed(c.training.seed)
        self._stage("data", self._data)
        self._stage("tokenizer", self._tokenizer)
        self._stage("datasets", self._datasets)
        self.models = {}
        teachers = self._stage("teacher", self._teachers)
        self.models.update(teachers)
        # What the student distils from: the one teacher, or the ensemble of all of them.
        self.teacher = list(teachers.values()) if len(teachers) > 1 else teachers["teacher"]
        if len(teachers) > 1:
            self.models["teacher"] = self.teacher
        if c.distillation.baseline:
            self.models["baseline"] = self._stage(
                "baseline", lambda: self._train_student("baseline")
            )
        student_done = self.resume and (self.output_dir / "student.keras").exists()
        if c.distillation.sequence_level:
            self.teacher_pairs = self._stage("teacher_translations", self._teacher_targets)
        if self.transfer_sources:
            self.transfer_pairs = self._stage("transfer_set", self._transfer_set)
        if c.distillation.ce_only_ablation:
            self.models["student_ce"] = self._stage(
                "student_ce", lambda: self._train_student("student_ce")
            )
        if c.distillation.teacher_top_k and not student_done:
            self.teacher_outputs = self._stage("teacher_outputs", self._teacher_outputs)
        self.models["student"] = self._stage("student", lambda: self._train_student("student"))
        e = c.export
        if e.enabled and e.round_to_int8_grid and "tflite_int8" in e.formats:
            self._stage("int8_rounding", self._round_student)
        results = self._stage("evaluation", self._evaluate)
        export_error = None
        if c.export.enabled:
            try:
                self._stage("export", self._export)
            except ExportError as error:
                # Keep the evaluation: write the report, then fail the run.
                export_error = error
                self.export_summary = {"error": str(error)}
                _LOG.info(f"stage export: failed: {error}")
        report = self._stage("report", lambda: self._report(results))
        if export_error is not None:
            raise export_error
        return report

    # Stages.

    def _data(self, with_transfer=True):
        d = self.config.data
        pairs = load_pairs(self.config)
        splits = data_lib.split_pairs(
            pairs, valid_size=_size(d.valid_size), test_size=_size(d.test_size), seed=d.seed
        )
        self.splits = splits
        # Read (or generated) now, so that a bad transfer file stops the run before anything
        # trains.
        self.transfer_sources = []
        if with_transfer:
            self.transfer_sources = transfer.transfer_sources(self.config, splits)
        self.data_summary = {
            "source": d.source,
            "pairs": len(pairs),
            "train": len(splits.train),
            "valid": len(splits.valid),
            "test": len(splits.test),
        }
        _LOG.info(
            f"{len(pairs)} pairs -> train {len(splits.train)}, valid {len(splits.valid)}, "
            f"test {len(splits.test)}"
        )
        if self.transfer_sources:
            _LOG.info(
                f"transfer set: {len(self.transfer_sources)} source sentences without references"
            )

    def _tokenizer(self):
        t = self.config.tokenizer
        directory = self.output_dir / "tokenizer"
        train = self.splits.train
        if self.resume and (directory / "target_vocab.txt").exists():
            self.source_tokenizer = data_lib.Tokenizer.load(directory, "source")
            self.target_tokenizer = data_lib.Tokenizer.load(directory, "target")
            _LOG.info("tokenizer loaded from the previous run")
            return
        if t.shared:
            texts = [s for s, _ in train] + [g for _, g in train]
            tokenizer = data_lib.Tokenizer.train(texts, vocabulary_size=t.vocabulary_size)
            self.source_tokenizer = self.target_tokenizer = tokenizer
        else:
            self.source_tokenizer = data_lib.Tokenizer.train(
                [s for s, _ in train], vocabulary_size=t.vocabulary_size
            )
            self.target_tokenizer = data_lib.Tokenizer.train(
                [g for _, g in train], vocabulary_size=t.vocabulary_size
            )
        self.source_tokenizer.save(directory, "source")
        self.target_tokenizer.save(directory, "target")
        _LOG.info(
            f"vocabulary: source {self.source_tokenizer.vocabulary_size}, "
            f"target {self.target_tokenizer.vocabulary_size}"
        )

    def _datasets(self):
        t = self.config.training
        common = dict(
            source_tokenizer=self.source_tokenizer,
            target_tokenizer=self.target_tokenizer,
            batch_size=t.batch_size,
            max_sequence_length=t.max_sequence_length,
            bucket_lengths=t.bucket_lengths,
        )
        self.dataset_args = common
        self.train_ds = data_lib.make_seq2seq_dataset(
            self.splits.train, shuffle=True, seed=t.seed, **common
        )
        self.valid_ds = data_lib.make_seq2seq_dataset(self.splits.valid, shuffle=False, **common)
        self.test_ds = data_lib.make_seq2seq_dataset(self.splits.test, shuffle=False, **common)
        self.steps_per_epoch = max(1, math.ceil(len(self.splits.train) / t.batch_size))
        max_len = t.max_sequence_length
        # Evaluation decodes each distinct source once and scores it against all of its
        # references in the split (Tatoeba lists many sources with several translations).
        self.test_sources, self.test_references = evaluation.group_references(self.splits.test)
        self.test_source_ids = _pad_ids(self.source_tokenizer, self.test_sources, max_len)
        sources, references = evaluation.group_references(self.splits.valid)
        n = self.config.evaluation.valid_sentences
        self.valid_references = references[:n]
        self.valid_source_ids = _pad_ids(self.source_tokenizer, sources[:n], max_len)

    def _build(self, role):
        m = self.config.teacher if role.startswith("teacher") else self.config.student
        return build_transformer(
            vocabulary_size=self.source_tokenizer.vocabulary_size,
            target_vocabulary_size=self.target_tokenizer.vocabulary_size,
            max_sequence_length=self.config.training.max_sequence_length + 1,
            num_layers=m.num_layers,
            num_heads=m.num_heads,
            hidden_dim=m.hidden_dim,
            intermediate_dim=m.intermediate_dim,
            dropout=m.dropout,
            num_encoder_layers=m.num_encoder_layers,
            num_decoder_layers=m.num_decoder_layers,
            tie_embeddings=m.tie_embeddings,
            position_embedding=m.position_embedding,
            normalize_first=m.normalize_first,
            name=role,
        )

    def _teachers(self):
        """The teachers by role: "teacher" alone, or "teacher_1" ... "teacher_n" of an
        ensemble; `teacher.path` files are loaded first, the others trained, each from a
        seed of its own."""
        paths = config_lib.teacher_paths(self.config)
        count = config_lib.teacher_count(self.config)
        roles = ["teacher"] if count == 1 else [f"teacher_{i + 1}" for i in range(count)]
        self.teacher_files = {}
        teachers = {}
        for i, role in enumerate(roles):
            if i < len(paths):
                teachers[role] = self._load_teacher(paths[i])
                self.teacher_files[role] = Path(paths[i])
                continue
            t = self.config.training
            keras.utils.set_random_seed(t.seed + 1000 * i)
            epochs = t.teacher_epochs or t.epochs
            teachers[role] = self._fit(
                role,
                self._build(role),
                None,
                epochs,
                label_smoothing=t.teacher_label_smoothing,
                average_epochs=t.teacher_average_epochs,
            )
        return teachers

    def _load_teacher(self, path):
        teacher = keras.saving.load_model(path)
        vocab = teacher.outputs[0].shape[-1]
        if vocab != self.target_tokenizer.vocabulary_size:
            raise ConfigError(
                f"teacher.path {str(path)!r} has a vocabulary of {vocab} but this run's target "
                f"tokenizer has {self.target_tokenizer.vocabulary_size}. Load a teacher "
                "trained with the same tokenizer, or remove teacher.path to train one."
            )
        _LOG.info(f"teacher loaded from {path}")
        return teacher

    def _train_student(self, role):
        """Trains the student architecture as `role` (one of STUDENT_ROLES)."""
        # All three start from identical weights: only their data and loss differ.
        keras.utils.set_random_seed(self.config.training.seed + 1)
        model = self._build(role)
        distill = role == "student"
        teacher = self.teacher if distill else None
        pairs = self.splits.train if role == "baseline" else self._student_pairs()
        # A dataset of its own, made after the seed is set: each sees its batches in the
        # same order whether or not other models trained before it in this process.
        train_ds = data_lib.make_seq2seq_dataset(
            pairs,
            shuffle=True,
            seed=self.config.training.seed,
            extra_columns=self.teacher_outputs if distill else None,
            **self.dataset_args,
        )
        t = self.config.training
        epochs = t.epochs if role == "baseline" else (t.student_epochs or t.epochs)
        return self._fit(role, model, teacher, epochs, train_ds, pairs=len(pairs))

    def _student_pairs(self):
        """The distilled student's training pairs: the teacher's translations with
        sequence-level KD, else the training split; then the transfer set, if any."""
        pairs = self.splits.train if self.teacher_pairs is None else self.teacher_pairs
        return list(pairs) + list(self.transfer_pairs)

    def _teacher_outputs(self):
        from tf_distill.teacher_cache import teacher_top_k

        d, t = self.config.distillation, self.config.training
        pairs = self._student_pairs()
        _LOG.info(
            f"teacher: top {d.teacher_top_k} tokens on {len(pairs)} training pairs, "
            "once for all epochs"
        )
        return teacher_top_k(
            self.teacher,
            pairs,
            self.source_tokenizer,
            self.target_tokenizer,
            t.max_sequence_length,
            d.teacher_top_k,
            temperature=d.temperature,
            bucket_lengths=t.bucket_lengths,
            batch_size=max(t.batch_size, 128),
        )

    def _teacher_targets(self):
        """The distinct training sources paired with the teacher's translations
        (sequence-level KD); the pairs are kept in the run for `--resume`."""
        sources = list(dict.fromkeys(s for s, _ in self.splits.train))  # one per source
        return self._translated(
            sources, "teacher_translations.tsv", "training sources (sequence-level KD)"
        )

    def _transfer_set(self):
        """The transfer set's sentences (tf_distill.transfer) with the teacher's
        translations; kept in the run for `--resume`."""
        pairs = self._translated(
            self.transfer_sources, "transfer_set.tsv", "transfer-set sentences"
        )
        self.data_summary["transfer"] = len(pairs)
        return pairs

    def _translated(self, sources, file_name, what):
        """`sources` paired with the teacher's greedy translations, stored as `file_name`
        (or read back from it on `--resume`); pairs with an empty translation are left out."""
        path = self.output_dir / file_name
        if self.resume and path.exists():
            pairs = data_lib.read_tsv(path)
            _LOG.info(f"teacher translations loaded from {path}")
        else:
            beam = self.config.distillation.sequence_level_beam
            how = "greedily" if beam == 1 else f"with beam search ({beam} beams)"
            who = "teacher ensemble" if isinstance(self.teacher, list) else "teacher"
            _LOG.info(f"{who} translating {len(sources)} {what} {how}")
            # Each finished batch is appended to a progress file, which a resumed run
            # continues from; a fresh run starts it anew.
            progress = path.with_suffix(".partial")
            if not self.resume:
                progress.unlink(missing_ok=True)
            hypotheses = teacher_translations(
                self.teacher,
                sources,
                self.source_tokenizer,
                self.target_tokenizer,
                self.config.training.max_sequence_length,
                self._decode_length(),
                beam_size=beam,
                progress_path=progress,
            )
            # Empty outputs (no target) and stray tabs / newlines (no TSV line) are dropped.
            pairs = [
                (s, h)
                for s, h in zip(sources, hypotheses, strict=True)
                if h.strip() and not {"\t", "\n"} & set(s + h)
            ]
            if not pairs:
                raise DataError(
                    f"The teacher translated none of the {len(sources)} {what} into a usable "
                    "sentence (every output was empty): it is not trained enough. Raise "
                    "training.teacher_epochs or give more labelled pairs."
                )
            tmp = path.with_suffix(".tmp")
            tmp.write_text("".join(f"{s}\t{h}\n" for s, h in pairs), encoding="utf-8")
            tmp.rename(path)
            progress.unlink(missing_ok=True)
        return pairs

    def _fit(
        self,
        role,
        model,
        teacher,
        epochs,
        train_ds=None,
        pairs=None,
        label_smoothing=0.0,
        average_epochs=1,
    ):
        t, d = self.config.training, self.config.distillation
        state_dir = self.output_dir / "state" / role
        final = self.output_dir / f"{role}.keras"
        summary_path = self.output_dir / "state" / f"{role}.summary.json"
        if self.resume and final.exists():
            _LOG.info(f"{role}: already trained, loaded {final}")
            self.curves[role] = json.loads((state_dir / "curves.json").read_text())
            if summary_path.exists():
                summary = json.loads(summary_path.read_text())
                self.training_summary[role] = summary["training"]
                if summary.get("averaging"):
                    self.averaging_summary[role] = summary["averaging"]
            return keras.saving.load_model(final)
        if teacher is None:
            trainer = Distiller(None, model, alpha=1.0, label_smoothing=label_smoothing)
        else:
            trainer = Distiller(teacher, model, alpha=d.alpha, temperature=d.temperature)
        train_ds = self.train_ds if train_ds is None else train_ds
        pairs = len(self.splits.train) if pairs is None else pairs
        steps = int(train_ds.cardinality())
        total_steps = max(1, epochs * (steps if steps > 0 else self.steps_per_epoch))
        schedule = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0,
            decay_steps=total_steps,
            warmup_target=t.learning_rate,
            warmup_steps=min(t.warmup_steps, total_steps // 2),
            alpha=t.cosine_final_fraction,
        )
        optimizer = keras.optimizers.AdamW(
            learning_rate=schedule, weight_decay=t.weight_decay, clipnorm=t.clipnorm
        )
        trainer.compile(optimizer=optimizer, jit_compile=resolve_jit_compile(t.jit_compile))
        initial_epoch = 0
        checkpoint = _Checkpoint(self, role, model, optimizer, state_dir, average_epochs)
        if self.resume and (state_dir / "state.json").exists():
            initial_epoch = self._restore(trainer, model, optimizer, state_dir)
            checkpoint.load_recent()
            _LOG.info(f"{role}: resuming after epoch {initial_epoch}")
        callbacks = [
            checkpoint,
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=t.early_stopping_patience, restore_best_weights=True
            ),
            keras.callbacks.TensorBoard(
                log_dir=str(self.output_dir / "logs" / role), write_graph=False, profile_batch=0
            ),
        ]
        smoothing = f", label smoothing {label_smoothing}" if label_smoothing else ""
        _LOG.info(
            f"{role}: {model.count_params():,} parameters, {pairs:,} training pairs, "
            f"{epochs} epochs of {steps} steps{smoothing}"
        )
        if initial_epoch < epochs:
            trainer.fit(
                train_ds,
                validation_data=self.valid_ds,
                epochs=epochs,
                initial_epoch=initial_epoch,
                callbacks=callbacks,
                shuffle=False,  # the dataset shuffles itself, within length buckets
                verbose=2,
            )
        self.training_summary[role] = {
            "pairs": int(pairs),
            "epochs": len(self.curves[role]["loss"]),
            "steps": int(optimizer.iterations.numpy()),
        }
        if average_epochs > 1:
            self._average(role, model, checkpoint.recent)
        model.save(final)
        summary = {"training": self.training_summary[role]}
        summary["averaging"] = self.averaging_summary.get(role)
        summary_path.write_text(json.dumps(summary))
        return model

    def _average(self, role, model, recent):
        """Replaces the weights of `model` with their mean over the `recent` epochs when that
        scores at least as well on the validation sentences (selection on validation)."""
        if len(recent) < 2:
            return
        last = model.get_weights()
        before = self.valid_bleu(model)
        model.set_weights([np.mean(ws, axis=0) for ws in zip(*recent, strict=True)])
        after = self.valid_bleu(model)
        kept = after >= before
        if not kept:
            model.set_weights(last)
        self.averaging_summary[role] = {
            "epochs": len(recent),
            "valid_bleu_last": round(before, 2),
            "valid_bleu_average": round(after, 2),
            "kept": kept,
        }
        _LOG.info(
            f"{role}: weights averaged over the last {len(recent)} epochs: validation BLEU "
            f"{before:.2f} -> {after:.2f} ({'kept' if kept else 'not kept'})"
        )

    def _restore(self, trainer, model, optimizer, state_dir):
        state = json.loads((state_dir / "state.json").read_text())
        saved = keras.saving.load_model(state_dir / "model.keras")
        model.set_weights(saved.get_weights())
        optimizer.build(model.trainable_variables)
        values = np.load(state_dir / "optimizer.npz")
        for i, variable in enumerate(optimizer.variables):
            variable.assign(values[f"v{i}"])
        self.curves[state["role"]] = state["curves"]
        return state["epoch"]

    def valid_bleu(self, model):
        special = self._special()
        ids = evaluation.translate_ids(
            model, self.valid_source_ids, self._decode_length(), **special
        )
        hyps = self.target_tokenizer.detokenize(ids)
        return evaluation.corpus_scores(hyps, self.valid_references)[0]

    def _model_file(self, role):
        """The `.keras` file of `role`: a loaded teacher stays where the config names it."""
        return self.teacher_files.get(role, self.output_dir / f"{role}.keras")

    def _special(self):
        tok = self.target_tokenizer
        return {"start_id": tok.start_id, "end_id": tok.end_id, "pad_id": tok.pad_id}

    def _decode_length(self):
        return self.config.export.max_decode_length or self.config.training.max_sequence_length

    def _evaluate(self):
        e = self.config.evaluation
        special = self._special()
        max_length = self._decode_length()
        n = min(e.max_sentences, len(self.test_sources))
        source_ids = self.test_source_ids[:n]
        refs = self.test_references[:n]
        multi = sum(len(r) > 1 for r in refs)
        _LOG.info(
            f"evaluation: {n} distinct test sources, {sum(map(len, refs))} references "
            f"({multi} sources with several, all used: multi-reference BLEU)"
        )
        results, greedy_ids, outputs = {}, {}, {}
        for role, model in self.models.items():
            members = model if isinstance(model, list) else [model]
            _LOG.info(f"evaluating {role} on {n} test sources")
            ids = evaluation.translate_ids(model, source_ids, max_length, **special)
            greedy_ids[role] = ids
            hyps = self.target_tokenizer.detokenize(ids)
            bleu, chrf = evaluation.corpus_scores(hyps, refs)
            outputs[role] = {"greedy": hyps}
            beam_bleu = beam_chrf = None
            if e.beam_size > 1:
                beam = evaluation.translate_ids(
                    model, source_ids, max_length, beam_size=e.beam_size, **special
                )
                outputs[role]["beam"] = self.target_tokenizer.detokenize(beam)
                beam_bleu, beam_chrf = evaluation.corpus_scores(outputs[role]["beam"], refs)
            accuracy = test_loss = None
            if len(members) == 1:  # an ensemble is no single Keras model to score
                scorer = Distiller(None, members[0], alpha=1.0)
                scorer.compile(optimizer="sgd")
                metrics = scorer.evaluate(self.test_ds, verbose=0, return_dict=True)
                accuracy = round(float(metrics["token_accuracy"]), 4)
                test_loss = round(float(metrics["loss"]), 4)
            latency = evaluation.median_latency_ms(
                model, source_ids[: e.latency_sentences], max_length, **special
            )
            files = [self._model_file(r) for r in self._member_roles(role)]
            results[role] = {
                "bleu": round(bleu, 2),
                "chrf": round(chrf, 2),
                "bleu_beam": None if beam_bleu is None else round(beam_bleu, 2),
                "chrf_beam": None if beam_chrf is None else round(beam_chrf, 2),
                "token_accuracy": accuracy,
                "test_loss": test_loss,
                "params": int(sum(m.count_params() for m in members)),
                "size_bytes": sum(evaluation.file_size(f) for f in files),
                "latency_ms": round(latency, 2),
                "samples": hyps[: e.num_samples],
                **self.training_summary.get(role, {}),
            }
        for role in results:
            results[role]["agreement_with_teacher"] = round(
                evaluation.sequence_agreement(greedy_ids[role], greedy_ids["teacher"]), 4
            )
        results["significance"] = self._significance(outputs, refs)
        results["evaluation"] = {"sources": n, "references": sum(map(len, refs))}
        results["evaluation"]["multi_reference_sources"] = multi
        self.sample_sources = self.test_sources[: e.num_samples]
        self.sample_references = [" | ".join(r) for r in refs[: e.num_samples]]
        return results

    def _member_roles(self, role):
        """The roles whose files make up `role` (an ensemble's members, else itself)."""
        if role == "teacher" and isinstance(self.teacher, list):
            return [r for r in self.models if r.startswith("teacher_")]
        return [role]

    def _significance(self, outputs, refs):
        """Paired bootstrap of the student's BLEU against each other model, greedy and beam."""
        samples = self.config.evaluation.bootstrap_samples
        found = {}
        if "student" not in outputs:
            return found
        for other in ("baseline", "teacher", "student_ce"):
            if other not in outputs:
                continue
            found[f"student_vs_{other}"] = {
                mode: evaluation.paired_bootstrap(
                    outputs[other][mode], outputs["student"][mode], refs, n_samples=samples
                )
                for mode in outputs["student"]
            }
        return found

    def _round_student(self):
        """Rounds the student's weights to the int8 grid (see `export.round_to_int8_grid`),
        records how many test sentences it changes, and saves the rounded student."""
        from tf_distill.tflite import round_to_int8_grid

        student = self.models["student"]
        special = self._special()
        source_ids = self.test_source_ids[: self.config.export.parity_sentences]
        before = evaluation.translate_ids(student, source_ids, self._decode_length(), **special)
        tensors = round_to_int8_grid(student)
        after = evaluation.translate_ids(student, source_ids, self._decode_length(), **special)
        same = round(evaluation.sequence_agreement(before, after), 4)
        self.rounding_summary = {"tensors": tensors, "same_greedy_output": same}
        _LOG.info(
            f"student: {tensors} weight tensors rounded to the int8 grid; greedy output "
            f"unchanged on {same:.1%} of {len(source_ids)} test sentences"
        )
        student.save(self.output_dir / "student.keras")

    def _export(self):
        from tf_distill import export

        e = self.config.export
        metadata = export.export_student(
            self.models["student"],
            self.output_dir,
            self.test_source_ids[: e.parity_sentences],
            self._decode_length(),
            formats=e.formats,
            special=self._special(),
            tokenizer_dir=self.output_dir / "tokenizer",
            min_sequence_agreement=e.min_sequence_agreement,
            int8_mode=e.int8_mode,
            references=None
            if e.max_bleu_drop is None
            else self.test_references[: e.parity_sentences],
            detokenize=self.target_tokenizer.detokenize,
            max_bleu_drop=e.max_bleu_drop,
            source_texts=self.test_sources[: e.parity_sentences],
            beam_size=e.beam_size,
        )
        self.export_summary = {
            "files": {k: v["bytes"] for k, v in metadata["files"].items()},
            "parity": metadata["parity"],
        }

    def _report(self, results):
        from tf_distill import report

        payload = {
            **results,
            "data": self.data_summary,
            "config": self.config.to_dict(),
            "timings_s": self.timings,
            "curves": self.curves,
            "export": getattr(self, "export_summary", None),
            "int8_rounding": getattr(self, "rounding_summary", None),
            "checkpoint_averaging": self.averaging_summary or None,
        }
        return report.write_report(self.output_dir, payload, self)


class _Checkpoint(keras.callbacks.Callback):
    """After every epoch: validation BLEU for the curves, then the model, the optimizer
    state, the epoch number and (for checkpoint averaging) the weights of the last
    `keep_epochs` epochs, written so that a killed run resumes from here."""

    def __init__(self, run, role, model, optimizer, state_dir, keep_epochs=1):
        super().__init__()
        self.run, self.role, self.student = run, role, model
        self.optimizer_ref, self.state_dir = optimizer, state_dir
        self.recent = collections.deque(maxlen=keep_epochs) if keep_epochs > 1 else None

    def load_recent(self):
        """The recent epochs' weights of a checkpoint being resumed."""
        path = self.state_dir / "recent.npz"
        if self.recent is None or not path.exists():
            return
        values = np.load(path)
        epochs = sorted({int(key.split("_")[0][1:]) for key in values.files})
        count = len(self.student.get_weights())
        for e in epochs:
            self.recent.append([values[f"e{e}_{i}"] for i in range(count)])

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        curves = self.run.curves[self.role]
        curves["loss"].append(float(logs.get("loss", float("nan"))))
        curves["val_loss"].append(float(logs.get("val_loss", float("nan"))))
        # The cross-entropy on its own (the student's `loss` also holds the KL term), so
        # that every model's curve on the plot measures the same thing.
        for key, name in (("ce", "student_loss"), ("val_ce", "val_student_loss")):
            curves.setdefault(key, []).append(float(logs.get(name, float("nan"))))
        curves["val_bleu"].append(round(self.run.valid_bleu(self.student), 2))
        _LOG.info(
            f"{self.role} epoch {epoch + 1}: loss {curves['loss'][-1]:.4f}, "
            f"val_loss {curves['val_loss'][-1]:.4f}, val BLEU {curves['val_bleu'][-1]:.2f}"
        )
        tmp = self.state_dir.with_name(self.state_dir.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self.student.save(tmp / "model.keras")
        np.savez(
            tmp / "optimizer.npz",
            **{f"v{i}": np.asarray(v) for i, v in enumerate(self.optimizer_ref.variables)},
        )
        if self.recent is not None:
            self.recent.append(self.student.get_weights())
            np.savez(
                tmp / "recent.npz",
                **{
                    f"e{e}_{i}": w
                    for e, weights in enumerate(self.recent)
                    for i, w in enumerate(weights)
                },
            )
        state = {"role": self.role, "epoch": epoch + 1, "curves": curves}
        (tmp / "state.json").write_text(json.dumps(state))
        (tmp / "curves.json").write_text(json.dumps(curves))
        # Replace the previous checkpoint only once the new one is complete.
        shutil.rmtree(self.state_dir, ignore_errors=True)
        tmp.rename(self.state_dir)


def _remove_run_files(output_dir, created):
    """Deletes what a failed fresh run wrote: the directory itself if the run created it."""
    if created:
        shutil.rmtree(output_dir, ignore_errors=True)
        return
    for path in output_dir.iterdir():
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _pad_ids(tokenizer, texts, max_length):
    """Tokenizes `texts` into a (N, max_length) int32 array padded with 0."""
    rows = tokenizer.tokenize(texts)
    out = np.zeros((len(texts), max_length), "int32")
    for i, row in enumerate(rows):
        row = list(row)[:max_length]
        out[i, : len(row)] = row
    return out


def export_run(run_dir, overrides=()):
    """Exports the student of a finished run again (e.g. other formats, or full int8).

    Reads `<run_dir>/config.json`, applies `section.key=value` overrides, rebuilds the test
    split from the config's data (deterministic) for the parity checks, loads
    `<run_dir>/student.keras` and the run's tokenizer, and writes `<run_dir>/export`
    (replacing a previous export only when the new one is complete and passes parity).
    """
    from tf_distill import config as config_lib

    run_dir = Path(run_dir)
    config_path, student_path = config_lib.finished_run_files(run_dir)
    try:
        raw = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ConfigError(f"{config_path}: not a valid JSON config.") from None
    for override in overrides:
        config_lib.apply_override(raw, override)
    raw["output_dir"] = str(run_dir)
    config = config_lib.from_dict(raw)
    run = Run(config, resume=True)
    run._data(with_transfer=False)
    run._tokenizer()
    run.test_sources, run.test_references = evaluation.group_references(run.splits.test)
    run.test_source_ids = _pad_ids(
        run.source_tokenizer, run.test_sources, config.training.max_sequence_length
    )
    run.models = {"student": keras.saving.load_model(student_path)}
    _LOG.info(f"exporting {student_path}")
    run._export()
    return run.export_summary


def run_pipeline(config, resume=False):
    """Runs every stage for `config`; returns the report dict."""
    return Run(config, resume=resume).run()
