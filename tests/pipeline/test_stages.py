"""Each pipeline stage on its own, on a corpus of a few hundred pairs and models of width
8-16: what it returns, what it writes into the run directory, what it reads back on
--resume, and the errors it raises."""

import dataclasses
import json
import logging

import keras
import numpy as np
import pytest

from tf_distill import config as config_lib
from tf_distill import evaluation, report, training
from tf_distill.data import DataError
from tf_distill.distiller import Distiller
from tf_distill.errors import ConfigError
from tf_distill.pipeline import data_stages, final_stages, model_stages
from tf_distill.run_dir import RunDirectory

RAW = {
    "data": {"source": "synthetic", "num_pairs": 400, "valid_size": 0.1, "test_size": 0.1},
    "tokenizer": {"vocabulary_size": 150},
    "teacher": {"num_layers": 1, "num_heads": 2, "hidden_dim": 16, "intermediate_dim": 32},
    "student": {"num_layers": 1, "num_heads": 2, "hidden_dim": 8, "intermediate_dim": 16},
    "distillation": {"teacher_top_k": 4, "alpha": 0.5, "temperature": 2.0},
    "training": {"epochs": 1, "batch_size": 32, "max_sequence_length": 16, "warmup_steps": 2,
                 "jit_compile": False, "max_truncated_share": 1.0},
    "export": {"formats": ["saved_model"], "parity_sentences": 8},
    "evaluation": {"beam_size": 2, "max_sentences": 12, "latency_sentences": 2,
                   "valid_sentences": 10, "num_samples": 2, "bootstrap_samples": 100},
}  # fmt: skip


def make_config(tmp_path, **sections):
    raw = json.loads(json.dumps(RAW))
    for name, values in sections.items():
        raw[name].update(values)
    raw["output_dir"] = str(tmp_path / "run")
    return config_lib.from_dict(raw)


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """The stages up to a trained teacher, shared by the tests below."""
    tmp = tmp_path_factory.mktemp("stages")
    config = make_config(tmp)
    run_dir = RunDirectory(config.output_dir)
    run_dir.create()
    data = data_stages.prepare_data(config)
    tokenizers = data_stages.prepare_tokenizers(config, data.splits.train, run_dir, False)
    datasets = data_stages.make_datasets(config, data.splits, tokenizers)
    ctx = model_stages.RunContext(config, run_dir, resume=False)

    def valid_bleu(model):
        return data_stages.bleu_of(model, datasets.valid_set, tokenizers, config)

    teachers = model_stages.train_teachers(ctx, tokenizers, datasets, valid_bleu)
    return dict(
        config=config, run_dir=run_dir, data=data, tokenizers=tokenizers, datasets=datasets,
        ctx=ctx, valid_bleu=valid_bleu, teachers=teachers,
    )  # fmt: skip


def test_prepare_data_splits_and_counts(staged):
    data = staged["data"]
    s = data.splits
    assert data.summary == {
        "source": "synthetic", "pairs": 400, "train": len(s.train), "valid": len(s.valid),
        "test": len(s.test),
    }  # fmt: skip
    assert len(s.train) + len(s.valid) + len(s.test) == 400
    assert not {a for a, _ in s.test} & {a for a, _ in s.train}  # a source stays in one split
    assert data.transfer_sources == []


def test_tokenizers_are_saved_and_loaded_back_on_resume(staged):
    config, run_dir, tokenizers = staged["config"], staged["run_dir"], staged["tokenizers"]
    assert tokenizers.source is tokenizers.target  # tokenizer.shared defaults to true
    assert tokenizers.special == {"start_id": 2, "end_id": 3, "pad_id": 0}
    # On resume the saved files are read, whatever pairs are given.
    loaded = data_stages.prepare_tokenizers(config, [("x", "y")], run_dir, resume=True)
    text = staged["data"].splits.valid[0][0]
    assert loaded.source.tokenize([text]) == tokenizers.source.tokenize([text])
    assert loaded.target.vocabulary_size == tokenizers.target.vocabulary_size


