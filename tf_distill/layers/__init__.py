"""Transformer building blocks of tf_distill."""

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
