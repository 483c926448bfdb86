import keras
import numpy as np
import pytest

from tests.helpers import assert_keras_file_round_trip, random_token_ids
from tf_distill.models import build_classifier, build_transformer

V, L = 40, 12
SMALL = dict(num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32, dropout=0.0)


@pytest.fixture(scope="module")
def transformer():
    return build_transformer(V, L, num_encoder_layers=2, **SMALL)


@pytest.fixture(scope="module")
def classifier():
    return build_classifier(V, 3, L, **SMALL)


def seq2seq_batch(seed=0, batch=3, src=7, tgt=6):
    rng = np.random.default_rng(seed)
    return {
        "encoder_token_ids": random_token_ids(rng, batch, src, V, min_length=2),
        "decoder_token_ids": random_token_ids(rng, batch, tgt, V, min_length=2),
    }


def test_transformer_inputs_and_logits(transformer):
    assert sorted(t.name for t in transformer.inputs) == ["decoder_token_ids", "encoder_token_ids"]
    assert all(t.dtype == "int32" and tuple(t.shape) == (None, None) for t in transformer.inputs)
    out = transformer(seq2seq_batch())
    assert tuple(out.shape) == (3, 6, V) and out.dtype == "float32"
    # Logits, not probabilities: rows do not sum to one and take negative values.
    assert out.numpy().min() < 0
    assert len(transformer.get_layer("encoder").transformer_layers) == 2
    assert len(transformer.get_layer("decoder").transformer_layers) == 1


def test_no_future_leakage(transformer):
    inputs = seq2seq_batch(1, tgt=8)
    inputs["decoder_token_ids"][:] = np.random.default_rng(9).integers(1, V, size=(3, 8))
    base = transformer(inputs).numpy()
    for t in range(7):
        changed = {k: v.copy() for k, v in inputs.items()}
        changed["decoder_token_ids"][:, t + 1 :] = (
            changed["decoder_token_ids"][:, t + 1 :] % (V - 1)
        ) + 1
        out = transformer(changed).numpy()
        np.testing.assert_allclose(out[:, : t + 1], base[:, : t + 1], atol=1e-5)
        assert np.abs(out[:, t + 1 :] - base[:, t + 1 :]).max() > 1e-4


def test_padding_invariance(transformer, classifier):
    inputs = seq2seq_batch(2)
    real_target = (inputs["decoder_token_ids"] != 0).sum(1)
    base = transformer(inputs).numpy()
    padded = {k: np.pad(v, ((0, 0), (0, 5))) for k, v in inputs.items()}
    out = transformer(padded).numpy()
    for row, n in enumerate(real_target):
        np.testing.assert_allclose(out[row, :n], base[row, :n], atol=1e-5)
    ids = inputs["encoder_token_ids"]
    np.testing.assert_allclose(
        classifier({"token_ids": np.pad(ids, ((0, 0), (0, 4)))}),
        classifier({"token_ids": ids}),
        atol=1e-5,
    )


def test_classifier_outputs_class_logits(classifier):
    assert [t.name for t in classifier.inputs] == ["token_ids"]
    out = classifier({"token_ids": seq2seq_batch()["encoder_token_ids"]})
    assert tuple(out.shape) == (3, 3) and out.dtype == "float32"


def test_tied_embeddings_share_the_decoder_table():
    untied = build_transformer(V, L, **SMALL)
    tied = build_transformer(V, L, tie_embeddings=True, **SMALL)
    assert untied.count_params() - tied.count_params() == 16 * V + V  # Dense kernel + bias
    inputs = seq2seq_batch(3)
    decoder_embedding = tied.get_layer("decoder_embedding")
    out = tied(inputs).numpy()
    decoder_embedding.token_embeddings.assign(decoder_embedding.token_embeddings * 2.0)
    assert np.abs(tied(inputs).numpy() - out).max() > 1e-3  # the output moved with the table


def test_separate_target_vocabulary_and_sinusoidal_positions():
    model = build_transformer(
        V, L, target_vocabulary_size=25, position_embedding="sinusoidal", **SMALL
    )
    inputs = seq2seq_batch()
    inputs["decoder_token_ids"] %= 25
    assert tuple(model(inputs).shape) == (3, 6, 25)


def test_model_config_round_trip(transformer, classifier):
    for model in (transformer, classifier):
        clone = keras.Model.from_config(model.get_config())
        clone.set_weights(model.get_weights())
        inputs = (
            seq2seq_batch(4)
            if model is transformer
            else {"token_ids": seq2seq_batch(4)["encoder_token_ids"]}
        )
        np.testing.assert_array_equal(clone(inputs).numpy(), model(inputs).numpy())