def test_eval_sets_group_references_and_pad_to_a_fixed_width(staged):
    datasets, tokenizers = staged["datasets"], staged["tokenizers"]
    pairs = [("a b", "x"), ("c", "y"), ("a b", "z")]
    found = data_stages.eval_set(pairs, tokenizers.source, 16)
    assert found.sources == ["a b", "c"] and found.references == [["x", "z"], ["y"]]
    assert found.source_ids.shape == (2, 16)
    expected = tokenizers.source.tokenize(["a b"])[0]
    assert list(found.source_ids[0, : len(expected)]) == list(expected)
    assert not found.source_ids[0, len(expected) :].any()
    assert len(datasets.valid_set.sources) == 10  # evaluation.valid_sentences
    assert datasets.train_pairs == len(staged["data"].splits.train)
    assert found.head(1).references == [["x", "z"]]


def test_bleu_of_matches_sacrebleu_on_the_decoded_outputs(staged):
    config, tokenizers = staged["config"], staged["tokenizers"]
    teacher = staged["teachers"].teacher
    sentences = staged["datasets"].valid_set
    ids = evaluation.translate_ids(teacher, sentences.source_ids, 16, **tokenizers.special)
    import sacrebleu

    hyps = tokenizers.target.detokenize(ids)
    refs = [r[0] for r in sentences.references]
    expected = sacrebleu.corpus_bleu(hyps, [refs]).score
    assert data_stages.bleu_of(teacher, sentences, tokenizers, config) == pytest.approx(expected)


def test_train_teachers_writes_the_model_and_its_records(staged):
    run_dir, teachers = staged["run_dir"], staged["teachers"]
    trained = teachers.trained["teacher"]
    assert teachers.files == {"teacher": run_dir.model_file("teacher")}
    assert run_dir.model_file("teacher").exists()
    assert trained.training["epochs"] == 1 and trained.training["steps"] > 0
    assert len(trained.curves["val_bleu"]) == 1
    summary = json.loads(run_dir.summary_file("teacher").read_text())
    assert summary["training"] == trained.training
    # On resume, the trained teacher is loaded back with the same weights and records.
    ctx = dataclasses.replace(staged["ctx"], resume=True)
    again = model_stages.train_teachers(ctx, staged["tokenizers"], staged["datasets"], None)
    for a, b in zip(again.teacher.get_weights(), teachers.teacher.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert again.trained["teacher"].curves["val_bleu"] == trained.curves["val_bleu"]


def test_a_loaded_teacher_is_checked_before_anything_trains(staged, tmp_path):
    from tf_distill.data import Tokenizer
    from tf_distill.models import build_classifier
    from tf_distill.run_dir import read_note

    tokenizers, run_dir = staged["tokenizers"], staged["run_dir"]
    teacher_file = run_dir.model_file("teacher")
    # A teacher the pipeline trained carries its tokenizers' fingerprints.
    assert read_note(teacher_file) == tokenizers.note
    assert model_stages.load_teacher(teacher_file, tokenizers, 16).count_params() > 0

    # Another vocabulary of the same size: the sizes agree, the fingerprints do not.
    words = tokenizers.target.vocabulary
    shuffled = words[:4] + words[4:][::-1]
    other = Tokenizer(shuffled)
    assert other.vocabulary_size == tokenizers.target.vocabulary_size
    with pytest.raises(ConfigError, match="another target vocabulary of the same size"):
        model_stages.load_teacher(
            teacher_file, data_stages.Tokenizers(tokenizers.source, other), 16
        )

    # A copy without the note, away from its run: only the size can be checked (warned).
    bare = tmp_path / "bare" / "t.keras"
    bare.parent.mkdir()
    staged["teachers"].teacher.save(bare)
    assert read_note(bare) is None
    assert model_stages.load_teacher(bare, tokenizers, 16) is not None
    # ... unless a run's tokenizer/ folder sits beside it: then its fingerprint is read.
    other.save(bare.parent / "tokenizer", "source")
    other.save(bare.parent / "tokenizer", "target")
    with pytest.raises(ConfigError, match="another source vocabulary"):
        model_stages.load_teacher(bare, tokenizers, 16)

    with pytest.raises(ConfigError, match="takes sequences of at most 16 tokens.*Lower"):
        model_stages.load_teacher(teacher_file, tokenizers, 20)
    size = data_stages.Tokenizers(tokenizers.source, _FakeSize(words.__len__() + 1))
    with pytest.raises(ConfigError, match="vocabulary of .* target tokenizer has .* Load a"):
        model_stages.load_teacher(bare, size, 16)
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="not a Keras model file tf_distill can load"):
        model_stages.load_teacher(junk, tokenizers, 16)
    classifier = tmp_path / "classifier.keras"
    build_classifier(150, 2, 17, 1, 2, 8, 16).save(classifier)
    with pytest.raises(ConfigError, match="build_transformer"):
        model_stages.load_teacher(classifier, tokenizers, 16)


