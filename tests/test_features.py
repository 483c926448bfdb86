"""Feature distillation: the features a model exposes, each loss term against NumPy, and
the Distiller's terms (masking, projection, layer map) against a NumPy assembly."""

import keras
import numpy as np
import pytest

from tests.helpers import random_token_ids
from tests.test_distiller import seq2seq_data
from tf_distill import Distiller, losses
from tf_distill.features import model_features, resolve_layer_map, uniform_layer_map
from tf_distill.models import build_classifier, build_transformer
from tf_distill.training import EpochCheckpoint

V, L = 30, 12


@pytest.fixture(scope="module")
def pair():
    keras.utils.set_random_seed(0)
    teacher = build_transformer(V, L, 3, 4, 32, 64, dropout=0.2, name="feature_teacher")
    student = build_transformer(
        V, L, 1, 2, 16, 32, dropout=0.0, num_encoder_layers=2, name="feature_student"
    )
    return teacher, student


def np_softmax(z, axis=-1):
    z = z - z.max(axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis, keepdims=True)


def np_layer_norm(x, norm):
    gamma, beta = (w.numpy() for w in norm.weights)
    mean = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + norm.epsilon) * gamma + beta


@pytest.mark.parametrize("tie", [False, True])
def test_features_come_from_the_models_own_forward_pass(tie):
    model = build_transformer(V, L, 2, 2, 16, 32, dropout=0.1, tie_embeddings=tie)
    x, _ = seq2seq_data(3)
    logits, stacks = model_features(model, x)
    np.testing.assert_allclose(logits.numpy(), model(x, training=False).numpy(), atol=1e-6)
    encoder, decoder = stacks["encoder"], stacks["decoder"]
    assert len(encoder.hidden) == 3 and len(encoder.self_attention) == 2
    assert encoder.cross_attention == [] and len(decoder.cross_attention) == 2
    source_real = x["encoder_token_ids"] != 0
    np.testing.assert_array_equal(encoder.mask.numpy(), source_real.astype("float32"))
    for probs in encoder.self_attention + decoder.cross_attention:
        probs = probs.numpy()  # (B, N, T, S): rows sum to 1 over real keys, 0 on pads
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
        assert np.all(probs * ~source_real[:, None, None, :] == 0)
    for probs in decoder.self_attention:  # causal: no weight above the diagonal
        upper = np.triu(np.ones(probs.shape[-2:], bool), 1)
        assert np.all(probs.numpy()[..., upper] == 0)
    # Without the logits: the same features, and no output layer.
    none, again = model_features(model, x, logits=False)
    assert none is None
    for name in ("encoder", "decoder"):
        for a, b in zip(stacks[name].hidden, again[name].hidden, strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_encoder_attention_and_values_match_numpy():
    model = build_transformer(V, L, 1, 2, 16, 32, dropout=0.0)
    x, _ = seq2seq_data(4)
    _, stacks = model_features(model, x)
    encoder = stacks["encoder"]
    layer = model.get_layer("encoder").transformer_layers[0]
    normed = np_layer_norm(encoder.hidden[0].numpy(), layer.self_attention_norm)
    mha = layer.self_attention

    def project(dense):
        kernel, bias = (w.numpy() for w in dense.weights)
        return np.einsum("bsd,dnh->bsnh", normed, kernel) + bias

    q, k, v = project(mha.query_dense), project(mha.key_dense), project(mha.value_dense)
    scores = np.einsum("btnh,bsnh->bnts", q, k) / np.sqrt(q.shape[-1])
    real = x["encoder_token_ids"] != 0
    scores = np.where(real[:, None, None, :], scores, -np.inf)
    np.testing.assert_allclose(encoder.self_attention[0].numpy(), np_softmax(scores), atol=1e-5)
    np.testing.assert_allclose(encoder.self_values[0].numpy(), v, atol=1e-5)


def test_classifier_features():
    model = build_classifier(V, 3, L, 2, 2, 16, 32)
    ids = random_token_ids(np.random.default_rng(0), 5, 8, V, min_length=2)
    logits, stacks = model_features(model, {"token_ids": ids})
    np.testing.assert_allclose(logits.numpy(), model({"token_ids": ids}).numpy(), atol=1e-6)
    assert list(stacks) == ["encoder"] and len(stacks["encoder"].hidden) == 3


def test_model_features_refuses_other_models():
    inputs = keras.Input((None,), dtype="int32")
    other = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Embedding(10, 4)(inputs)))
    with pytest.raises(ValueError, match="build_transformer"):
        model_features(other, {"token_ids": np.ones((1, 3), "int32")})


