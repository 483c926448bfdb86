"""Data for tf_distill: a built-in corpus, readers for your own data, a tokenizer, tf.data.

`make_seq2seq_dataset` and `make_classification_dataset` import TensorFlow; they load on
first use so that reading and checking data (and the CLI's config errors) stay fast.
"""

import importlib

from tf_distill.data.errors import DataError
from tf_distill.data.readers import (
    ClassificationData,
    read_classification_tsv,
    read_parallel,
    read_tfds,
    read_tsv,
)
from tf_distill.data.splits import Splits, hash_split, split_pairs
from tf_distill.data.synthetic import generate_corpus
from tf_distill.data.tokenizer import SPECIAL_TOKENS, Tokenizer

_LAZY = {
    "make_seq2seq_dataset": "tf_distill.data.datasets",
    "make_classification_dataset": "tf_distill.data.datasets",
}


def __getattr__(name):
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'tf_distill.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ClassificationData",
    "DataError",
    "SPECIAL_TOKENS",
    "Splits",
    "Tokenizer",
    "generate_corpus",
    "hash_split",
    "make_classification_dataset",
    "make_seq2seq_dataset",
    "read_classification_tsv",
    "read_parallel",
    "read_tfds",
    "read_tsv",
    "split_pairs",
]