@dataclasses.dataclass
class _FakeSize:
    vocabulary_size: int


def test_build_model_takes_each_role_from_its_section(staged):
    config, tokenizers = staged["config"], staged["tokenizers"]
    teacher = model_stages.build_model(config, "teacher_2", tokenizers)
    student = model_stages.build_model(config, "baseline", tokenizers)
    assert teacher.name == "teacher_2" and student.name == "baseline"
    assert teacher.count_params() > student.count_params()
    assert student.outputs[0].shape[-1] == tokenizers.target.vocabulary_size


def test_teacher_cache_and_distilled_student(staged):
    config, tokenizers = staged["config"], staged["tokenizers"]
    pairs = staged["data"].splits.train
    teacher = staged["teachers"].teacher
    cache = model_stages.cache_teacher_outputs(config, teacher, pairs, tokenizers)
    assert cache["teacher_top_ids"].shape == (len(pairs), 16, 4)  # max_sequence_length, k
    np.testing.assert_allclose(cache["teacher_temperature"], 2.0)
    trained = model_stages.train_student(
        staged["ctx"], "student", tokenizers, staged["datasets"], pairs,
        staged["valid_bleu"], teacher=teacher, cache=cache,
    )  # fmt: skip
    assert trained.training == {
        "pairs": len(pairs), "epochs": 1, "steps": trained.training["steps"],
        "precision": "float32",
    }  # fmt: skip
    # The student's own cross-entropy and the combined loss were both recorded.
    assert trained.curves["ce"][0] != trained.curves["loss"][0]
    assert staged["run_dir"].model_file("student").exists()


def test_translate_with_teacher_writes_reads_back_and_refuses_empty_output(staged, monkeypatch):
    ctx, tokenizers = staged["ctx"], staged["tokenizers"]
    teacher = staged["teachers"].teacher
    sources = [s for s, _ in staged["data"].splits.valid[:6]]
    calls = []
    monkeypatch.setattr(
        model_stages, "teacher_translations",
        lambda teacher, sources, *a, **k: calls.append(k) or [f"t{i}" for i in range(len(sources))],
    )  # fmt: skip
    pairs = model_stages.translate_with_teacher(ctx, teacher, sources, tokenizers, "tr", "x")
    assert pairs == [(s, f"t{i}") for i, s in enumerate(sources)]
    assert calls[0]["batch_size"] == 256 and calls[0]["beam_size"] == 1  # the config's
    path = ctx.run_dir.translations_file("tr")
    assert path.read_text(encoding="utf-8").splitlines()[0] == f"{sources[0]}\tt0"
    resumed = dataclasses.replace(ctx, resume=True)
    assert model_stages.translate_with_teacher(resumed, teacher, [], tokenizers, "tr", "x") == pairs
    monkeypatch.setattr(model_stages, "teacher_translations", lambda *a, **k: [" "] * 6)
    with pytest.raises(DataError, match="translated none of the 6 x"):
        model_stages.translate_with_teacher(ctx, teacher, sources, tokenizers, "tr2", "x")
    assert not ctx.run_dir.translations_file("tr2").exists()