def test_hidden_state_distances_match_numpy():
    rng = np.random.default_rng(0)
    s, t = rng.normal(size=(2, 2, 3, 5)).astype("float32")
    mse = losses.hidden_state_per_position(s, t, "mse").numpy()
    np.testing.assert_allclose(mse, ((s - t) ** 2).mean(-1), rtol=1e-6)
    cosine = losses.hidden_state_per_position(s, t, "cosine").numpy()
    want = 1 - (s * t).sum(-1) / np.linalg.norm(s, axis=-1) / np.linalg.norm(t, axis=-1)
    np.testing.assert_allclose(cosine, want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="mse"):
        losses.hidden_state_per_position(s, t, "l1")


def masked_probs(rng, shape, real_keys):
    z = rng.normal(size=shape) * 2
    z = np.where(real_keys, z, -np.inf)
    return np_softmax(z).astype("float32")


def np_kl(p, q):
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0)
    return terms.sum(-1)


@pytest.mark.parametrize("student_heads", [4, 2])
def test_attention_kl_matches_numpy(student_heads):
    rng = np.random.default_rng(student_heads)
    real = np.ones((2, 1, 1, 6), bool)
    real[0, ..., 4:] = False  # two padded keys in the first sequence
    teacher = masked_probs(rng, (2, 4, 5, 6), real)
    student = masked_probs(rng, (2, student_heads, 5, 6), real)
    got = losses.attention_kl_per_query(teacher, student).numpy()
    if student_heads == 4:
        want = np_kl(teacher, student).mean(1)
    else:  # heads averaged first
        want = np_kl(teacher.mean(1), student.mean(1))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(losses.attention_kl_per_query(teacher, teacher), 0, atol=1e-6)


def test_value_relation_matches_numpy():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(2, 5, 3, 4)).astype("float32")  # (B, S, N, H)
    key_mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    got = losses.value_relation(values, key_mask).numpy()
    scores = np.einsum("bsnh,btnh->bnst", values, values) / 2.0  # sqrt(H) = 2
    scores = np.where(key_mask[:, None, None, :], scores, -np.inf)
    np.testing.assert_allclose(got, np_softmax(scores), atol=1e-6)


def test_uniform_and_explicit_layer_maps():
    assert uniform_layer_map(2, 6) == [3, 6]
    assert uniform_layer_map(2, 3) == [2, 3]
    assert uniform_layer_map(3, 3) == [1, 2, 3]
    assert uniform_layer_map(2, 1) == [1, 1]
    shapes = {"encoder": (2, 16, 2), "decoder": (1, 16, 2)}
    teacher = {"encoder": (3, 32, 4), "decoder": (3, 32, 4)}
    assert resolve_layer_map(None, shapes, teacher) == {"encoder": [2, 3], "decoder": [3]}
    assert resolve_layer_map({"encoder": [1, 1]}, shapes, teacher)["encoder"] == [1, 1]
    for bad in ({"encoder": [1]}, {"encoder": [0, 3]}, {"decoder": [4]}, {"middle": [1]}):
        with pytest.raises(ValueError, match="layer"):
            resolve_layer_map(bad, shapes, teacher)


