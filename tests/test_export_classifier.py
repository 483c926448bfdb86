"""`export_student` on a classifier: the `classify` signature in SavedModel and TFLite."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_distill.export as export_lib
from tests.helpers import perturb_weights, random_token_ids
from tf_distill.export import export_student, tflite_op_names, tflite_runner
from tf_distill.models import build_classifier

VOCABULARY = 40
CLASSES = 3
TFLITE_FILES = ("student_fp32.tflite", "student_fp16.tflite", "student_int8.tflite")


@pytest.fixture(scope="module")
def classifier():
    """Random weights plus noise, so that the predicted labels vary across inputs."""
    keras.utils.set_random_seed(7)
    model = build_classifier(
        vocabulary_size=VOCABULARY,
        num_classes=CLASSES,
        max_sequence_length=16,
        num_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        dropout=0.0,
    )
    return perturb_weights(model, 0.5, seed=1)


@pytest.fixture(scope="module")
def token_ids():
    return random_token_ids(np.random.default_rng(2), 24, 10, VOCABULARY, min_length=2)


def keras_probabilities(model, ids):
    return tf.nn.softmax(model({"token_ids": ids}, training=False), axis=-1).numpy()


@pytest.fixture(scope="module")
def exported(tmp_path_factory, classifier, token_ids):
    out = tmp_path_factory.mktemp("classifier_run")
    metadata = export_student(classifier, out, token_ids, min_sequence_agreement=0.0)
    return out / "export", metadata


def test_classifier_export_artifacts_and_metadata(exported, token_ids, classifier):
    export, metadata = exported
    for name in ("student.keras", *TFLITE_FILES, "export.json"):
        assert (export / name).stat().st_size > 0, name
    on_disk = json.loads((export / "export.json").read_text())
    assert on_disk["task"] == "classification" and on_disk["signature"] == "classify"
    assert on_disk["num_classes"] == CLASSES
    assert on_disk["parity"]["saved_model"]["label_agreement"] == 1.0
    assert on_disk["parity"]["tflite_fp32"]["label_agreement"] == 1.0
    assert on_disk["parity"]["tflite_fp32"]["max_abs_probability_diff"] < 1e-5
    labels = keras_probabilities(classifier, token_ids).argmax(-1)
    assert len(set(labels.tolist())) > 1  # labels vary: agreement means something


def test_saved_model_classify_matches_keras(exported, classifier, token_ids):
    export, _ = exported
    loaded = tf.saved_model.load(str(export / "saved_model"))
    assert set(loaded.signatures) == {"classify"}
    got = loaded.signatures["classify"](token_ids=tf.constant(token_ids))["probabilities"]
    expected = keras_probabilities(classifier, token_ids)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(got.numpy().sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("filename", TFLITE_FILES)
def test_tflite_classify_builtin_ops_dynamic_shapes(exported, classifier, token_ids, filename):
    export, _ = exported
    content = (export / filename).read_bytes()
    ops = tflite_op_names(content)
    assert set(ops) <= export_lib.builtin_names() and "FULLY_CONNECTED" in ops
    run = tflite_runner(content, signature="classify")
    expected = keras_probabilities(classifier, token_ids)
    tolerance = 1e-5 if "fp32" in filename else 0.1
    for batch, length in ((1, 4), (5, 10)):  # the signature resizes to any batch and length
        got = run(token_ids[:batch, :length])
        assert got.shape == (batch, CLASSES)
        np.testing.assert_allclose(
            got, keras_probabilities(classifier, token_ids[:batch, :length]), atol=tolerance
        )
    assert expected.shape == (len(token_ids), CLASSES)


def test_full_int8_classifier_quantizes_activations(classifier, token_ids, tmp_path):
    metadata = export_student(
        classifier,
        tmp_path,
        token_ids,
        formats=("tflite_int8",),
        min_sequence_agreement=0.0,
        int8_mode="full",
    )
    assert metadata["int8_mode"] == "full"
    content = (tmp_path / "export" / "student_int8.tflite").read_bytes()
    ops = tflite_op_names(content)
    assert "QUANTIZE" in ops and "DEQUANTIZE" in ops  # int8 activations inside the graph
    got = tflite_runner(content, signature="classify")(token_ids)
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=0.02)  # int8 steps of 1/256
    assert 0.0 <= metadata["parity"]["tflite_int8"]["label_agreement"] <= 1.0


def test_classifier_export_errors(classifier, token_ids, tmp_path):
    with pytest.raises(ValueError, match="`int8_mode` must be one of"):
        export_student(classifier, tmp_path, token_ids, int8_mode="int4")
    assert not (tmp_path / "export.tmp").exists() and not (tmp_path / "export").exists()