def test_evaluate_round_export_and_report(staged):
    config, run_dir, tokenizers = staged["config"], staged["run_dir"], staged["tokenizers"]
    datasets = staged["datasets"]
    teacher = staged["teachers"].teacher
    student = model_stages.build_model(config, "student", tokenizers)
    student.save(run_dir.model_file("student"))
    models = {"teacher": teacher, "student": student}
    files = {r: [run_dir.model_file(r)] for r in models}
    found = final_stages.evaluate(
        config, models, files, {"student": {"pairs": 5}}, datasets.test_set, datasets.test,
        tokenizers,
    )  # fmt: skip
    results = found.results
    assert results["evaluation"]["sources"] == 12  # evaluation.max_sentences
    assert results["teacher"]["agreement_with_teacher"] == 1.0
    assert results["student"]["pairs"] == 5 and "pairs" not in results["teacher"]
    assert results["student"]["size_bytes"] == run_dir.model_file("student").stat().st_size
    assert set(results["significance"]["student_vs_teacher"]) == {"greedy", "beam"}
    assert found.sample_sources == datasets.test_set.sources[:2]
    # Scores are sacrebleu's on the decoded test sentences.
    head = datasets.test_set.head(12)
    ids = evaluation.translate_ids(teacher, head.source_ids, 16, **tokenizers.special)
    bleu, _ = evaluation.corpus_scores(tokenizers.target.detokenize(ids), head.references)
    assert results["teacher"]["bleu"] == round(bleu, 2)

    parity_ids = datasets.test_set.source_ids[:8]  # export.parity_sentences
    before = evaluation.translate_ids(student, parity_ids, 16, **tokenizers.special)
    rounding = final_stages.round_student(config, student, datasets.test_set, tokenizers, run_dir)
    after = evaluation.translate_ids(student, parity_ids, 16, **tokenizers.special)
    from tf_distill.tflite import MIN_QUANTIZED_ELEMENTS

    big = [w for w in student.get_weights() if w.ndim >= 2 and w.size >= MIN_QUANTIZED_ELEMENTS]
    assert rounding["tensors"] == len(big)
    assert rounding["same_greedy_output"] == round(evaluation.sequence_agreement(before, after), 4)
    # Resumed: the figure measured then comes back (rounding again would measure 100%).
    again = final_stages.round_student(
        config, student, datasets.test_set, tokenizers, run_dir, resume=True
    )
    assert again == rounding
    saved = keras.saving.load_model(run_dir.model_file("student"))
    for a, b in zip(saved.get_weights(), student.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # the rounded weights were saved

    exported = final_stages.export_model(config, student, datasets.test_set, tokenizers, run_dir)
    assert set(exported["files"]) == {"keras", "saved_model"}
    assert exported["parity"]["saved_model"]["sequence_agreement"] == 1.0

    result = report.RunResult(
        results=results, data=staged["data"].summary, config=config.to_dict(),
        timings={"data": 0.1}, curves={}, export=exported,
        sample_sources=found.sample_sources, sample_references=found.sample_references,
    )  # fmt: skip
    written = report.write_report(run_dir, result)
    assert json.loads(run_dir.report_json.read_text()) == json.loads(json.dumps(written))
    assert written["ratios"]["params_vs_teacher"] == round(
        student.count_params() / teacher.count_params(), 4
    )
    text = run_dir.report_md.read_text()
    assert f"1. source: {found.sample_sources[0]}" in text
    assert run_dir.curves_png.stat().st_size > 0


def test_build_optimizer_follows_the_config(staged):
    t = dataclasses.replace(
        staged["config"].training, learning_rate=0.01, warmup_steps=10, weight_decay=0.5,
        clipnorm=2.0, cosine_final_fraction=0.1,
    )  # fmt: skip
    optimizer = training.build_optimizer(t, total_steps=100)
    schedule = optimizer._learning_rate
    assert float(schedule(0)) == pytest.approx(0.0)
    assert float(schedule(10)) == pytest.approx(0.01)  # the end of the warmup: the peak
    assert float(schedule(110)) == pytest.approx(0.001)  # the end of decay: 10% of the peak
    assert optimizer.weight_decay == 0.5 and optimizer.clipnorm == 2.0


def test_average_weights_is_kept_only_when_validation_does_not_drop():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name="d")])
    recent = [[np.ones((2, 1)), np.zeros(1)], [3 * np.ones((2, 1)), np.ones(1)]]
    model.set_weights(recent[-1])
    score = {"value": 1.0}

    def valid_bleu(m):  # scores the mean kernel
        return float(m.get_weights()[0].mean()) * score["value"]

    kept = training.average_weights("t", model, recent, valid_bleu)
    assert kept == {"epochs": 2, "valid_bleu_last": 3.0, "valid_bleu_average": 2.0, "kept": False}
    np.testing.assert_array_equal(model.get_weights()[0], recent[-1][0])  # put back
    score["value"] = -1.0  # now a lower kernel scores higher
    kept = training.average_weights("t", model, recent, valid_bleu)
    assert kept["kept"] and model.get_weights()[1] == pytest.approx([0.5])
    assert training.average_weights("t", model, recent[:1], valid_bleu) is None


