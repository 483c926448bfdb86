import keras
import numpy as np
import pytest

from tests.helpers import assert_config_round_trip
from tf_distill.layers import (
    Decoder,
    DecoderLayer,
    Encoder,
    EncoderLayer,
    FeedForward,
    PositionalEmbedding,
    SequencePooling,
    sinusoidal_table,
)

D = 16


def test_sinusoidal_table_matches_the_paper_formula():
    table = sinusoidal_table(10, 8)
    pos, i = 7, 3  # column 2i = 6 is sin, 2i + 1 = 7 is cos of the same angle
    angle = pos / 10000 ** (2 * i / 8)
    np.testing.assert_allclose(table[pos, 6], np.sin(angle), rtol=1e-6)
    np.testing.assert_allclose(table[pos, 7], np.cos(angle), rtol=1e-6)


@pytest.mark.parametrize("kind", ["learned", "sinusoidal"])
def test_positional_embedding_is_scaled_tokens_plus_positions(kind):
    layer = PositionalEmbedding(20, 12, D, position_embedding=kind)
    ids = np.array([[3, 5, 0, 0]])
    out = layer(ids).numpy()
    tokens = layer.token_embeddings.numpy()
    positions = np.asarray(layer.position_embeddings)
    np.testing.assert_allclose(out[0], tokens[ids[0]] * np.sqrt(D) + positions[:4], atol=1e-5)
    # start_index shifts the positions (incremental decoding).
    shifted = layer(ids[:, 1:2], start_index=5).numpy()
    np.testing.assert_allclose(shifted[0, 0], tokens[5] * np.sqrt(D) + positions[5], atol=1e-5)
    # reverse=True maps states to logits with the transposed token matrix.
    states = np.random.default_rng(0).normal(size=(2, 3, D)).astype("float32")
    np.testing.assert_allclose(layer(states, reverse=True), states @ tokens.T, atol=1e-4)
    assert_config_round_trip(layer)


def test_feed_forward_matches_numpy():
    layer = FeedForward(D, 32, activation="relu")
    x = np.random.default_rng(1).normal(size=(2, 3, D)).astype("float32")
    out = layer(x).numpy()
    w1, b1, w2, b2 = layer.get_weights()
    np.testing.assert_allclose(out, np.maximum(x @ w1 + b1, 0) @ w2 + b2, atol=1e-5)
    assert_config_round_trip(layer)


def test_masked_mean_pooling_ignores_pads():
    x = np.arange(12, dtype="float32").reshape(1, 4, 3)
    pooled = SequencePooling("mean")(x, padding_mask=np.array([[True, True, False, False]]))
    np.testing.assert_allclose(pooled, x[:, :2].mean(1))
    np.testing.assert_allclose(SequencePooling("first")(x), x[:, 0])


@pytest.mark.parametrize("normalize_first", [True, False])
def test_encoder_layer_residual_structure(normalize_first):
    """With the attention and feed-forward zeroed out, a block is the identity (pre-norm) or
    a LayerNorm of its input (post-norm): the residual wraps every block."""
    layer = EncoderLayer(D, 4, 32, normalize_first=normalize_first)
    x = np.random.default_rng(2).normal(size=(2, 5, D)).astype("float32")
    layer(x)
    layer.self_attention.output_dense.set_weights(
        [np.zeros_like(w) for w in layer.self_attention.output_dense.get_weights()]
    )
    layer.feed_forward.output_dense.set_weights(
        [np.zeros_like(w) for w in layer.feed_forward.output_dense.get_weights()]
    )
    out = layer(x).numpy()
    if normalize_first:
        np.testing.assert_allclose(out, x, atol=1e-6)
    else:
        # Two post-norm blocks: LayerNorm(LayerNorm(x)), which is LayerNorm(x) up to epsilon.
        norm = keras.layers.LayerNormalization(epsilon=1e-5)
        np.testing.assert_allclose(out, norm(norm(x)).numpy(), atol=1e-5)


