"""Tests for kaml_tf.layers.hke (paper eq. 9-10)."""

import numpy as np
import pytest

import kaml_tf  # noqa: F401
import tensorflow as tf

from kaml_tf.layers import hke


def _ones_tower(**kwargs):
  return hke.HKETowers(1, sub_tower_units=(1,), final_units=(), kernel_initializer="ones", **kwargs)


def test_merge_is_indicator_weighted_hand_computed():
  layer = _ones_tower()
  h = tf.constant([[[1.0, 2.0]]] * 3)  # (batch=3, N=1, d=2)
  indicator = tf.constant([[1.0], [0.0], [0.5]])
  layer([h, indicator])
  layer.extended.dense_layers[0].kernel.assign(2.0 * tf.ones((1, 2, 1)))
  # original = relu(1 + 2) = 3, extended = relu(2 + 4) = 6; logit = merge (weight 1, bias 0):
  # M = 1 -> 3, M = 0 -> 6, M = 0.5 -> 4.5 (eq. 10).
  np.testing.assert_array_equal(layer([h, indicator]).numpy(), [[3.0], [6.0], [4.5]])


def test_extended_weights_do_not_touch_original_samples():
  # tanh: no dead ReLU could hide a change of the extended path.
  layer = hke.HKETowers(3, sub_tower_units=(4,), final_units=(3,), activation="tanh")
  h = tf.random.stateless_normal((4, 3, 5), seed=[3, 4])
  indicator = tf.constant([[1, 0, 0], [0, 1, 0], [0, 0, 0], [0, 0, 1]], tf.float32)
  before = layer([h, indicator]).numpy()
  layer.extended.set_weights([w + 0.5 for w in layer.extended.get_weights()])
  after = layer([h, indicator]).numpy()
  original = indicator.numpy() == 1
  np.testing.assert_array_equal(after[original], before[original])
  assert (after[~original] != before[~original]).all()


def test_group_size_routes_consecutive_heads():
  # Two actions with two learners each: heads (0, 1) follow column 0, heads (2, 3) column 1.
  layer = hke.HKETowers(4, sub_tower_units=(2,), final_units=(), group_size=2, activation="tanh")
  h = tf.random.stateless_normal((2, 4, 3), seed=[5, 6])
  indicator = tf.constant([[1.0, 0.0], [0.0, 1.0]])
  before = layer([h, indicator]).numpy()
  layer.extended.set_weights([w - 0.7 for w in layer.extended.get_weights()])
  after = layer([h, indicator]).numpy()
  routed_original = np.array([[True, True, False, False], [False, False, True, True]])
  np.testing.assert_array_equal(after[routed_original], before[routed_original])
  assert (after[~routed_original] != before[~routed_original]).all()


def test_validation():
  with pytest.raises(ValueError, match=r"sub_tower_units needs at least one layer, got \(\)"):
    hke.HKETowers(2, sub_tower_units=())
  with pytest.raises(ValueError, match="num_heads=5 is not a multiple of group_size=2"):
    hke.HKETowers(5, group_size=2)
  with pytest.raises(ValueError, match=r"indicator must be \(batch, 3\)"):
    hke.HKETowers(3)([tf.zeros((1, 3, 2)), tf.zeros((1, 2))])


def test_get_config_round_trip():
  layer = hke.HKETowers(
    6, sub_tower_units=(8, 4), final_units=(2,), activation="selu", dropout=0.1, group_size=3
  )
  config = layer.get_config()
  assert hke.HKETowers.from_config(config).get_config() == config