def test_fit_model_resumes_from_its_epoch_checkpoint(staged, tmp_path):
    config, tokenizers, datasets = staged["config"], staged["tokenizers"], staged["datasets"]
    run_dir = RunDirectory(tmp_path)
    t = dataclasses.replace(config.training, epochs=2)

    def fit(epochs, resume):
        keras.utils.set_random_seed(7)
        model = model_stages.build_model(config, "baseline", tokenizers)
        return training.fit_model(
            "baseline", Distiller(None, model, alpha=1.0), datasets.train, datasets.valid,
            epochs=epochs, pairs=datasets.train_pairs, training=t, run_dir=run_dir,
            resume=resume, valid_bleu=lambda m: 0.0,
        )  # fmt: skip

    first = fit(1, resume=False)
    state = json.loads((run_dir.state_dir("baseline") / "state.json").read_text())
    assert state["epoch"] == 1
    run_dir.model_file("baseline").unlink()  # as if killed before the end
    second = fit(2, resume=True)
    assert second.training["epochs"] == 2  # one restored, one trained
    assert len(second.curves["loss"]) == 2 and second.curves["loss"][0] == first.curves["loss"][0]
    # The optimizer continued: its step count is two epochs', not one.
    assert second.training["steps"] == 2 * first.training["steps"]


def test_truncation_is_counted_warned_and_refused(staged, caplog):
    from tf_distill.data import Tokenizer

    tokenizer = Tokenizer(["[PAD]", "[UNK]", "[START]", "[END]", "a", "b"])
    tokenizers = data_stages.Tokenizers(tokenizer, tokenizer)
    pairs = [("a a a", "b"), ("a", "b b b"), ("a", "b"), ("a a", "b b")]
    # Length 3: the first source fits (3); the second target has no room for its end.
    found = data_stages.count_truncated(pairs, tokenizers, 3)
    assert found["source_cut"] == 0 and found["target_cut"] == 1 and found["share"] == 0.25
    assert data_stages.count_truncated(pairs, tokenizers, 2)["share"] == 0.75
    with pytest.raises(ConfigError, match=r"cuts 25\.0% .*max_truncated_share \(20%\).*Raise"):
        data_stages.check_truncation(found, 3, limit=0.2)
    with caplog.at_level("WARNING"):
        data_stages.check_truncation(found, 3, limit=0.3)
    assert "cuts 25.0% of the training pairs (0 sources, 1 targets)" in caplog.text
    assert staged["datasets"].truncation["pairs"] == len(staged["data"].splits.train)


