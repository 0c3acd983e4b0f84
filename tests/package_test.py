"""Tests for the import-time Keras pin in kaml_tf/__init__.py (needs fresh interpreters)."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(code, **env_overrides):
  env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
  env.update(env_overrides, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
  return subprocess.run(
    [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False
  )


def test_import_pins_legacy_keras():
  result = _run("import kaml_tf, tensorflow as tf; print(tf.keras.__name__)")
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip().startswith("tf_keras")


def test_tensorflow_imported_first_is_fine_while_keras_is_untouched():
  # tf.keras resolves lazily on first attribute access, so the pin still takes effect.
  result = _run("import tensorflow as tf, kaml_tf; print(tf.keras.__name__)")
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip().startswith("tf_keras")


@pytest.mark.parametrize("env", [{}, {"TF_USE_LEGACY_KERAS": "0"}])
def test_keras3_already_resolved_is_a_clear_error(env):
  result = _run("import tensorflow as tf; tf.keras.layers; import kaml_tf", **env)
  assert result.returncode != 0
  assert "kaml_tf needs Keras 2 (tf-keras)" in result.stderr
  assert "TF_USE_LEGACY_KERAS=1" in result.stderr
