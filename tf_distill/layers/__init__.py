"""Transformer building blocks of tf_distill (importing this registers them with Keras)."""

import keras

if keras.backend.backend() != "tensorflow":
    raise ImportError(
        f"tf_distill runs on Keras' TensorFlow backend, but KERAS_BACKEND is "
        f"{keras.backend.backend()!r}: unset KERAS_BACKEND or set it to 'tensorflow'."
    )

from tf_distill.layers.feed_forward import FeedForward
from tf_distill.layers.multi_head_attention import MultiHeadAttention, masked_softmax
from tf_distill.layers.padding_mask import PaddingMask
from tf_distill.layers.pooling import SequencePooling
from tf_distill.layers.positional_embedding import PositionalEmbedding, sinusoidal_table
from tf_distill.layers.transformer_layers import DecoderLayer, EncoderLayer
from tf_distill.layers.transformer_stacks import Decoder, Encoder

__all__ = [
    "Decoder",
    "DecoderLayer",
    "Encoder",
    "EncoderLayer",
    "FeedForward",
    "MultiHeadAttention",
    "PaddingMask",
    "PositionalEmbedding",
    "SequencePooling",
    "masked_softmax",
    "sinusoidal_table",
]
