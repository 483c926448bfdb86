"""Contract checks shared by the layer and model tests."""

import subprocess
import sys
import textwrap

import keras
import numpy as np


def random_token_ids(rng, batch, length, vocabulary_size, min_length=1, pad_token_id=0):
    """(batch, length) int32 ids in [1, vocab) with a random real length per row, then pads."""
    ids = rng.integers(1, vocabulary_size, size=(batch, length)).astype("int32")
    lengths = rng.integers(min_length, length + 1, size=batch)
    for row, n in enumerate(lengths):
        ids[row, n:] = pad_token_id
    return ids


def perturb_weights(model, scale, seed):
    """Adds N(0, scale) noise to every weight: a fresh model repeats one output for every
    input, a perturbed one varies, so comparisons of outputs mean something."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        weight.assign(weight.numpy() + rng.normal(0.0, scale, weight.shape).astype("float32"))
    return model


def assert_config_round_trip(layer):
    """`from_config(get_config())` rebuilds a layer with the same config."""
    config = layer.get_config()
    clone = layer.__class__.from_config(config)
    assert clone.get_config() == config
    return clone


def assert_keras_file_round_trip(model, inputs, tmp_path, new_process=True):
    """Saves `model` to `.keras`, reloads it (in a fresh process too) and compares outputs."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "model.keras"
    model.save(path)
    expected = keras.ops.convert_to_numpy(model(inputs, training=False))
    reloaded = keras.saving.load_model(path)
    got = keras.ops.convert_to_numpy(reloaded(inputs, training=False))
    np.testing.assert_array_equal(got, expected)
    if new_process:
        inputs_path = tmp_path / "inputs.npz"
        np.savez(inputs_path, expected=expected, **inputs)
        script = textwrap.dedent(
            f"""
            import numpy as np
            import keras
            import tf_distill
            data = np.load({str(inputs_path)!r})
            expected = data["expected"]
            inputs = {{k: data[k] for k in data.files if k != "expected"}}
            model = tf_distill.load_model({str(path)!r})  # registers the layers first
            got = keras.ops.convert_to_numpy(model(inputs, training=False))
            np.testing.assert_array_equal(got, expected)
            print("ROUND_TRIP_OK")
            """
        )
        result = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
        )
        assert "ROUND_TRIP_OK" in result.stdout, result.stderr[-3000:]
