"""Model builders of tf_distill, and accessors for the parts of the models they build."""

from tf_distill.models.classifier import build_classifier, classifier_embedding
from tf_distill.models.transformer import Seq2SeqParts, build_transformer, seq2seq_parts

__all__ = [
    "Seq2SeqParts",
    "build_classifier",
    "build_transformer",
    "classifier_embedding",
    "seq2seq_parts",
]
