"""Probe for issue 14 point 3: does the Keras beam search convert to builtin-only TFLite?

1. A small perturbed model (vocabulary 40, width 16): the cached beam search of
   `tf_distill.decoding` (beam 4, GNMT length penalty 0.6) as a `tf.function`, converted
   with `TFLITE_BUILTINS` only, run by the LiteRT interpreter on 30 random sources, compared
   with `decoding.beam_search` in Keras.
2. File sizes: a SavedModel holding `translate` (greedy) and `translate_beam` on a larger
   model (vocabulary 500, width 64, 2 + 2 layers), converted to fp32 and dynamic-range int8
   with one signature or both, to see what a second signature costs in one file.

Usage: python bench/beam_tflite_probe.py  (about a minute on 2 cores; prints its figures)
"""

import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402

from tf_distill import decoding  # noqa: E402
from tf_distill.models import build_transformer  # noqa: E402

SPECIAL = (2, 3, 0)  # start, end, pad


def perturbed(model, scale, seed):
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        weight.assign(weight.numpy() + rng.normal(0, scale, weight.shape).astype("float32"))
    return model


def signature(model, max_length, beam_size):
    spec = [tf.TensorSpec((None, None), tf.int32, "encoder_token_ids")]
    translate = decoding.make_translate_function(
        model, max_length, *SPECIAL, beam_size=beam_size or 1, length_penalty=0.6
    )

    def run(encoder_token_ids):
        return {"output_token_ids": translate(encoder_token_ids)}

    return tf.function(run, input_signature=spec)


def parity():
    keras.utils.set_random_seed(3)
    model = perturbed(build_transformer(40, 16, 1, 2, 16, 32, dropout=0.0), 0.3, seed=0)
    bias = model.get_layer("output_projection").bias
    bias.assign(bias.numpy() + 2.0 * np.eye(40, dtype="float32")[3])  # some rows end early
    beam = signature(model, 12, 4)
    holder = tf.Module()
    holder.weights = [w.value for w in model.weights]
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [beam.get_concrete_function()], holder
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    run = Interpreter(model_content=converter.convert()).get_signature_runner()
    rng = np.random.default_rng(0)
    same = 0
    for _ in range(30):
        ids = rng.integers(4, 40, size=(1, int(rng.integers(2, 10)))).astype(np.int32)
        got = np.asarray(next(iter(run(encoder_token_ids=ids).values())))
        expected = decoding.beam_search(model, ids, 12, 4, 0.6, *SPECIAL)
        same += bool(np.array_equal(got, np.asarray(expected)))
    print(f"beam 4 in TFLite fp32 equals Keras beam search on {same} of 30 sources")


def sizes():
    keras.utils.set_random_seed(4)
    model = perturbed(build_transformer(500, 32, 2, 4, 64, 256, dropout=0.0), 0.05, seed=1)
    module = tf.Module()
    module.weights = [w.value for w in model.weights]
    module.translate = signature(model, 24, None)
    module.translate_beam = signature(model, 24, 4)
    path = os.path.join(tempfile.mkdtemp(), "saved_model")
    tf.saved_model.save(
        module,
        path,
        signatures={"translate": module.translate, "translate_beam": module.translate_beam},
    )
    for keys in (["translate"], ["translate_beam"], ["translate", "translate_beam"]):
        for variant in ("fp32", "int8"):
            converter = tf.lite.TFLiteConverter.from_saved_model(path, signature_keys=keys)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
            if variant == "int8":
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
                converter._experimental_disable_per_channel = True
            print(f"{'+'.join(keys)} {variant}: {len(converter.convert()):,} bytes")


if __name__ == "__main__":
    parity()
    sizes()
