import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import assert_config_round_trip
from tf_distill.layers import MultiHeadAttention, masked_softmax

B, T, S, D, N = 3, 5, 7, 16, 4


@pytest.fixture(scope="module")
def pair():
    """A Keras MHA and ours holding the same weights, for cross-attention (T != S)."""
    rng = np.random.default_rng(0)
    query = rng.normal(size=(B, T, D)).astype("float32")
    value = rng.normal(size=(B, S, D)).astype("float32")
    theirs = keras.layers.MultiHeadAttention(num_heads=N, key_dim=D // N)
    theirs(query, value)
    ours = MultiHeadAttention(num_heads=N, key_dim=D // N)
    ours(query, value)
    ours.set_weights(theirs.get_weights())
    return theirs, ours, query, value


def test_weights_have_keras_order_and_shapes(pair):
    theirs, ours, _, _ = pair
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in theirs.get_weights()]
    assert [w.shape for w in ours.get_weights()] == [
        (D, N, D // N), (N, D // N), (D, N, D // N), (N, D // N), (D, N, D // N), (N, D // N),
        (N, D // N, D), (D,),
    ]  # fmt: skip


def test_parity_without_mask(pair):
    theirs, ours, query, value = pair
    np.testing.assert_allclose(ours(query, value), theirs(query, value), atol=1e-5)


def test_parity_with_random_padding_mask(pair):
    theirs, ours, query, value = pair
    rng = np.random.default_rng(1)
    lengths = rng.integers(1, S + 1, size=B)
    key_mask = np.arange(S)[None, :] < lengths[:, None]  # (B, S) real keys first
    mask = np.broadcast_to(key_mask[:, None, :], (B, T, S))
    np.testing.assert_allclose(
        ours(query, value, attention_mask=mask),
        theirs(query, value, attention_mask=mask),
        atol=1e-5,
    )


def test_parity_with_random_mask_and_scores(pair):
    theirs, ours, query, value = pair
    rng = np.random.default_rng(2)
    mask = rng.random((B, T, S)) > 0.5
    mask[:, :, 0] = True  # every row keeps at least one key
    out_t, scores_t = theirs(query, value, attention_mask=mask, return_attention_scores=True)
    out_o, scores_o = ours(query, value, attention_mask=mask, return_attention_scores=True)
    np.testing.assert_allclose(out_o, out_t, atol=1e-5)
    np.testing.assert_allclose(scores_o, scores_t, atol=1e-6)


def test_parity_causal_self_attention():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(B, T, D)).astype("float32")
    theirs = keras.layers.MultiHeadAttention(
        num_heads=N, key_dim=D // N, value_dim=3, output_shape=6
    )
    theirs(x, x)
    ours = MultiHeadAttention(num_heads=N, key_dim=D // N, value_dim=3, output_dim=6)
    ours(x, x)
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(
        ours(x, x, use_causal_mask=True), theirs(x, x, use_causal_mask=True), atol=1e-5
    )
    pad = np.arange(T)[None, :] < np.array([T, 3, 1])[:, None]
    mask = np.broadcast_to(pad[:, None, :], (B, T, T))
    np.testing.assert_allclose(
        ours(x, x, attention_mask=mask, use_causal_mask=True),
        theirs(x, x, attention_mask=mask, use_causal_mask=True),
        atol=1e-5,
    )


def test_attention_rows_sum_to_one_and_masked_get_nothing(pair):
    _, ours, query, value = pair
    rng = np.random.default_rng(4)
    mask = rng.random((B, T, S)) > 0.3
    mask[:, :, 2] = True
    _, scores = ours(query, value, attention_mask=mask, return_attention_scores=True)
    scores = scores.numpy()
    np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-6)
    assert scores[np.broadcast_to(~mask[:, None], scores.shape)].max() == 0.0


def test_causal_scores_are_lower_triangular():
    x = np.random.default_rng(5).normal(size=(2, 6, D)).astype("float32")
    _, scores = MultiHeadAttention(N, D // N)(
        x, x, use_causal_mask=True, return_attention_scores=True
    )
    upper = np.triu(np.ones((6, 6), bool), k=1)
    assert np.abs(scores.numpy()[..., upper]).max() == 0.0


def test_bounded_fill_matches_numpy_softmax_and_never_outranks_real_scores():
    rng = np.random.default_rng(6)
    scores = (rng.normal(size=(4, 9)) * 200).astype("float32")  # a very wide score range
    mask = rng.random((4, 9)) > 0.4
    mask[:, 0] = True
    probs = masked_softmax(tf.constant(scores), tf.constant(mask)).numpy()
    for row in range(4):
        kept = scores[row, mask[row]].astype("float64")
        ref = np.exp(kept - kept.max())
        ref /= ref.sum()
        np.testing.assert_allclose(probs[row, mask[row]], ref, atol=1e-6)
        masked = probs[row, ~mask[row]]
        if masked.size:
            assert masked.max() <= probs[row, mask[row]].min()


def test_rows_with_nothing_to_attend_to_are_zero():
    probs = masked_softmax(tf.ones((2, 3)), tf.constant([[False] * 3, [True, False, True]]))
    np.testing.assert_allclose(probs.numpy(), [[0, 0, 0], [0.5, 0, 0.5]], atol=1e-7)


def test_cached_incremental_attention_equals_full_causal_attention():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, 6, D)).astype("float32")
    layer = MultiHeadAttention(N, D // N)
    full = layer(x, x, use_causal_mask=True).numpy()
    cache = tf.zeros((2, 2, 6, N, D // N))
    for t in range(6):
        step = x[:, t : t + 1]
        mask = (np.arange(6) <= t)[None, None, :]  # (1, 1, S_max)
        out, cache = layer(step, step, attention_mask=mask, cache=cache, cache_update_index=t)
        np.testing.assert_allclose(out.numpy()[:, 0], full[:, t], atol=1e-5)
    # A precomputed cross-attention cache gives the same output as projecting again.
    memory = rng.normal(size=(2, 4, D)).astype("float32")
    cross_cache = layer.compute_key_value_cache(memory)
    out, same_cache = layer(x, memory, cache=cross_cache)
    np.testing.assert_allclose(out, layer(x, memory), atol=1e-5)
    np.testing.assert_array_equal(same_cache, cross_cache)


def test_config_round_trip():
    layer = MultiHeadAttention(2, 8, value_dim=4, dropout=0.1, output_dim=12, mask_fill_offset=50)
    clone = assert_config_round_trip(layer)
    assert clone.value_dim == 4 and clone.mask_fill_offset == 50.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_heads=0, key_dim=4), "`num_heads` must be a positive integer"),
        (dict(num_heads=2, key_dim=-1), "`key_dim` must be a positive integer"),
        (dict(num_heads=2, key_dim=4, dropout=1.0), r"`dropout` must be a number in \[0, 1\)"),
        (dict(num_heads=2, key_dim=4, dropout=-0.1), r"`dropout` must be a number in \[0, 1\)"),
        (dict(num_heads=2, key_dim=4, mask_fill_offset=0), "`mask_fill_offset` must be positive"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MultiHeadAttention(**kwargs)
