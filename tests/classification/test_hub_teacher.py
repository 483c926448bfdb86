"""A keras-hub BERT teacher with a tokenizer of its own, distilled into a tf_distill
classifier with another vocabulary: each batch carries both id sets."""

import keras
import numpy as np
import pytest

from tests.test_losses import numpy_reference
from tf_distill import Distiller, hub_teacher
from tf_distill.data import Tokenizer, make_classification_dataset
from tf_distill.models import build_classifier

TEXTS = [
    "win a free prize now",
    "see you at six",
    "call now to claim your cash",
    "are we still on for lunch",
    "free entry text win",
    "ok thanks see you",
] * 4
LABELS = [1, 0, 1, 0, 1, 0] * 4


@pytest.fixture(scope="module")
def setup():
    keras.utils.set_random_seed(0)
    vocabulary = hub_teacher.bert_vocabulary(TEXTS, 80)
    preprocessor = hub_teacher.bert_preprocessor(vocabulary, sequence_length=12)
    teacher = hub_teacher.build_bert_teacher(preprocessor, 2, 1, 2, 16, 32, 0.0)
    tokenizer = Tokenizer.train(TEXTS, 60)
    student = build_classifier(tokenizer.vocabulary_size, 2, 10, 1, 2, 8, 16, dropout=0.0)
    return teacher, preprocessor, tokenizer, student


def test_teacher_inputs_are_bert_packed_ids(setup):
    teacher, preprocessor, _, _ = setup
    inputs = hub_teacher.teacher_inputs(preprocessor, TEXTS[:3], batch_size=2)
    assert sorted(inputs) == ["padding_mask", "segment_ids", "token_ids"]
    assert inputs["token_ids"].shape == (3, 12)
    cls, sep = (preprocessor.tokenizer.token_to_id(t) for t in ("[CLS]", "[SEP]"))
    for row, mask in zip(inputs["token_ids"], inputs["padding_mask"], strict=True):
        real = row[mask.astype(bool)]
        assert real[0] == cls and real[-1] == sep
        assert not row[~mask.astype(bool)].any()  # pads are 0
    assert hub_teacher.is_hub_model(teacher)


def test_each_model_reads_its_own_ids_and_the_loss_matches_numpy(setup):
    teacher, preprocessor, tokenizer, student = setup
    teacher_inputs = hub_teacher.teacher_inputs(preprocessor, TEXTS)
    dataset = make_classification_dataset(
        TEXTS, LABELS, tokenizer, batch_size=8, max_sequence_length=10, shuffle=False,
        bucket_lengths=[4, 10], teacher_inputs=teacher_inputs,
    )  # fmt: skip
    x, y = next(iter(dataset))
    assert sorted(x) == ["teacher_inputs", "token_ids"]
    assert x["teacher_inputs"]["token_ids"].shape[1] == 12  # not cut to the student's bucket
    distiller = Distiller(teacher, student, alpha=0.4, temperature=2.0)
    distiller.compile(optimizer="adam")
    result = distiller.evaluate(dataset, verbose=0, return_dict=True)
    ids = tokenizer.encode_batch(TEXTS, max_length=10)
    zs = student({"token_ids": ids}, training=False).numpy()
    zt = teacher(teacher_inputs, training=False).numpy()
    want = numpy_reference(np.asarray(LABELS), zs, zt, 0.4, 2.0, pad=-1)
    np.testing.assert_allclose(
        [result["loss"], result["student_loss"], result["distillation_loss"]], want, rtol=1e-4
    )
    before = [w.copy() for w in teacher.get_weights()]
    distiller.fit(dataset, epochs=1, verbose=0)
    for a, b in zip(before, teacher.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # the teacher stays frozen


def test_a_float32_hub_teacher_is_kept_as_it_is(setup):
    """Its preprocessor's int32 / string layers are not a mixed policy: the run keeps the
    keras-hub model itself (a clone would lose its backbone and preprocessor)."""
    from tf_distill.training import float32_copy, model_precision

    teacher = setup[0]
    assert model_precision(teacher) == "float32"
    assert float32_copy(teacher) is teacher
