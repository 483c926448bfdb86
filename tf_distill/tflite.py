"""TFLite conversion, post-processing and the LiteRT interpreter, for `tf_distill.export`.

Files are converted one signature at a time with builtin ops only, then stripped of the
names of their internal tensors (about 25 KB on the small student: names like
`while/decoder_1/layer_0_1/feed_forward_1/inner_1/Tensordot/MatMul`, which no runtime
reads). The signature's input and output tensors keep their names.
"""

import numpy as np
import tensorflow as tf

SIGNATURE_INPUTS = {
    "translate": "encoder_token_ids",
    "translate_beam": "encoder_token_ids",
    "classify": "token_ids",
}


def convert_tflite(saved_model_dir, variant, signature="translate", calibration_inputs=None):
    """Converts one signature of a SavedModel to TFLite bytes (builtin ops only).

    One signature per file: quantizing several at once kept a float copy of the weights.
    `tflite_int8` is dynamic-range (int8 weights, float activations) unless
    `calibration_inputs` is given: then it is integer quantization with activation ranges
    calibrated on those inputs (a list of `{input_name: array}` dicts, one per call), ops
    without an int8 kernel staying in float. Token ids stay int32 either way.

    Dynamic-range weights get one scale per tensor, not one per output channel: with
    per-channel scales the tied embedding was stored twice (a per-tensor table for the
    lookup, a per-channel one for the logits), 40% of the fp32 file on the small student
    instead of 30%, and its greedy output matched Keras no more often (96.5% against 97.0%
    of test sentences on one student, 93.0% against 94.0% on another; docs/BENCHMARKS.md).
    """
    samples = None if calibration_inputs is None else list(calibration_inputs)
    if samples is not None and not samples:
        raise ValueError("Full int8 quantization needs at least one calibration input.")
    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(saved_model_dir), signature_keys=[signature]
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if variant == "tflite_fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "tflite_int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if samples is not None:

            def representative_dataset():
                for sample in samples:
                    yield {name: np.asarray(value) for name, value in sample.items()}

            converter.representative_dataset = representative_dataset
        else:
            # Private in TF 2.21, and the only switch for this: see the docstring.
            converter._experimental_disable_per_channel = True
    return strip_tensor_names(converter.convert())


def strip_tensor_names(content):
    """TFLite bytes with every tensor name emptied except the signatures' inputs/outputs."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    keep = set()
    for signature in model.signatureDefs or []:
        for tensor_map in (signature.inputs or []) + (signature.outputs or []):
            keep.add((signature.subgraphIndex, tensor_map.tensorIndex))
    for s, subgraph in enumerate(model.subgraphs):
        for t, tensor in enumerate(subgraph.tensors):
            if (s, t) not in keep:
                tensor.name = b""
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def tflite_runner(path_or_bytes, num_threads=None, signature="translate"):
    """A callable over one signature of a TFLite model, through the LiteRT interpreter:
    `translate` maps (B, S) int32 source ids to (B, T) int32 output ids, `classify` maps
    (B, T) int32 token ids to (B, C) class probabilities."""
    from ai_edge_litert.interpreter import Interpreter

    if isinstance(path_or_bytes, bytes | bytearray):
        interpreter = Interpreter(model_content=bytes(path_or_bytes), num_threads=num_threads)
    else:
        interpreter = Interpreter(model_path=str(path_or_bytes), num_threads=num_threads)
    runner = interpreter.get_signature_runner(signature)
    input_name = SIGNATURE_INPUTS[signature]

    def run(ids):
        out = runner(**{input_name: np.asarray(ids, np.int32)})
        return np.asarray(next(iter(out.values())))

    run.interpreter = interpreter
    return run


def tflite_op_names(content):
    """Sorted names of every operator code in a TFLite flatbuffer, all subgraphs included
    (the decode loop's body is a subgraph of its own); custom and Flex ops by their name."""
    from tensorflow.lite.python import schema_py_generated as schema

    builtin = {code: name for name, code in vars(schema.BuiltinOperator).items() if name.isupper()}
    flatbuffer = schema.Model.GetRootAsModel(bytearray(content), 0)
    names = set()
    for i in range(flatbuffer.OperatorCodesLength()):
        code = flatbuffer.OperatorCodes(i)
        if code.CustomCode():
            names.add(code.CustomCode().decode())
        else:
            names.add(builtin[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())])
    return sorted(names)


def loop_body_op_count(content):
    """Operator count of the largest subgraph after the main one: in a `translate` file,
    the decode loop's WHILE body (what one generated token costs in ops)."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(bytearray(content), 0)
    return max(model.Subgraphs(i).OperatorsLength() for i in range(1, model.SubgraphsLength()))


def main_graph_op_count(content):
    """Operator count of a `.tflite` file's main subgraph: in a `translate` file, what
    runs once per call (the encoder, the cross-attention keys and values, the loop's
    set-up)."""
    from tensorflow.lite.python import schema_py_generated as schema

    return schema.Model.GetRootAsModel(bytearray(content), 0).Subgraphs(0).OperatorsLength()


def builtin_names():
    """Names of every builtin TFLite operator (what a stock runtime has kernels for)."""
    from tensorflow.lite.python import schema_py_generated as schema

    return {name for name in vars(schema.BuiltinOperator) if name.isupper()} - {"CUSTOM"}


# TFLite's dynamic-range quantizer leaves tensors of fewer elements in float.
MIN_QUANTIZED_ELEMENTS = 1024


def round_to_int8_grid(model, min_elements=MIN_QUANTIZED_ELEMENTS):
    """Rounds a model's weights, in place, to the values a per-tensor int8 file stores.

    Every weight of 2 or more dimensions and at least `min_elements` elements (the
    kernels and embeddings that `convert_tflite(..., "tflite_int8")` quantizes) becomes
    `round(w / s) * s` with `s = max|w| / 127`: the symmetric per-tensor grid of the
    dynamic-range quantizer. Afterwards the int8 file holds exactly the Keras model's
    weights, and what is left between the two is the int8 rounding of activations inside
    the hybrid kernels. Rounding again changes nothing (the largest weight stays at 127 s).

    Returns:
        The number of tensors rounded.
    """
    rounded = 0
    for variable in model.weights:
        values = np.asarray(variable.numpy())
        if values.ndim < 2 or values.size < min_elements:
            continue
        scale = float(np.abs(values).max()) / 127.0
        if scale > 0:
            variable.assign((np.round(values / scale) * scale).astype(values.dtype))
            rounded += 1
    return rounded
