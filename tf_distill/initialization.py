"""Students that start from the teacher's weights (DistilBERT's initialisation: keep one
teacher layer in k), before they are distilled.

Only a student as wide as the teacher can take its layers as they are: same model width,
heads and feed-forward width, same vocabularies and position table. For a narrower
student no copy is exact, and tf_distill does not approximate one (e.g. by truncating or
factorising matrices); use hidden-state distillation with a projection instead.
"""

import logging

from tf_distill import features as features_lib

_LOG = logging.getLogger(__name__)

# Layers copied whole, by the names `build_transformer` / `build_classifier` give them.
_SHARED_LAYERS = {
    features_lib.SEQ2SEQ: ("encoder_embedding", "decoder_embedding", "output_projection"),
    features_lib.CLASSIFIER: ("embedding", "classifier_head"),
}


def every_kth_layers(student_layers, teacher_layers):
    """The teacher layers (0-based) a student of `student_layers` keeps: one in every
    k = teacher_layers / student_layers, starting with the first, as DistilBERT keeps
    layers 0, 2, 4, ... of BERT (3 of 6 -> [0, 2, 4]; 1 of 3 -> [0]). The first layer is
    the one that reads the embeddings, which the student copies too."""
    return [m * teacher_layers // student_layers for m in range(student_layers)]


def init_from_teacher(teacher, student, layers=None):
    """Copies the teacher's embeddings, chosen layers, final norms and output layer into
    `student` (in place) and returns the choice made.

    Args:
        teacher: a model built by `build_transformer` or `build_classifier`.
        student: a model of the same kind, width, heads, feed-forward width,
            vocabularies (or class count) and position table, with fewer or as many layers.
        layers: None (every k-th teacher layer, `every_kth_layers`) or a dict
            `{"encoder": [...], "decoder": [...]}` of 0-based teacher layers, one per
            student layer; a stack left out takes the every-k-th choice.

    Returns:
        {stack: [teacher layer (0-based) copied into each student layer]}.

    Raises:
        ValueError: the models are of other kinds or shapes (naming what differs), or a
            list names a layer the teacher lacks or has the wrong length.
    """
    features_lib.check_same_kind(teacher, student)
    kind = features_lib.model_kind(student)
    problems = []
    teacher_shapes = features_lib.stack_shapes(teacher)
    student_shapes = features_lib.stack_shapes(student)
    for stack, (_, width, heads) in student_shapes.items():
        _, teacher_width, teacher_heads = teacher_shapes[stack]
        if width != teacher_width:
            problems.append(f"{stack} width {width} vs the teacher's {teacher_width}")
        if heads != teacher_heads:
            problems.append(f"{stack} heads {heads} vs the teacher's {teacher_heads}")
        s_stack, t_stack = student.get_layer(stack), teacher.get_layer(stack)
        if s_stack.intermediate_dim != t_stack.intermediate_dim:
            problems.append(
                f"{stack} intermediate_dim {s_stack.intermediate_dim} vs the teacher's "
                f"{t_stack.intermediate_dim}"
            )
        if s_stack.normalize_first != t_stack.normalize_first:
            problems.append(f"{stack} normalize_first differs")
    student_layers = {layer.name: layer for layer in student.layers}
    teacher_layers = {layer.name: layer for layer in teacher.layers}
    for name in _SHARED_LAYERS[kind]:
        if (name in student_layers) != (name in teacher_layers):
            problems.append(f"one model has a layer {name!r} and the other not (tie_embeddings)")
            continue
        if name not in student_layers:
            continue
        s_shapes = [tuple(w.shape) for w in student_layers[name].weights]
        t_shapes = [tuple(w.shape) for w in teacher_layers[name].weights]
        if s_shapes != t_shapes:
            problems.append(f"{name!r} weights {s_shapes} vs the teacher's {t_shapes}")
    if problems:
        raise ValueError(
            "A student initialised from the teacher must have the teacher's shapes, but "
            f"{'; '.join(problems)}. A narrower student cannot take the teacher's layers "
            "(tf_distill does not approximate them); train it from scratch with hidden-state "
            "distillation (hidden_weight) instead."
        )
    chosen = _resolve_layers(layers, student_shapes, teacher_shapes)
    for name in _SHARED_LAYERS[kind]:
        if name in student_layers:
            student_layers[name].set_weights(teacher_layers[name].get_weights())
    for stack, picked in chosen.items():
        s_stack, t_stack = student.get_layer(stack), teacher.get_layer(stack)
        for s_layer, index in zip(s_stack.transformer_layers, picked, strict=True):
            s_layer.set_weights(t_stack.transformer_layers[index].get_weights())
        if s_stack.final_norm is not None:
            s_stack.final_norm.set_weights(t_stack.final_norm.get_weights())
    _LOG.info(
        "student initialised from the teacher's layers "
        + ", ".join(f"{stack} {[i + 1 for i in picked]}" for stack, picked in chosen.items())
    )
    return chosen


def _resolve_layers(layers, student_shapes, teacher_shapes):
    for stack, (count, _, _) in student_shapes.items():
        if count > teacher_shapes[stack][0]:
            raise ValueError(
                f"The student's {stack} has {count} layers, more than the teacher's "
                f"{teacher_shapes[stack][0]}: there is nothing to copy into the extra ones."
            )
    return features_lib.resolve_layer_map(
        layers,
        student_shapes,
        teacher_shapes,
        default=every_kth_layers,
        first=0,
        what="The layers to copy",
    )