def test_keras_file_round_trip_in_new_process(transformer, classifier, tmp_path):
    assert_keras_file_round_trip(transformer, seq2seq_batch(5), tmp_path / "t")
    ids = seq2seq_batch(5)["encoder_token_ids"]
    assert_keras_file_round_trip(classifier, {"token_ids": ids}, tmp_path / "c")


def test_one_fit_step_each():
    model = build_transformer(V, L, **SMALL)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    inputs = seq2seq_batch(6, batch=8)
    targets = np.roll(inputs["decoder_token_ids"], -1, axis=1)
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(inputs, targets, epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(np.abs(a - b).max() > 0 for a, b in zip(before, model.get_weights(), strict=True))

    classifier = build_classifier(V, 3, L, **SMALL)
    classifier.compile(
        optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    labels = np.array([0, 1, 2, 1, 0, 2, 1, 0])
    history = classifier.fit({"token_ids": inputs["encoder_token_ids"]}, labels, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(hidden_dim=250, num_heads=4), "`num_heads` must divide `hidden_dim`.*250"),
        (dict(dropout=1.0), r"`dropout` must be a number in \[0, 1\)"),
        (dict(dropout=-0.1), r"`dropout` must be a number in \[0, 1\)"),
        (dict(vocabulary_size=0), "`vocabulary_size` must be a positive integer"),
        (dict(num_layers=-1), "`num_layers` must be a positive integer"),
        (dict(intermediate_dim=0), "`intermediate_dim` must be a positive integer"),
        (dict(max_sequence_length=0), "`max_sequence_length` must be a positive integer"),
        (dict(hidden_dim=0), "`hidden_dim` must be a positive integer"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = dict(vocabulary_size=V, max_sequence_length=L, **SMALL)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        build_transformer(**args)
    args.pop("vocabulary_size")
    with pytest.raises(ValueError, match=match):
        build_classifier(kwargs.get("vocabulary_size", V), num_classes=2, **args)


def test_classifier_needs_two_classes():
    with pytest.raises(ValueError, match="`num_classes` must be at least 2"):
        build_classifier(V, 1, L, **SMALL)


def test_an_input_longer_than_the_model_takes_gets_a_clear_error():
    """Instead of TensorFlow's 'Expected size[0] in [0, 8], but got 12 [Op:Slice]'."""
    import numpy as np
    import pytest

    from tf_distill.models import build_transformer

    model = build_transformer(30, 8, 1, 2, 8, 16)
    long_source = {
        "encoder_token_ids": np.ones((1, 12), "int32"),
        "decoder_token_ids": np.ones((1, 5), "int32"),
    }
    with pytest.raises(
        ValueError, match=r"has 12 positions, but `encoder_embedding` takes at most 8"
    ):
        model(long_source)
    fits = {
        "encoder_token_ids": np.ones((1, 8), "int32"),
        "decoder_token_ids": np.ones((1, 8), "int32"),
    }
    assert model(fits).shape == (1, 8, 30)


@pytest.mark.parametrize("kind", ["transformer", "classifier"])
def test_float32_copy_of_a_mixed_precision_model(kind):
    """What a run keeps of a model trained in bf16: every layer in float32, the same
    weights, the outputs of a float32 model built alike."""
    from tf_distill.training import float32_copy

    def build(dtype):
        keras.utils.set_random_seed(3)
        if kind == "transformer":
            return build_transformer(40, 10, 2, 2, 16, 32, dtype=dtype, name="m")
        return build_classifier(40, 3, 10, 2, 2, 16, 32, dtype=dtype, name="m")

    mixed, reference = build("mixed_bfloat16"), build(None)
    copy = float32_copy(mixed)
    assert {layer.dtype_policy.name for layer in copy._flatten_layers()} == {"float32"}
    assert "mixed_bfloat16" in {layer.dtype_policy.name for layer in mixed._flatten_layers()}
    assert copy.name == "m"
    for a, b in zip(copy.get_weights(), mixed.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    reference.set_weights(mixed.get_weights())
    ids = np.array([[5, 6, 7, 2, 0], [9, 3, 0, 0, 0]], "int32")
    x = {"token_ids": ids}
    if kind == "transformer":
        x = {"encoder_token_ids": ids, "decoder_token_ids": ids}
    np.testing.assert_allclose(copy(x).numpy(), reference(x).numpy(), atol=1e-6)
    assert float32_copy(reference) is reference
