"""Tests for kaml_tf.layers.towers (paper eq. 4)."""

import numpy as np
import pytest

import kaml_tf  # noqa: F401
import tensorflow as tf

from kaml_tf.layers import towers


def test_hand_computed_per_action_logits():
  layer = towers.Towers(2, units=(1,), kernel_initializer="ones")
  h = tf.constant([[[1.0, 2.0], [3.0, 4.0]], [[-1.0, -2.0], [0.5, 0.5]]])  # (batch, N, d)
  # Action j: relu(sum h_j) then a logit of weight 1, bias 0.
  np.testing.assert_array_equal(layer(h).numpy(), [[3.0, 7.0], [0.0, 1.0]])


def test_shared_input_and_no_hidden_layer():
  layer = towers.Towers(3, units=(), kernel_initializer="ones")
  out = layer(tf.constant([[1.0, 2.0]]))  # shared-bottom output read by every tower
  np.testing.assert_array_equal(out.numpy(), [[3.0, 3.0, 3.0]])


def test_towers_have_separate_weights():
  layer = towers.Towers(2, units=(3,))
  layer(tf.zeros((1, 2, 4)))
  assert layer.mlp.dense_layers[0].kernel.shape == (2, 4, 3)
  assert layer.logit.kernel.shape == (2, 3, 1)


def test_validation_and_config_round_trip():
  with pytest.raises(ValueError, match="num_heads must be a positive integer, got -1"):
    towers.Towers(-1)
  layer = towers.Towers(4, units=(8, 2), activation="elu", dropout=0.3)
  config = layer.get_config()
  assert towers.Towers.from_config(config).get_config() == config
