"""Classification stages one at a time: the student's ids, the teacher's cached class
probabilities (against NumPy), and a Distiller trained from them against the live teacher."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.test_losses import log_softmax
from tf_distill import Distiller
from tf_distill import config as config_lib
from tf_distill.data import Tokenizer
from tf_distill.data.labelled import LabelledTexts
from tf_distill.data.synthetic_reviews import generate_reviews
from tf_distill.distiller import TEACHER_TOP_IDS, TEACHER_TOP_LOG_PROBS
from tf_distill.pipeline import classification as stages

TEXTS, LABELS = generate_reviews(120, seed=4)


@pytest.fixture(scope="module")
def parts():
    tokenizer = Tokenizer.train(TEXTS, 150)
    tokenizers = stages.Tokenizers(tokenizer, None)
    split = stages.make_split(LabelledTexts(TEXTS, LABELS, ["n", "m", "p"]), tokenizers, 20)
    config = config_lib.from_dict({"task": "classification", "distillation": {"teacher_top_k": 3}})
    keras.utils.set_random_seed(1)
    teacher = stages.build_student(config, "teacher", tokenizers, 3)
    return config, tokenizers, split, teacher


def test_make_split_cuts_to_the_length_and_counts_what_it_cut():
    tokenizer = Tokenizer.train(TEXTS, 150)
    texts = ["the food was good", "", " ".join(["the food was good"] * 10)]
    split = stages.make_split(
        LabelledTexts(texts, [0, 1, 2], ["a", "b", "c"]), stages.Tokenizers(tokenizer, None), 8
    )
    assert split.token_ids.shape == (3, 8)
    assert split.truncated == 1
    assert list(split.token_ids[1]) == [tokenizer.unk_id] + [0] * 7  # an empty text: one [UNK]
    ids = tokenizer.tokenize(texts[0])
    assert list(split.token_ids[0, : len(ids)]) == ids and not split.token_ids[0, len(ids) :].any()
    assert split.teacher_inputs is None


def test_cached_class_log_probabilities_are_the_teachers_at_temperature(parts):
    config, _, split, teacher = parts
    config.distillation.temperature = 2.5
    ctx = stages.Context(config, None)
    columns = stages.teacher_columns(ctx, teacher, split)
    logits = teacher.predict({"token_ids": split.token_ids}, verbose=0).astype("float64")
    np.testing.assert_allclose(
        columns[TEACHER_TOP_LOG_PROBS], log_softmax(logits / 2.5), rtol=1e-5, atol=1e-6
    )
    assert (columns[TEACHER_TOP_IDS] == np.arange(3)).all()
    config.distillation.teacher_top_k = None  # live: a shared tokenizer needs no columns
    assert stages.teacher_columns(ctx, teacher, split) is None
    config.distillation.teacher_top_k = 3


def test_a_student_trained_on_the_cache_trains_as_with_the_live_teacher(parts):
    config, tokenizers, split, teacher = parts
    config.distillation.temperature = 2.0
    columns = stages.teacher_columns(stages.Context(config, None), teacher, split)
    losses = []
    for cached in (True, False):
        keras.utils.set_random_seed(2)
        student = stages.build_student(config, "student", tokenizers, 3)
        x = {"token_ids": split.token_ids, **(columns if cached else {})}
        dataset = tf.data.Dataset.from_tensor_slices((x, split.labels)).batch(40)
        distiller = Distiller(teacher, student, alpha=0.3, temperature=2.0)
        distiller.compile(optimizer=keras.optimizers.SGD(0.1))
        history = distiller.fit(dataset, epochs=2, verbose=0, shuffle=False)
        losses.append(history.history["distillation_loss"] + [student.get_weights()[0]])
    np.testing.assert_allclose(losses[0][:2], losses[1][:2], rtol=1e-4)
    np.testing.assert_allclose(losses[0][2], losses[1][2], rtol=1e-4, atol=1e-6)


def test_a_loaded_teacher_is_checked_against_the_run(parts, tmp_path):
    import json

    from tf_distill.errors import ConfigError
    from tf_distill.models import build_transformer

    config, tokenizers, split, teacher = parts
    path = tmp_path / "teacher.keras"
    teacher.save(path)
    folder = tmp_path / "tokenizer"
    tokenizers.student.save(folder, "source")
    (folder / stages.LABELS_FILE).write_text(json.dumps({"label_names": ["n", "m", "p"]}))
    training = config.training
    loaded = stages.load_teacher(path, tokenizers, ["n", "m", "p"], training)
    ids = {"token_ids": split.token_ids[:5]}
    np.testing.assert_array_equal(loaded.model(ids).numpy(), teacher(ids).numpy())

    with pytest.raises(ConfigError, match=r"its labels are \['n', 'm', 'p'\]"):
        stages.load_teacher(path, tokenizers, ["p", "m", "n"], training)
    with pytest.raises(ConfigError, match="predicts 3 classes, this run has 2"):
        stages.load_teacher(path, tokenizers, ["a", "b"], training)
    other = stages.Tokenizers(Tokenizer.train(TEXTS[:60], 150), None)
    with pytest.raises(ConfigError, match="another vocabulary|vocabulary has"):
        stages.load_teacher(path, other, ["n", "m", "p"], training)
    seq2seq = tmp_path / "seq2seq.keras"
    build_transformer(150, 20, 1, 2, 8, 16).save(seq2seq)
    with pytest.raises(ConfigError, match="not a classifier built by tf_distill"):
        stages.load_teacher(seq2seq, tokenizers, ["n", "m", "p"], training)
    (tmp_path / "junk.keras").write_text("not a model")
    with pytest.raises(ConfigError, match="not a Keras model file"):
        stages.load_teacher(tmp_path / "junk.keras", tokenizers, ["n", "m", "p"], training)


def test_a_loaded_teacher_too_short_or_without_its_tokenizer(parts, tmp_path, caplog):
    import dataclasses

    from tf_distill.errors import ConfigError

    config, tokenizers, split, teacher = parts
    path = tmp_path / "teacher.keras"  # no tokenizer/ beside it
    teacher.save(path)
    with caplog.at_level("WARNING"):
        stages.load_teacher(path, tokenizers, ["n", "m", "p"], config.training)
    assert "has no tokenizer/ beside it" in caplog.text
    longer = dataclasses.replace(config.training, max_sequence_length=64)
    with pytest.raises(ConfigError, match="takes at most 32 tokens"):
        stages.load_teacher(path, tokenizers, ["n", "m", "p"], longer)
