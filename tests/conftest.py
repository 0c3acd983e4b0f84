"""Test-wide set-up: quiet TensorFlow logs, Keras 2, and the repo root on sys.path."""

import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
  sys.path.insert(0, str(ROOT))

import kaml_tf  # noqa: E402,F401  (pins Keras 2 before any test imports TensorFlow)