def numpy_feature_terms(distiller, x):
    """The Distiller's three feature terms, assembled in NumPy from both models' features:
    uniform layer map, projections of the student's states, masks over padding."""
    teacher, student = distiller.teachers[0], distiller.student
    _, t_stacks = model_features(teacher, x)
    _, s_stacks = model_features(student, x)
    sums = {"hidden": 0.0, "attention": 0.0, "value": 0.0}
    counts = dict.fromkeys(sums, 0.0)
    for stack, mapped in distiller.layer_map.items():
        s, t = s_stacks[stack], t_stacks[stack]
        mask = s.mask.numpy()
        for m, g in [(0, 0)] + [(i + 1, g) for i, g in enumerate(mapped)]:
            h = s.hidden[m].numpy()
            projection = distiller.projections[distiller._projection_index[(stack, m)]]
            kernel, bias = (w.numpy() for w in projection.weights)
            diff = h @ kernel + bias - t.hidden[g].numpy()
            sums["hidden"] += ((diff**2).mean(-1) * mask).sum()
            counts["hidden"] += mask.sum()
        for m, g in enumerate(mapped):
            pairs = [(t.self_attention[g - 1], s.self_attention[m])]
            if s.cross_attention:
                pairs.append((t.cross_attention[g - 1], s.cross_attention[m]))
            for tp, sp in pairs:  # 4 teacher heads, 2 student heads: the means compared
                kl = np_kl(tp.numpy().mean(1), sp.numpy().mean(1))
                sums["attention"] += (kl * mask).sum()
                counts["attention"] += mask.sum()
            relations = []
            for values, key_mask in ((t.self_values[g - 1], t.mask), (s.self_values[m], mask)):
                v = values.numpy()
                z = np.einsum("bsnh,btnh->bnst", v, v) / np.sqrt(v.shape[-1])
                z = np.where(np.asarray(key_mask, bool)[:, None, None, :], z, -np.inf)
                relations.append(np_softmax(z).mean(1))
            sums["value"] += (np_kl(*relations) * mask).sum()
            counts["value"] += mask.sum()
    return {k: sums[k] / counts[k] for k in sums}


def test_distiller_feature_terms_match_numpy(pair):
    teacher, student = pair
    weights = {"hidden": 0.5, "attention": 0.3, "value": 0.2}
    distiller = Distiller(
        teacher,
        student,
        alpha=0.4,
        temperature=2.0,
        **{f"{k}_weight": w for k, w in weights.items()},
    )
    assert distiller.layer_map == {"encoder": [2, 3], "decoder": [3]}
    # One projection per mapped student state (embeddings + layers): 3 encoder, 2 decoder.
    assert len(distiller.projections) == 5
    distiller.compile(optimizer="sgd")
    x, y = seq2seq_data(5)
    result = distiller.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    want = numpy_feature_terms(distiller, x)
    for name in weights:
        np.testing.assert_allclose(result[f"{name}_loss"], want[name], rtol=2e-4)
    logit_only = Distiller(teacher, student, alpha=0.4, temperature=2.0)
    logit_only.compile(optimizer="sgd")
    base = logit_only.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    total = base["loss"] + sum(w * want[k] for k, w in weights.items())
    np.testing.assert_allclose(result["loss"], total, rtol=2e-4)
    # Appending pads changes nothing.
    x_pad = {k: np.pad(v, ((0, 0), (0, 3))) for k, v in x.items()}
    padded = distiller.evaluate(
        x_pad, np.pad(y, ((0, 0), (0, 3))), batch_size=8, verbose=0, return_dict=True
    )
    for key in ("loss", "hidden_loss", "attention_loss", "value_loss"):
        np.testing.assert_allclose(padded[key], result[key], rtol=1e-5)


