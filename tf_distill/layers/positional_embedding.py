"""Token embedding plus position information, learned or sinusoidal.

Legend: B batch, T sequence length, D model width, V vocabulary.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from tf_distill.layers.validation import check_choice, check_positive


def sinusoidal_table(length, width):
    """The (length, width) table of Vaswani et al. (2017): sin on even, cos on odd columns."""
    positions = np.arange(length, dtype=np.float64)[:, None]
    rates = 1.0 / np.power(10000.0, (2 * (np.arange(width) // 2)) / width)
    angles = positions * rates[None, :]
    table = np.zeros((length, width), dtype=np.float64)
    table[:, 0::2] = np.sin(angles[:, 0::2])
    table[:, 1::2] = np.cos(angles[:, 1::2])
    return table.astype("float32")


@keras.saving.register_keras_serializable(package="tf_distill")
class PositionalEmbedding(keras.layers.Layer):
    """Maps token ids to vectors and adds a position signal.

    The token embedding is scaled by sqrt(D) as in the original Transformer, so that the
    position signal does not drown it. With `reverse=True` the layer instead maps hidden
    states (B, T, D) to logits (B, T, V) with the transposed token matrix, which is how a
    model ties its output projection to its input embedding.

    This layer produces no Keras mask; models derive padding masks from pad id 0
    (`PaddingMask`) and pass them explicitly.

    Args:
        vocabulary_size: number of token ids V.
        max_sequence_length: longest sequence the position table covers.
        hidden_dim: width D of the vectors.
        position_embedding: `"learned"` (a trained table) or `"sinusoidal"` (fixed).
        embeddings_initializer: initializer of the token (and learned position) tables.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: (B, T) int token ids, or (B, T, D) hidden states when `reverse=True`.
        start_index: position of the first token (used by incremental decoding).
        reverse: map hidden states to logits instead.

    Returns:
        (B, T, D) embeddings, or (B, T, V) logits when `reverse=True`.

    Example:
    >>> emb = PositionalEmbedding(vocabulary_size=50, max_sequence_length=16, hidden_dim=8)
    >>> emb(np.array([[5, 6, 0]])).shape
    TensorShape([1, 3, 8])
    """

    def __init__(
        self,
        vocabulary_size,
        max_sequence_length,
        hidden_dim,
        position_embedding="learned",
        embeddings_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive(
            vocabulary_size=vocabulary_size,
            max_sequence_length=max_sequence_length,
            hidden_dim=hidden_dim,
        )
        check_choice(position_embedding, ("learned", "sinusoidal"), "position_embedding")
        self.vocabulary_size = vocabulary_size
        self.max_sequence_length = max_sequence_length
        self.hidden_dim = hidden_dim
        self.position_embedding = position_embedding
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)

    def build(self, inputs_shape=None):
        self.token_embeddings = self.add_weight(
            name="token_embeddings",
            shape=(self.vocabulary_size, self.hidden_dim),
            initializer=self.embeddings_initializer,
        )
        if self.position_embedding == "learned":
            self.position_embeddings = self.add_weight(
                name="position_embeddings",
                shape=(self.max_sequence_length, self.hidden_dim),
                initializer=self.embeddings_initializer,
            )
        else:
            self.position_embeddings = tf.constant(
                sinusoidal_table(self.max_sequence_length, self.hidden_dim)
            )
        self.built = True

    # No compute_output_shape: Keras would hand it every call argument as a `*_shape`,
    # and `start_index` / `reverse` are no tensors; symbolic calls trace `call` instead.

    def call(self, inputs, start_index=0, reverse=False):
        if reverse:
            kernel = tf.cast(self.token_embeddings, self.compute_dtype)
            return tf.einsum("btd,vd->btv", inputs, kernel)  # (B, T, V)
        length = inputs.shape[1] if len(inputs.shape) > 1 else None
        if length is not None and isinstance(start_index, int):
            # A static check only: a runtime assert would put a non-builtin op in TFLite.
            if start_index + length > self.max_sequence_length:
                raise ValueError(
                    f"The input has {start_index + length} positions, but `{self.name}` "
                    f"takes at most {self.max_sequence_length} (its max_sequence_length). "
                    "Cut the token ids to that length first (Tokenizer.encode_batch(texts, "
                    "max_length) does), or build the model with a larger "
                    "max_sequence_length."
                )
        token_ids = tf.cast(inputs, tf.int32)
        tokens = tf.gather(tf.cast(self.token_embeddings, self.compute_dtype), token_ids)
        tokens = tokens * tf.cast(math.sqrt(self.hidden_dim), self.compute_dtype)  # (B, T, D)
        length = tf.shape(token_ids)[1]
        positions = tf.slice(
            tf.cast(self.position_embeddings, self.compute_dtype),
            tf.stack([tf.cast(start_index, tf.int32), 0]),
            tf.stack([length, self.hidden_dim]),
        )  # (T, D)
        return tokens + positions[tf.newaxis]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "max_sequence_length": self.max_sequence_length,
                "hidden_dim": self.hidden_dim,
                "position_embedding": self.position_embedding,
                "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
            }
        )
        return config
