"""Models: the typed config and the builder wiring the layers into a functional model."""

from kaml_tf.models.builder import HKE_INDICATOR
from kaml_tf.models.builder import OUTPUT_NAME
from kaml_tf.models.builder import build_model
from kaml_tf.models.builder import count_parameters
from kaml_tf.models.config import BACKBONES
from kaml_tf.models.config import ModelConfig

__all__ = [
  "BACKBONES",
  "HKE_INDICATOR",
  "OUTPUT_NAME",
  "ModelConfig",
  "build_model",
  "count_parameters",
]
