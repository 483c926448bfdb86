"""Inside a tf_distill model: logits plus every layer's hidden states and attention maps,
from one forward pass (what hidden-state and attention distillation compare).

`model_features` calls the layers of a model built by `build_transformer` or
`build_classifier` in the order its functional graph does, asking each stack for its
per-layer outputs; the logits are the model's own (a test checks them against
`model(inputs)`). Nothing runs twice and no second model is built.

Legend: B batch, S source / input length, T target length, N heads, H head size,
D model width, L number of layers.
"""

import dataclasses
import math

import keras
import tensorflow as tf

from tf_distill.layers import Decoder, Encoder, PositionalEmbedding

SEQ2SEQ = "seq2seq"
CLASSIFIER = "classifier"


@dataclasses.dataclass
class StackFeatures:
    """What one stack (encoder or decoder) computed, layer by layer.

    hidden: L + 1 tensors (B, S, D): the embedded input, then each layer's output.
    self_attention: L tensors (B, N, S, S) of attention probabilities.
    self_values: L tensors (B, S, N, H): the value heads of each self-attention.
    cross_attention: L tensors (B, N, T, S) (decoder only; [] for an encoder).
    mask: (B, S) float, 1 for real positions (the rows every loss averages over).
    """

    hidden: list
    self_attention: list
    self_values: list
    cross_attention: list
    mask: tf.Tensor


def model_kind(model):
    """`"seq2seq"` (build_transformer), `"classifier"` (build_classifier), or None for a
    model whose insides tf_distill cannot read (e.g. a keras-hub model)."""
    layers = {layer.name: layer for layer in getattr(model, "layers", ())}
    if isinstance(layers.get("encoder"), Encoder) and isinstance(layers.get("decoder"), Decoder):
        if isinstance(layers.get("encoder_embedding"), PositionalEmbedding):
            return SEQ2SEQ
    if isinstance(layers.get("encoder"), Encoder) and isinstance(
        layers.get("embedding"), PositionalEmbedding
    ):
        return CLASSIFIER
    return None


def stack_shapes(model):
    """{stack name: (num_layers, width, num_heads)} of a tf_distill model."""
    kind = model_kind(model)
    if kind is None:
        raise ValueError(
            f"Feature distillation reads the layers of models built by "
            f"`tf_distill.build_transformer` or `build_classifier`; {model.name!r} "
            f"({type(model).__name__}) is neither. Use logit distillation only for it."
        )
    names = ("encoder", "decoder") if kind == SEQ2SEQ else ("encoder",)
    shapes = {}
    for name in names:
        stack = model.get_layer(name)
        shapes[name] = (stack.num_layers, stack.hidden_dim, stack.num_heads)
    return shapes


def model_features(model, inputs, training=False, logits=True):
    """`(logits, {stack name: StackFeatures})` of one forward pass of `model`.

    Args:
        model: a model built by `build_transformer` (stacks "encoder" and "decoder") or
            `build_classifier` (stack "encoder").
        inputs: the model's input dict.
        training: whether dropout is active (as in `model(inputs, training=...)`).
        logits: False stops after the last stack (the logits are then None), saving the
            output layer (for a translation model, the (T, D) x (D, V) projection).
    """
    kind = model_kind(model)
    if kind is None:
        stack_shapes(model)  # raises the explanation
    layer = model.get_layer
    if kind == CLASSIFIER:
        token_ids = inputs["token_ids"]
        mask = layer("padding_mask")(token_ids)
        x = layer("embedding")(token_ids)
        x = layer("embedding_dropout")(x, training=training)
        x, encoder = layer("encoder")(x, padding_mask=mask, training=training, return_features=True)
        if not logits:
            return None, {"encoder": _stack(encoder, mask)}
        x = layer("pooling")(x, padding_mask=mask)
        x = layer("pooled_dropout")(x, training=training)
        logits = layer("logits")(layer("classifier_head")(x))
        return logits, {"encoder": _stack(encoder, mask)}

    source, target = inputs["encoder_token_ids"], inputs["decoder_token_ids"]
    source_mask = layer("encoder_padding_mask")(source)
    target_mask = layer("decoder_padding_mask")(target)
    x = layer("encoder_embedding")(source)
    x = layer("encoder_embedding_dropout")(x, training=training)
    encoded, encoder = layer("encoder")(
        x, padding_mask=source_mask, training=training, return_features=True
    )
    decoder_embedding = layer("decoder_embedding")
    y = decoder_embedding(target)
    y = layer("decoder_embedding_dropout")(y, training=training)
    y, decoder = layer("decoder")(
        y,
        encoded,
        decoder_padding_mask=target_mask,
        encoder_padding_mask=source_mask,
        training=training,
        return_features=True,
    )
    stacks = {"encoder": _stack(encoder, source_mask), "decoder": _stack(decoder, target_mask)}
    if not logits:
        return None, stacks
    names = {sub.name for sub in model.layers}
    if "output_projection" in names:
        y = layer("output_projection")(y)
    else:
        y = decoder_embedding(y, reverse=True)
    return layer("logits")(y), stacks