def test_feature_terms_train_the_student_and_projections_not_the_teacher():
    keras.utils.set_random_seed(2)
    teacher = build_transformer(V, L, 2, 2, 32, 64, dropout=0.0)
    student = build_transformer(V, L, 1, 2, 16, 32, dropout=0.0)
    distiller = Distiller(teacher, student, hidden_weight=1.0, attention_weight=1.0)
    teacher_before = [w.copy() for w in teacher.get_weights()]
    projections_before = [v.numpy().copy() for v in distiller.distillation_variables]
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2))
    x, y = seq2seq_data(6, batch=32)
    history = distiller.fit(x, y, batch_size=8, epochs=4, verbose=0).history
    assert history["hidden_loss"][-1] < 0.7 * history["hidden_loss"][0]
    assert history["attention_loss"][-1] < history["attention_loss"][0]
    for before, after in zip(teacher_before, teacher.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    changed = [
        not np.allclose(b, v.numpy())
        for b, v in zip(projections_before, distiller.distillation_variables, strict=True)
    ]
    assert all(changed)


def test_classifier_feature_distillation_runs():
    teacher = build_classifier(V, 3, L, 2, 4, 32, 64, dropout=0.0)
    student = build_classifier(V, 3, L, 1, 2, 16, 32, dropout=0.0)
    distiller = Distiller(teacher, student, hidden_weight=0.1, value_weight=1.0)
    assert distiller.layer_map == {"encoder": [2]}
    distiller.compile(optimizer="adam")
    ids = random_token_ids(np.random.default_rng(1), 16, 8, V, min_length=2)
    labels = np.arange(16) % 3
    history = distiller.fit({"token_ids": ids}, labels, batch_size=8, epochs=1, verbose=0)
    assert {"hidden_loss", "value_loss", "accuracy"} <= set(history.history)


def test_feature_distillation_refuses_what_it_cannot_compare(pair):
    teacher, student = pair
    with pytest.raises(ValueError, match="exactly one teacher"):
        other = build_transformer(V, L, 1, 2, 16, 32, name="second_teacher")
        Distiller([teacher, other], student, attention_weight=1.0)
    classifier = build_classifier(V, V, L, 1, 2, 16, 32)
    with pytest.raises(ValueError, match="one kind|class logits|rank"):
        Distiller(teacher, classifier, hidden_weight=1.0)
    with pytest.raises(ValueError, match="no feature term"):
        Distiller(teacher, student, layer_map={"encoder": [1, 2]})
    with pytest.raises(ValueError, match="hidden_weight"):
        Distiller(teacher, student, hidden_weight=-1.0)
    with pytest.raises(ValueError, match="hidden_loss"):
        Distiller(teacher, student, hidden_weight=1.0, hidden_loss="l2")
    distiller = Distiller(teacher, student, hidden_weight=1.0)
    distiller.compile(optimizer="sgd")
    x, y = seq2seq_data(7)
    x["teacher_inputs"] = dict(x)
    with pytest.raises(ValueError, match="same token ids"):
        distiller.evaluate(x, y, verbose=0)


def test_config_round_trip_keeps_the_feature_settings(pair):
    teacher, student = pair
    distiller = Distiller(
        teacher,
        student,
        attention_weight=0.5,
        hidden_weight=0.1,
        hidden_loss="cosine",
        layer_map={"encoder": [1, 3]},
    )
    config = distiller.get_config()
    assert config["layer_map"] == {"encoder": [1, 3], "decoder": [3]}
    rebuilt = Distiller.from_config(config)
    assert rebuilt.layer_map == distiller.layer_map
    assert rebuilt.feature_weights == {"hidden": 0.1, "attention": 0.5}
    assert rebuilt.hidden_loss == "cosine"


def test_epoch_checkpoint_keeps_the_projections(pair, tmp_path):
    teacher, _ = pair
    keras.utils.set_random_seed(3)
    student = build_transformer(V, L, 1, 2, 16, 32, dropout=0.0, name="checkpointed")
    x, y = seq2seq_data(8, batch=16)

    def trainer():
        distiller = Distiller(teacher, student, hidden_weight=1.0)
        optimizer = keras.optimizers.Adam(1e-2)
        distiller.compile(optimizer=optimizer)
        checkpoint = EpochCheckpoint(
            "student",
            student,
            optimizer,
            tmp_path / "state",
            lambda model: 0.0,
            extra_variables=distiller.distillation_variables,
        )
        return distiller, optimizer, checkpoint

    distiller, optimizer, checkpoint = trainer()
    distiller.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[checkpoint])
    saved = [v.numpy().copy() for v in distiller.distillation_variables]
    moments = [v.numpy().copy() for v in optimizer.variables]
    resumed, resumed_optimizer, resumed_checkpoint = trainer()
    assert resumed_checkpoint.restore() == 1
    for a, b in zip(saved, resumed.distillation_variables, strict=True):
        np.testing.assert_array_equal(a, b.numpy())
    assert len(resumed_optimizer.variables) == len(moments)
    for a, b in zip(moments, resumed_optimizer.variables, strict=True):
        np.testing.assert_array_equal(a, b.numpy())


def test_feature_terms_with_a_mixed_precision_student():
    keras.utils.set_random_seed(7)
    teacher = build_transformer(V, L, 2, 2, 32, 64)
    student = build_transformer(V, L, 1, 2, 16, 32, dtype="mixed_float16")
    distiller = Distiller(
        teacher, student, hidden_weight=0.1, attention_weight=1.0, value_weight=1.0
    )
    distiller.compile(optimizer=keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam()))
    history = distiller.fit(*seq2seq_data(7), epochs=2, verbose=0).history
    for key in ("loss", "hidden_loss", "attention_loss", "value_loss"):
        assert all(np.isfinite(v) for v in history[key]), key
