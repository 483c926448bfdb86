"""`build_transformer`: an encoder-decoder Transformer that outputs logits.

Legend: B batch, T target length, S source length, D model width, V target vocabulary.
"""

import collections

import keras

from tf_distill.layers import Decoder, Encoder, PaddingMask, PositionalEmbedding
from tf_distill.layers.validation import (
    check_choice,
    check_dropout,
    check_heads_divide,
    check_positive,
    clone_initializer,
    sub_seed,
)


def build_transformer(
    vocabulary_size,
    max_sequence_length,
    num_layers,
    num_heads,
    hidden_dim,
    intermediate_dim,
    dropout=0.1,
    target_vocabulary_size=None,
    num_encoder_layers=None,
    num_decoder_layers=None,
    tie_embeddings=False,
    position_embedding="learned",
    normalize_first=True,
    activation="gelu",
    pad_token_id=0,
    kernel_initializer="glorot_uniform",
    bias_initializer="zeros",
    seed=None,
    dtype=None,
    name="transformer",
):
    """Builds a sequence-to-sequence Transformer as a functional `keras.Model`.

    Inputs are `encoder_token_ids` (B, S) and `decoder_token_ids` (B, T), int32, padded with
    `pad_token_id` (0); the decoder input is the target shifted right (it starts with the
    start token). The output, named `logits`, is float32 (B, T, V) with no softmax, because
    distillation needs temperature-scaled log-probabilities of raw logits. Position t of the
    output depends only on decoder tokens <= t and on real (non-pad) source tokens.

    Args:
        vocabulary_size: source vocabulary size (and the target's unless
            `target_vocabulary_size` is given).
        max_sequence_length: longest source or target sequence.
        num_layers: encoder and decoder depth (each can be overridden below).
        num_heads: attention heads; must divide `hidden_dim`.
        hidden_dim: model width D.
        intermediate_dim: feed-forward inner width.
        dropout: dropout rate in [0, 1) for embeddings, attention and blocks.
        target_vocabulary_size: target vocabulary size V when it differs from the source's.
        num_encoder_layers: encoder depth; defaults to `num_layers`.
        num_decoder_layers: decoder depth; defaults to `num_layers`.
        tie_embeddings: project decoder states to logits with the transposed decoder token
            embedding instead of a separate Dense layer (fewer parameters).
        position_embedding: `"learned"` or `"sinusoidal"`.
        normalize_first: pre-norm (True) or post-norm (False) residual blocks.
        activation: feed-forward activation.
        pad_token_id: the padding id the masks are derived from.
        kernel_initializer: initializer of every kernel (attention, feed-forward, output
            projection); the embeddings keep `PositionalEmbedding`'s own.
        bias_initializer: initializer of every bias.
        seed: seed of every dropout (each layer derives its own from it); None: unseeded.
        dtype: dtype policy for the layers (e.g. `"mixed_float16"`); the logits stay float32.
        name: model name.

    Returns:
        A `keras.Model` mapping `{"encoder_token_ids", "decoder_token_ids"}` to logits.

    Example:
    >>> model = build_transformer(vocabulary_size=100, max_sequence_length=16, num_layers=1,
    ...                           num_heads=2, hidden_dim=16, intermediate_dim=32)
    >>> sorted(model.input_names) if hasattr(model, "input_names") else None
    """
    check_positive(
        vocabulary_size=vocabulary_size,
        max_sequence_length=max_sequence_length,
        num_layers=num_layers,
        intermediate_dim=intermediate_dim,
    )
    check_heads_divide(hidden_dim, num_heads)
    check_dropout(dropout)
    check_choice(position_embedding, ("learned", "sinusoidal"), "position_embedding")
    target_vocabulary_size = target_vocabulary_size or vocabulary_size
    num_encoder_layers = num_encoder_layers or num_layers
    num_decoder_layers = num_decoder_layers or num_layers
    check_positive(
        target_vocabulary_size=target_vocabulary_size,
        num_encoder_layers=num_encoder_layers,
        num_decoder_layers=num_decoder_layers,
    )
    stack_args = dict(
        hidden_dim=hidden_dim,
        num_heads=num_heads,
        intermediate_dim=intermediate_dim,
        dropout=dropout,
        activation=activation,
        normalize_first=normalize_first,
        kernel_initializer=kernel_initializer,
        bias_initializer=bias_initializer,
        dtype=dtype,
    )

    encoder_token_ids = keras.Input(shape=(None,), dtype="int32", name="encoder_token_ids")
    decoder_token_ids = keras.Input(shape=(None,), dtype="int32", name="decoder_token_ids")
    encoder_padding_mask = PaddingMask(pad_token_id, name="encoder_padding_mask")(encoder_token_ids)
    decoder_padding_mask = PaddingMask(pad_token_id, name="decoder_padding_mask")(decoder_token_ids)

    # Encoder.
    x = PositionalEmbedding(
        vocabulary_size,
        max_sequence_length,
        hidden_dim,
        position_embedding=position_embedding,
        dtype=dtype,
        name="encoder_embedding",
    )(encoder_token_ids)  # (B, S, D)
    x = keras.layers.Dropout(
        dropout, seed=sub_seed(seed, 0), dtype=dtype, name="encoder_embedding_dropout"
    )(x)
    encoder_output = Encoder(
        num_layers=num_encoder_layers, seed=sub_seed(seed, 100), name="encoder", **stack_args
    )(x, padding_mask=encoder_padding_mask)  # (B, S, D)

    # Decoder.
    decoder_embedding = PositionalEmbedding(
        target_vocabulary_size,
        max_sequence_length,
        hidden_dim,
        position_embedding=position_embedding,
        dtype=dtype,
        name="decoder_embedding",
    )
    y = decoder_embedding(decoder_token_ids)  # (B, T, D)
    y = keras.layers.Dropout(
        dropout, seed=sub_seed(seed, 1), dtype=dtype, name="decoder_embedding_dropout"
    )(y)
    y = Decoder(
        num_layers=num_decoder_layers, seed=sub_seed(seed, 1000), name="decoder", **stack_args
    )(
        y,
        encoder_output,
        decoder_padding_mask=decoder_padding_mask,
        encoder_padding_mask=encoder_padding_mask,
    )  # (B, T, D)

    # Output projection to the target vocabulary.
    if tie_embeddings:
        logits = decoder_embedding(y, reverse=True)  # (B, T, V)
    else:
        logits = keras.layers.Dense(
            target_vocabulary_size,
            kernel_initializer=clone_initializer(kernel_initializer),
            bias_initializer=clone_initializer(bias_initializer),
            dtype=dtype,
            name="output_projection",
        )(y)  # (B, T, V)
    # Logits leave the model in float32 even under mixed precision: the losses need it.
    logits = keras.layers.Activation("linear", dtype="float32", name="logits")(logits)
    return keras.Model(
        inputs={"encoder_token_ids": encoder_token_ids, "decoder_token_ids": decoder_token_ids},
        outputs=logits,
        name=name,
    )