def _stack(features, mask):
    return StackFeatures(
        hidden=features["hidden"],
        self_attention=features["self_attention"],
        self_values=features["self_values"],
        cross_attention=features.get("cross_attention", []),
        mask=tf.cast(mask, tf.float32),
    )


def stop_gradient(stack_features):
    """`stack_features` with every tensor cut from the gradient (the teacher's)."""
    return StackFeatures(
        hidden=[tf.stop_gradient(h) for h in stack_features.hidden],
        self_attention=[tf.stop_gradient(p) for p in stack_features.self_attention],
        self_values=[tf.stop_gradient(v) for v in stack_features.self_values],
        cross_attention=[tf.stop_gradient(p) for p in stack_features.cross_attention],
        mask=stack_features.mask,
    )


def uniform_layer_map(student_layers, teacher_layers):
    """Which teacher layer (1-based) each student layer learns from: layer m of L_s maps
    to ceil(m * L_t / L_s), so the last layers always meet (TinyBERT's g(m) = m L_t / L_s
    when L_t is a multiple of L_s; e.g. 2 of 6 -> [3, 6], 2 of 3 -> [2, 3])."""
    return [math.ceil(m * teacher_layers / student_layers) for m in range(1, student_layers + 1)]


def resolve_layer_map(
    layer_map, student_shapes, teacher_shapes, default=uniform_layer_map, first=1, what="layer_map"
):
    """{stack: [teacher layer of each student layer]} for every stack both models have,
    from `layer_map` (None, or a dict of explicit lists per stack; a stack left out takes
    `default(student_layers, teacher_layers)`). Layers are numbered from `first` (1 for
    distillation, where 0 is the embeddings; 0 for `init_from_teacher`).

    Raises:
        ValueError: naming `what`: a stack the student lacks, or a list of the wrong
            length or with a layer the teacher does not have.
    """
    layer_map = dict(layer_map or {})
    unknown = set(layer_map) - set(student_shapes)
    if unknown:
        raise ValueError(
            f"{what} names {sorted(unknown)}, but the student's stacks are "
            f"{sorted(student_shapes)}."
        )
    resolved = {}
    for name, (student_layers, _, _) in student_shapes.items():
        if name not in teacher_shapes:
            continue
        teacher_layers = teacher_shapes[name][0]
        chosen = layer_map.get(name)
        if chosen is None:
            resolved[name] = default(student_layers, teacher_layers)
            continue
        chosen = list(chosen)
        last = teacher_layers - 1 + first
        if len(chosen) != student_layers or not all(
            isinstance(i, int) and not isinstance(i, bool) and first <= i <= last for i in chosen
        ):
            raise ValueError(
                f"{what}[{name!r}] must list, for each of the student's {student_layers} "
                f"{name} layers, a teacher layer from {first} to {last}. Received: {chosen!r}."
            )
        resolved[name] = chosen
    return resolved


def check_same_kind(teacher, student):
    """Feature distillation pairs stacks of the same name: both models must be of one kind."""
    teacher_kind, student_kind = model_kind(teacher), model_kind(student)
    stack_shapes(teacher)
    stack_shapes(student)
    if teacher_kind != student_kind:
        raise ValueError(
            f"Feature distillation needs a teacher and a student of one kind; received a "
            f"{teacher_kind} teacher and a {student_kind} student."
        )


def projection_layer(student_width, teacher_width, name):
    """The learned linear map from student to teacher width that hidden-state distillation
    trains with the student (TinyBERT's W_h), or None when the widths agree."""
    if student_width == teacher_width:
        return None
    projection = keras.layers.Dense(teacher_width, name=name)
    projection.build((None, None, student_width))
    return projection