def test_encoder_layer_ignores_padded_keys():
    layer = EncoderLayer(D, 4, 32)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1, 6, D)).astype("float32")
    mask = np.array([[True] * 4 + [False] * 2])
    out = layer(x, padding_mask=mask).numpy()
    x2 = x.copy()
    x2[:, 4:] = rng.normal(size=(1, 2, D))  # change what sits at the pad positions
    out2 = layer(x2, padding_mask=mask).numpy()
    np.testing.assert_allclose(out[:, :4], out2[:, :4], atol=1e-6)


def test_decoder_layer_is_causal_and_cache_matches():
    layer = DecoderLayer(D, 4, 32)
    rng = np.random.default_rng(4)
    y = rng.normal(size=(2, 5, D)).astype("float32")
    memory = rng.normal(size=(2, 3, D)).astype("float32")
    memory_mask = np.array([[True, True, True], [True, True, False]])
    full = layer(y, memory, encoder_padding_mask=memory_mask).numpy()
    y2 = y.copy()
    y2[:, 3:] = rng.normal(size=(2, 2, D))
    changed = layer(y2, memory, encoder_padding_mask=memory_mask).numpy()
    np.testing.assert_allclose(full[:, :3], changed[:, :3], atol=1e-6)
    assert np.abs(full[:, 3:] - changed[:, 3:]).max() > 1e-3


def test_decoder_stack_cached_steps_equal_full_pass():
    decoder = Decoder(2, D, 4, 32)
    rng = np.random.default_rng(5)
    y = rng.normal(size=(2, 5, D)).astype("float32")
    memory = rng.normal(size=(2, 3, D)).astype("float32")
    memory_mask = np.array([[True, True, True], [True, False, False]])
    full = decoder(y, memory, encoder_padding_mask=memory_mask).numpy()
    cache = decoder.empty_self_attention_cache(2, 5)
    cross = decoder.compute_cross_attention_cache(memory)
    for t in range(5):
        out, cache = decoder(
            y[:, t : t + 1],
            memory,
            encoder_padding_mask=memory_mask,
            self_attention_cache=cache,
            self_attention_cache_update_index=t,
            cross_attention_cache=cross,
        )
        np.testing.assert_allclose(out.numpy()[:, 0], full[:, t], atol=1e-5)


@pytest.mark.parametrize("cls", [Encoder, Decoder])
def test_stack_config_round_trip(cls):
    stack = cls(num_layers=2, hidden_dim=D, num_heads=2, intermediate_dim=8, dropout=0.2)
    clone = assert_config_round_trip(stack)
    assert len(clone.transformer_layers) == 2 and clone.final_norm is not None
    post = cls(num_layers=1, hidden_dim=D, num_heads=2, intermediate_dim=8, normalize_first=False)
    assert assert_config_round_trip(post).final_norm is None


@pytest.mark.parametrize("cls", [EncoderLayer, DecoderLayer])
def test_feed_forward_dropout_is_activation_dropout(cls):
    """`dropout` covers attention and block outputs; the inner activations have their own."""
    layer = cls(hidden_dim=D, num_heads=2, intermediate_dim=8, dropout=0.2)
    x = np.ones((2, 5, D), "float32")
    layer(x) if cls is EncoderLayer else layer(x, x)
    assert layer.feed_forward.dropout == 0.0 and layer.self_attention.dropout == 0.2
    inner = cls(hidden_dim=D, num_heads=2, intermediate_dim=8, activation_dropout=0.3)
    clone = assert_config_round_trip(inner)
    assert clone.activation_dropout == 0.3 and clone.dropout == 0.0


