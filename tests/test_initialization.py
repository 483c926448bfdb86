"""Students initialised from the teacher's layers (tf_distill.initialization)."""

import numpy as np
import pytest

from tests.helpers import random_token_ids
from tests.test_distiller import seq2seq_data
from tf_distill.initialization import every_kth_layers, init_from_teacher
from tf_distill.models import build_classifier, build_transformer

V, L = 30, 12


def _layer_weights(model, stack, index):
    return model.get_layer(stack).transformer_layers[index].get_weights()


@pytest.mark.parametrize("tie", [False, True])
def test_a_student_keeping_every_layer_reproduces_the_teacher(tie):
    teacher = build_transformer(V, L, 3, 2, 16, 32, dropout=0.0, tie_embeddings=tie, name="t")
    student = build_transformer(V, L, 3, 2, 16, 32, dropout=0.0, tie_embeddings=tie, name="s")
    x, _ = seq2seq_data(0)
    assert not np.allclose(student(x).numpy(), teacher(x).numpy())
    chosen = init_from_teacher(teacher, student)
    assert chosen == {"encoder": [0, 1, 2], "decoder": [0, 1, 2]}
    np.testing.assert_array_equal(student(x).numpy(), teacher(x).numpy())


def test_a_classifier_keeping_every_layer_reproduces_the_teacher():
    teacher = build_classifier(V, 3, L, 2, 2, 16, 32, name="ct")
    student = build_classifier(V, 3, L, 2, 2, 16, 32, name="cs")
    ids = {"token_ids": random_token_ids(np.random.default_rng(0), 4, 9, V, min_length=2)}
    init_from_teacher(teacher, student)
    np.testing.assert_array_equal(student(ids).numpy(), teacher(ids).numpy())


def test_every_kth_and_explicit_layers_are_the_ones_copied():
    assert every_kth_layers(3, 6) == [0, 2, 4]
    assert every_kth_layers(1, 3) == [0]
    assert every_kth_layers(2, 3) == [0, 1]
    assert every_kth_layers(2, 2) == [0, 1]
    teacher = build_transformer(V, L, 4, 2, 16, 32, name="deep")
    student = build_transformer(
        V, L, 2, 2, 16, 32, num_decoder_layers=1, name="shallow", tie_embeddings=False
    )
    chosen = init_from_teacher(teacher, student, {"decoder": [3]})
    assert chosen == {"encoder": [0, 2], "decoder": [3]}
    for s_index, t_index in enumerate(chosen["encoder"]):
        for a, b in zip(
            _layer_weights(student, "encoder", s_index),
            _layer_weights(teacher, "encoder", t_index),
            strict=True,
        ):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(
        _layer_weights(student, "decoder", 0), _layer_weights(teacher, "decoder", 3), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    for name in ("encoder_embedding", "decoder_embedding", "output_projection"):
        for a, b in zip(
            student.get_layer(name).get_weights(),
            teacher.get_layer(name).get_weights(),
            strict=True,
        ):
            np.testing.assert_array_equal(a, b)


def test_a_narrower_or_deeper_student_is_refused_not_approximated():
    teacher = build_transformer(V, L, 2, 2, 16, 32, name="teacher16")
    narrow = build_transformer(V, L, 1, 2, 8, 32, name="narrow")
    with pytest.raises(ValueError, match="narrower student cannot take"):
        init_from_teacher(teacher, narrow)
    deeper = build_transformer(V, L, 3, 2, 16, 32, name="deeper")
    with pytest.raises(ValueError, match="more than the teacher's"):
        init_from_teacher(teacher, deeper)
    tied = build_transformer(V, L, 1, 2, 16, 32, tie_embeddings=True, name="tied")
    with pytest.raises(ValueError, match="tie_embeddings"):
        init_from_teacher(teacher, tied)
    same = build_transformer(V, L, 1, 2, 16, 32, name="same")
    with pytest.raises(ValueError, match="from 0 to 1"):
        init_from_teacher(teacher, same, {"encoder": [2]})
    with pytest.raises(ValueError, match="stacks"):
        init_from_teacher(teacher, same, {"middle": [0]})
