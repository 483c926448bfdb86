"""`build_classifier`: an encoder-only Transformer that outputs class logits.

Legend: B batch, T sequence length, D model width, C classes.
"""

import keras

from tf_distill.layers import Encoder, PaddingMask, PositionalEmbedding, SequencePooling
from tf_distill.layers.validation import (
    check_dropout,
    check_heads_divide,
    check_positive,
    clone_initializer,
    sub_seed,
)


def build_classifier(
    vocabulary_size,
    num_classes,
    max_sequence_length,
    num_layers,
    num_heads,
    hidden_dim,
    intermediate_dim,
    dropout=0.1,
    pooling="mean",
    position_embedding="learned",
    normalize_first=True,
    activation="gelu",
    pad_token_id=0,
    kernel_initializer="glorot_uniform",
    bias_initializer="zeros",
    seed=None,
    dtype=None,
    name="classifier",
):
    """Builds a Transformer text classifier as a functional `keras.Model`.

    Input `token_ids` (B, T) int32 padded with `pad_token_id`; output `logits` (B, C)
    float32 with no softmax. Pads are masked in attention and in the mean pooling, so
    appending pads does not change the logits.

    Args:
        vocabulary_size: number of token ids.
        num_classes: number of classes C (>= 2).
        max_sequence_length: longest input.
        num_layers, num_heads, hidden_dim, intermediate_dim, dropout, position_embedding,
            normalize_first, activation, pad_token_id, kernel_initializer,
            bias_initializer, seed, dtype: as in `build_transformer`.
        pooling: `"mean"` over real tokens, or `"first"` token.
        name: model name.

    Returns:
        A `keras.Model` mapping `{"token_ids"}` to class logits.
    """
    check_positive(
        vocabulary_size=vocabulary_size,
        num_classes=num_classes,
        max_sequence_length=max_sequence_length,
        num_layers=num_layers,
        intermediate_dim=intermediate_dim,
    )
    if num_classes < 2:
        raise ValueError(f"`num_classes` must be at least 2. Received: num_classes={num_classes}.")
    check_heads_divide(hidden_dim, num_heads)
    check_dropout(dropout)

    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    padding_mask = PaddingMask(pad_token_id, name="padding_mask")(token_ids)
    x = PositionalEmbedding(
        vocabulary_size,
        max_sequence_length,
        hidden_dim,
        position_embedding=position_embedding,
        dtype=dtype,
        name="embedding",
    )(token_ids)  # (B, T, D)
    x = keras.layers.Dropout(
        dropout, seed=sub_seed(seed, 0), dtype=dtype, name="embedding_dropout"
    )(x)
    x = Encoder(
        num_layers=num_layers,
        hidden_dim=hidden_dim,
        num_heads=num_heads,
        intermediate_dim=intermediate_dim,
        dropout=dropout,
        activation=activation,
        normalize_first=normalize_first,
        kernel_initializer=clone_initializer(kernel_initializer),
        bias_initializer=clone_initializer(bias_initializer),
        seed=sub_seed(seed, 100),
        dtype=dtype,
        name="encoder",
    )(x, padding_mask=padding_mask)  # (B, T, D)
    x = SequencePooling(pooling, dtype=dtype, name="pooling")(x, padding_mask=padding_mask)
    x = keras.layers.Dropout(dropout, seed=sub_seed(seed, 1), dtype=dtype, name="pooled_dropout")(x)
    x = keras.layers.Dense(
        num_classes,
        kernel_initializer=clone_initializer(kernel_initializer),
        bias_initializer=clone_initializer(bias_initializer),
        dtype=dtype,
        name="classifier_head",
    )(x)  # (B, C)
    logits = keras.layers.Activation("linear", dtype="float32", name="logits")(x)
    return keras.Model(inputs={"token_ids": token_ids}, outputs=logits, name=name)


def classifier_embedding(model):
    """The token embedding of a `build_classifier` model (its `max_sequence_length` is the
    longest input the model takes)."""
    layer = {layer.name: layer for layer in model.layers}.get("embedding")
    if not isinstance(layer, PositionalEmbedding):
        raise ValueError(
            "Expected a classifier built by `tf_distill.build_classifier` (with a "
            f"PositionalEmbedding named 'embedding'). Received: {model.name!r}."
        )
    return layer