def test_a_resumed_fit_equals_an_uninterrupted_one_bit_for_bit(staged, tmp_path, monkeypatch):
    """Killed after epoch 1 or 2 of 3 (dropout on, early stopping watching), resumed in a
    fresh model: the final weights, curves and step count equal the uninterrupted run's."""
    from tf_distill.data import make_seq2seq_dataset

    config, tokenizers, datasets = staged["config"], staged["tokenizers"], staged["datasets"]
    config = dataclasses.replace(config, teacher=dataclasses.replace(config.teacher, dropout=0.2))
    t = dataclasses.replace(config.training, epochs=3, early_stopping_patience=1)

    def fit(run_dir, resume):
        keras.utils.set_random_seed(3)
        model = model_stages.build_model(config, "teacher", tokenizers)
        train_ds = make_seq2seq_dataset(
            datasets.train_split, shuffle=True, seed=0, **datasets.options
        )
        return training.fit_model(
            "teacher", Distiller(None, model, alpha=1.0), train_ds, datasets.valid,
            epochs=3, pairs=datasets.train_pairs, training=t, run_dir=run_dir,
            resume=resume, valid_bleu=lambda m: 0.0,
        )  # fmt: skip

    whole = fit(RunDirectory(tmp_path / "whole"), False)
    real_end = training.EpochCheckpoint.on_epoch_end
    for kill_after in (0, 1, 2):  # 2: after the last epoch, before the model file

        def killing(self, epoch, logs=None, kill_after=kill_after):
            real_end(self, epoch, logs)
            if epoch == kill_after:
                raise KeyboardInterrupt  # as a kill right after the checkpoint

        run_dir = RunDirectory(tmp_path / f"killed{kill_after}")
        monkeypatch.setattr(training.EpochCheckpoint, "on_epoch_end", killing)
        with pytest.raises(KeyboardInterrupt):
            fit(run_dir, False)
        monkeypatch.setattr(training.EpochCheckpoint, "on_epoch_end", real_end)
        resumed = fit(run_dir, True)
        for a, b in zip(whole.model.get_weights(), resumed.model.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
        assert resumed.curves == whole.curves and resumed.training == whole.training


def test_distilled_student_with_feature_terms_and_init_from_the_teacher(staged, tmp_path, caplog):
    """The config's feature terms reach the Distiller (their losses in the student's log),
    the teacher's features are cached by default and train the student as the live
    teacher does, the projections are checkpointed, and init_from_teacher starts the
    student from the teacher's layers (a teacher-shaped student here, whose outputs then
    equal the teacher's)."""
    config = dataclasses.replace(
        staged["config"],
        distillation=dataclasses.replace(
            staged["config"].distillation, hidden_weight=0.5, attention_weight=1.0
        ),
    )
    tokenizers, teacher = staged["tokenizers"], staged["teachers"].teacher
    curves = {}
    for budget in (1024.0, 0.0):  # the teacher's features cached (float16), then live
        run_dir = RunDirectory(tmp_path / f"features_{budget:g}")
        run_dir.create()
        budgeted = dataclasses.replace(
            config,
            distillation=dataclasses.replace(config.distillation, feature_cache_mb=budget),
        )
        ctx = model_stages.RunContext(budgeted, run_dir, resume=False)
        caplog.clear()
        with caplog.at_level(logging.INFO):
            trained = model_stages.train_student(
                ctx, "student", tokenizers, staged["datasets"], staged["data"].splits.train,
                staged["valid_bleu"], teacher=teacher,
            )  # fmt: skip
        cached = [r.getMessage() for r in caplog.records if "MB (float16)" in r.getMessage()]
        assert bool(cached) == bool(budget)
        assert (run_dir.state_dir("student") / "extra.npz").exists()  # the projections
        curves[budget] = trained.curves
    # The same training either way, up to the cache's float16 rounding.
    np.testing.assert_allclose(curves[1024.0]["loss"], curves[0.0]["loss"], rtol=1e-2)
    np.testing.assert_allclose(curves[1024.0]["val_loss"], curves[0.0]["val_loss"], rtol=1e-2)

    wide = dataclasses.replace(
        config,
        student=dataclasses.replace(config.teacher),
        distillation=dataclasses.replace(config.distillation, init_from_teacher=True),
    )
    student = model_stages.build_model(wide, "student", tokenizers)
    distiller = model_stages.distiller_for(wide, teacher, student)
    assert distiller.feature_weights == {"hidden": 0.5, "attention": 1.0}
    x = {
        "encoder_token_ids": staged["datasets"].test_set.source_ids[:4],
        "decoder_token_ids": staged["datasets"].test_set.source_ids[:4],
    }
    np.testing.assert_array_equal(student(x).numpy(), teacher(x).numpy())

    narrow = model_stages.build_model(config, "student", tokenizers)
    init_only = dataclasses.replace(
        config,
        distillation=dataclasses.replace(staged["config"].distillation, init_from_teacher=True),
    )
    with pytest.raises(ConfigError, match="distillation: .*narrower student cannot take"):
        model_stages.distiller_for(init_only, teacher, narrow)
