"""kaml-tf: multi-task CVR prediction on incomplete, skewed multi-label ad data (KAML).

Importing this package pins Keras 2 (tf-keras): TensorFlow Recommenders refuses Keras 3 and
Keras 3 fails under MultiWorkerMirroredStrategy, so `TF_USE_LEGACY_KERAS=1` must be set before
TensorFlow is first imported. If TensorFlow was already imported with Keras 3 we stop with an
actionable message instead of failing later with an obscure error.
"""

import os
import sys

__version__ = "0.1.0"


def _pin_legacy_keras() -> None:
  """Sets TF_USE_LEGACY_KERAS=1, or raises if TensorFlow already chose Keras 3."""
  already_imported = "tensorflow" in sys.modules
  previous = os.environ.get("TF_USE_LEGACY_KERAS")
  os.environ["TF_USE_LEGACY_KERAS"] = "1"
  if already_imported and previous not in ("1", "true", "True"):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    if not tf.keras.__name__.startswith("tf_keras"):
      raise ImportError(
        "kaml_tf needs Keras 2 (tf-keras), but TensorFlow was imported before kaml_tf with "
        f"Keras 3 ({tf.keras.__name__}). Set TF_USE_LEGACY_KERAS=1 in the environment, or "
        "import kaml_tf before tensorflow."
      )


_pin_legacy_keras()
