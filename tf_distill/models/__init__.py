"""Model builders of tf_distill."""

from tf_distill.models.classifier import build_classifier
from tf_distill.models.transformer import build_transformer

__all__ = ["build_classifier", "build_transformer"]
