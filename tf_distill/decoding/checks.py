"""Argument checks shared by the decoding functions, and the cache of their traced
`tf.function`s (one per model and settings)."""

import numbers
import weakref

import tensorflow as tf

from tf_distill.models import seq2seq_parts

# model -> {settings: tf.function}. Weak keys: the functions close over the model's layers,
# not the model, so a model that goes away takes its traced functions with it.
_FUNCTIONS = weakref.WeakKeyDictionary()


def cached_function(model, key, make):
    if isinstance(model, list | tuple):
        model = model[0]  # the other members are in the key
    try:
        table = _FUNCTIONS.setdefault(model, {})
    except TypeError:  # not weak-referenceable: trace each time
        return make()
    if key not in table:
        table[key] = make()
    return table[key]


def member_ids(model):
    """Identity of an ensemble's other members, for the function cache key."""
    return tuple(id(m) for m in model[1:]) if isinstance(model, list | tuple) else ()


def check_members(model, max_length, start_id, end_id, pad_id, source):
    """`_check` for one model or each model of a list; a list of their `Seq2SeqParts`."""
    models = list(model) if isinstance(model, list | tuple) else [model]
    if not models:
        raise ValueError("`model` is an empty list: give a model or a list of models.")
    members = [check_model(m, max_length, start_id, end_id, pad_id, source) for m in models]
    sizes = {p.decoder_embedding.vocabulary_size for p in members}
    if len(sizes) > 1:
        raise ValueError(
            "The models of an ensemble must share one target vocabulary. Received "
            f"vocabulary sizes {sorted(sizes)}."
        )
    return members


def check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}.")


def check_source(encoder_token_ids):
    source = tf.convert_to_tensor(encoder_token_ids)
    if source.shape.rank != 2:
        raise ValueError(
            "`encoder_token_ids` must have shape (batch, length); for one sentence pass "
            f"[ids]. Received: shape={tuple(source.shape)}."
        )
    if not source.dtype.is_integer:
        raise ValueError(
            f"`encoder_token_ids` must hold integer ids. Received: dtype={source.dtype.name}."
        )
    return tf.cast(source, tf.int32)


def check_model(model, max_length, start_id, end_id, pad_id, source=None):
    """Validates the shared arguments and returns the model's `Seq2SeqParts`."""
    check_positive_int("max_length", max_length)
    parts = seq2seq_parts(model)
    limit = parts.decoder_embedding.max_sequence_length
    if max_length > limit:
        raise ValueError(
            f"`max_length` can be at most the model's `max_sequence_length` ({limit}): the "
            f"decoder has no position beyond it. Received: max_length={max_length}."
        )
    vocabulary_size = parts.decoder_embedding.vocabulary_size
    ids = {"start_id": start_id, "end_id": end_id, "pad_id": pad_id}
    for name, value in ids.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Integral)
            or not 0 <= value < vocabulary_size
        ):
            raise ValueError(
                f"`{name}` must be a token id in [0, {vocabulary_size}) (the target "
                f"vocabulary). Received: {name}={value!r}."
            )
    if len(set(ids.values())) < 3:
        raise ValueError(f"`start_id`, `end_id` and `pad_id` must differ. Received: {ids}.")
    model_pad = parts.encoder_padding_mask.pad_token_id
    if pad_id != model_pad:
        raise ValueError(
            f"`pad_id` must be the model's pad id ({model_pad}), which its padding masks "
            f"use. Received: pad_id={pad_id}."
        )
    if source is not None:
        length = source.shape[1]
        source_limit = parts.encoder_embedding.max_sequence_length
        if length is not None and length > source_limit:
            raise ValueError(
                f"`encoder_token_ids` can be at most {source_limit} tokens long (the "
                f"model's `max_sequence_length`); truncate them first. Received: "
                f"length={length}."
            )
    return parts
