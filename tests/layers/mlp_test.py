"""Tests for kaml_tf.layers.mlp."""

import numpy as np
import pytest

import kaml_tf  # noqa: F401
import tensorflow as tf

from kaml_tf.layers import mlp


def test_hand_computed_with_ones():
  layer = mlp.MLP((2, 1), activation="relu", kernel_initializer="ones")
  # [1, 2] -> relu([3, 3]) -> relu(6); [-5, 1] -> relu([-4, -4]) = [0, 0] -> 0.
  out = layer(tf.constant([[1.0, 2.0], [-5.0, 1.0]]))
  np.testing.assert_array_equal(out.numpy(), [[6.0], [0.0]])


def test_empty_units_is_identity_and_dropout_only_in_training():
  x = tf.ones((2, 3))
  assert mlp.MLP(())(x) is x
  layer = mlp.MLP((32,), dropout=0.5, kernel_initializer="ones")
  np.testing.assert_array_equal(layer(x, training=False).numpy(), np.full((2, 32), 3.0))
  assert (layer(x, training=True).numpy() == 0).any()


def test_validation_and_config_round_trip():
  with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\), got -0.1"):
    mlp.MLP((4,), dropout=-0.1)
  layer = mlp.MLP((4, 2), activation="tanh", dropout=0.2)
  config = layer.get_config()
  assert mlp.MLP.from_config(config).get_config() == config