@pytest.mark.parametrize(
    "build, match",
    [
        (
            lambda: EncoderLayer(16, 4, 32, activation_dropout=1.0),
            r"`activation_dropout` must be a number in \[0, 1\)",
        ),
        (lambda: EncoderLayer(250, 4, 32), "`num_heads` must divide `hidden_dim`"),
        (lambda: DecoderLayer(16, 4, 0), "`intermediate_dim` must be a positive integer"),
        (lambda: Encoder(0, 16, 4, 32), "`num_layers` must be a positive integer"),
        (lambda: Decoder(1, 16, 4, 32, dropout=1.5), r"`dropout` must be a number in \[0, 1\)"),
        (lambda: FeedForward(16, 32, dropout=-0.5), r"`dropout` must be a number in \[0, 1\)"),
        (lambda: PositionalEmbedding(0, 8, 4), "`vocabulary_size` must be a positive integer"),
        (lambda: PositionalEmbedding(9, 8, 4, position_embedding="rope"), "position_embedding"),
        (lambda: SequencePooling("max"), "`pooling` must be one of"),
    ],
)
def test_bad_arguments(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_initializers_reach_every_kernel_and_bias_and_round_trip():
    from tf_distill.models import build_transformer

    model = build_transformer(
        vocabulary_size=30, max_sequence_length=8, num_layers=1, num_heads=2, hidden_dim=8,
        intermediate_dim=16, kernel_initializer="ones", bias_initializer="ones",
    )  # fmt: skip
    kernels = [w for w in model.weights if w.path.endswith(("kernel", "bias"))]
    assert len(kernels) > 10
    for weight in kernels:  # attention, feed-forward and the output projection
        np.testing.assert_array_equal(weight.numpy(), 1.0, err_msg=weight.path)
    embeddings = [w for w in model.weights if "embeddings" in w.path]
    assert embeddings and all(np.abs(w.numpy()).max() < 1 for w in embeddings)
    # An initializer object: each kernel gets its own copy (seeded: the same draw each,
    # since a seeded initializer is deterministic), and the config keeps it.
    layer = EncoderLayer(
        hidden_dim=8, num_heads=2, intermediate_dim=16,
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.5, seed=3), seed=11,
    )  # fmt: skip
    layer.build((None, 4, 8))
    clone = assert_config_round_trip(layer)
    assert clone.get_config()["kernel_initializer"]["config"]["stddev"] == 0.5
    assert clone.get_config()["seed"] == 11
    clone.build((None, 4, 8))
    for a, b in zip(layer.get_weights(), clone.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # seeded: the same weights again
    assert np.std(layer.feed_forward.inner_dense.kernel.numpy()) > 0.3


def test_seeded_dropout_repeats_and_every_dropout_is_named():
    x = keras.random.normal((2, 5, 8), seed=0)

    def run(seed):
        layer = EncoderLayer(hidden_dim=8, num_heads=2, intermediate_dim=16, dropout=0.5, seed=seed)
        layer.build(x.shape)
        layer.set_weights([np.full(w.shape, 0.1, "float32") for w in layer.get_weights()])
        names = {sub.name for sub in layer._flatten_layers() if "Dropout" in type(sub).__name__}
        return np.asarray(layer(x, training=True)), names

    first, names = run(5)
    again, _ = run(5)
    other, _ = run(6)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert {"residual_dropout", "attention_dropout"} <= names


def test_compute_output_shape_matches_the_call():
    x = keras.random.normal((2, 5, 8))
    mask = np.ones((2, 5), bool)
    for layer in (
        EncoderLayer(hidden_dim=8, num_heads=2, intermediate_dim=16),
        Encoder(num_layers=1, hidden_dim=8, num_heads=2, intermediate_dim=16),
        SequencePooling("mean"),
    ):
        assert tuple(layer(x, padding_mask=mask).shape) == layer.compute_output_shape(
            x.shape, mask.shape
        )
    memory = keras.random.normal((2, 3, 8))
    for layer in (
        DecoderLayer(hidden_dim=8, num_heads=2, intermediate_dim=16),
        Decoder(num_layers=2, hidden_dim=8, num_heads=2, intermediate_dim=16),
    ):
        assert tuple(layer(x, memory).shape) == layer.compute_output_shape(x.shape, memory.shape)