class Seq2SeqParts(
    collections.namedtuple(
        "Seq2SeqParts",
        [
            "encoder_embedding",
            "encoder_padding_mask",
            "encoder",
            "decoder_embedding",
            "decoder",
            "output_projection",
        ],
    )
):
    """The layers of a `build_transformer` model that decoding and export call.

    `output_projection` is the `Dense` layer, or None when the model ties its output
    projection to `decoder_embedding` (logits = `decoder_embedding(states, reverse=True)`).
    """

    @property
    def max_sequence_length(self):
        """The longest source the encoder takes (and target the decoder produces)."""
        return int(self.encoder_embedding.max_sequence_length)


# The layers `build_transformer` names, and their types: the one place that knows them.
_PART_TYPES = {
    "encoder_embedding": PositionalEmbedding,
    "encoder_padding_mask": PaddingMask,
    "encoder": Encoder,
    "decoder_embedding": PositionalEmbedding,
    "decoder": Decoder,
}


def seq2seq_parts(model):
    """Returns the `Seq2SeqParts` of a model built by `build_transformer` (also one
    loaded back from a `.keras` file).

    Raises:
        ValueError: if `model` lacks one of the layers `build_transformer` creates, or has a
            layer of that name of another type.
    """
    layers = {layer.name: layer for layer in getattr(model, "layers", ())}
    problems = []
    found = {}
    for name, cls in _PART_TYPES.items():
        if name not in layers:
            problems.append(f"no layer named {name!r}")
            continue
        found[name] = layers[name]
        if not isinstance(found[name], cls):
            problems.append(f"{name!r} is a {type(found[name]).__name__}, not a {cls.__name__}")
    projection = layers.get("output_projection")
    if projection is not None and not isinstance(projection, keras.layers.Dense):
        problems.append(f"'output_projection' is a {type(projection).__name__}, not a Dense")
    if problems:
        raise ValueError(
            "Decoding needs a sequence-to-sequence model built by "
            "`tf_distill.build_transformer`. Received: "
            f"{type(model).__name__} {getattr(model, 'name', '')!r} with "
            f"{'; '.join(problems)}."
        )
    return Seq2SeqParts(output_projection=projection, **found)
