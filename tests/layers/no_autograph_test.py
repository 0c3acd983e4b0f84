"""Tests for kaml_tf.layers.no_autograph: signature kept, AutoGraph kept out."""

import inspect

import pytest

import kaml_tf  # noqa: F401
import tensorflow as tf

from kaml_tf.layers import no_autograph


class _Plain(tf.keras.layers.Layer):
  @no_autograph.no_autograph
  def call(self, inputs):
    """Doubles."""
    return 2.0 * inputs


class _WithTraining(tf.keras.layers.Layer):
  @no_autograph.no_autograph
  def call(self, inputs, training=None):
    return inputs if training else -inputs


def test_keeps_signature_name_and_docstring():
  assert str(inspect.signature(_Plain.call)) == "(self, inputs)"
  assert _Plain.call.__name__ == "call"
  assert _Plain.call.__doc__ == "Doubles."


def test_keras_sees_the_real_arguments():
  # Keras decides from the signature whether to pass `training` / `mask`; a (*args, **kwargs)
  # wrapper would make it pass them to a call that takes neither.
  plain, with_training = _Plain(), _WithTraining()
  assert not plain._expects_training_arg and not plain._expects_mask_arg
  assert with_training._expects_training_arg
  x = tf.keras.Input((2,))
  model = tf.keras.Model(x, with_training(plain(x)))
  ones = tf.ones((1, 2))
  assert model(ones, training=True).numpy().tolist() == [[2.0, 2.0]]
  assert model(ones, training=False).numpy().tolist() == [[-2.0, -2.0]]


class _TensorIf(tf.keras.layers.Layer):
  """A call only AutoGraph can trace: a Python `if` on a tensor value."""

  def call(self, inputs):
    if tf.reduce_sum(inputs) > 0:
      return inputs
    return -inputs


class _TensorIfNoAutograph(_TensorIf):
  call = no_autograph.no_autograph(_TensorIf.call)


def test_autograph_does_not_convert_the_call():
  x = tf.keras.Input((2,))
  tf.keras.Model(x, _TensorIf()(x))  # converted by AutoGraph: traces fine
  with pytest.raises(TypeError, match="tf.Tensor"):
    # Left unconverted, the Python `if` meets a symbolic tensor and fails.
    tf.keras.Model(x, _TensorIfNoAutograph()(x))
