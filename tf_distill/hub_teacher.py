"""A keras-hub text classifier as the teacher, with a tokenizer of its own.

The teacher is `keras_hub.models.BertTextClassifier` (a `BertBackbone` of the config's
size) with keras-hub's `BertTokenizer`, whose WordPiece vocabulary is learnt from the
training texts (`keras_hub.tokenizers.compute_word_piece_vocabulary`), or a text classifier
loaded from a local keras-hub preset directory, tokenizer included. Nothing is downloaded.

The student keeps tf_distill's own tokenizer and a small vocabulary: class logits do not
depend on the tokenizer, so each example carries both id sets (`teacher_inputs`) or the
teacher's class probabilities are computed once (`class_log_probs`).
"""

import logging

import numpy as np

_LOG = logging.getLogger(__name__)

BERT_RESERVED = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def bert_vocabulary(texts, vocabulary_size, lowercase=True):
    """A WordPiece vocabulary for keras-hub's `BertTokenizer`, learnt from `texts`."""
    import tensorflow as tf
    from keras_hub.tokenizers import compute_word_piece_vocabulary

    return compute_word_piece_vocabulary(
        tf.data.Dataset.from_tensor_slices(list(texts)).batch(1000),
        vocabulary_size,
        lowercase=lowercase,
        reserved_tokens=BERT_RESERVED,
    )


def bert_preprocessor(vocabulary, sequence_length, lowercase=True):
    """keras-hub's BERT tokenizer and packer ([CLS] text [SEP], padded) as one layer."""
    import keras_hub

    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=lowercase)
    return keras_hub.models.BertTextClassifierPreprocessor(
        tokenizer, sequence_length=sequence_length
    )


def build_bert_teacher(
    preprocessor, num_classes, num_layers, num_heads, hidden_dim, intermediate_dim, dropout
):
    """A `BertTextClassifier` returning logits, its backbone sized as given."""
    import keras_hub

    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=preprocessor.tokenizer.vocabulary_size(),
        num_layers=num_layers,
        num_heads=num_heads,
        hidden_dim=hidden_dim,
        intermediate_dim=intermediate_dim,
        dropout=dropout,
        max_sequence_length=preprocessor.sequence_length,
    )
    return keras_hub.models.BertTextClassifier(
        backbone, num_classes, preprocessor=preprocessor, activation=None, dropout=dropout
    )


def load_preset_teacher(preset, num_classes):
    """A text classifier (with its preprocessor) from a local keras-hub preset directory."""
    import keras_hub

    model = keras_hub.models.TextClassifier.from_preset(preset, num_classes=num_classes)
    if model.preprocessor is None:
        raise ValueError(
            f"teacher.preset {preset!r} holds no preprocessor (tokenizer): save the preset "
            "with its preprocessor (TextClassifier.save_to_preset with one attached)."
        )
    return model


def teacher_inputs(preprocessor, texts, batch_size=256):
    """The teacher's input arrays for `texts`: `{"token_ids", "segment_ids",
    "padding_mask"}`, each (N, L) at the preprocessor's sequence length."""
    import tensorflow as tf

    parts = {}
    for start in range(0, len(texts), batch_size):
        batch = preprocessor(tf.constant(list(texts[start : start + batch_size])))
        if isinstance(batch, tuple):  # (x, y, sample_weight) packing
            batch = batch[0]
        for name, value in batch.items():
            parts.setdefault(name, []).append(np.asarray(value))
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


def is_hub_model(model):
    """True for a keras-hub task model (it carries a `backbone`)."""
    return hasattr(model, "backbone")
