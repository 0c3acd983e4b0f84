"""Tests for kaml_tf.layers.ple (stacked CGC levels)."""

import numpy as np
import pytest

import kaml_tf  # noqa: F401
import tensorflow as tf

from kaml_tf.layers import ple


def _hand_set_level_one(layer):
  """Level 1 experts on x = [1, 2]: task 0 -> x_0 = 1, task 1 -> x_1 = 2, shared -> 3."""
  layer.task_experts[0].set_weights(
    [np.array([[[1.0], [0.0]], [[0.0], [1.0]]], np.float32), np.zeros((2, 1), np.float32)]
  )
  layer.shared_experts[0].set_weights(
    [np.ones((1, 2, 1), np.float32), np.zeros((1, 1), np.float32)]
  )


def _zero_gates(layer):
  """All-zero gate kernels: every gate is uniform over its experts."""
  for gate in layer.task_gates + layer.shared_gates:
    gate.set_weights([np.zeros_like(w) for w in gate.get_weights()])


def test_one_level_gates_own_and_shared_experts():
  layer = ple.PLE(num_tasks=2, num_levels=1, expert_units=(1,))
  x = tf.constant([[1.0, 2.0]])
  layer(x)
  _hand_set_level_one(layer)
  _zero_gates(layer)
  # Action 0 mixes its expert (1) and the shared one (3): 2; action 1: (2 + 3) / 2 = 2.5.
  # Action 0 never sees action 1's expert.
  np.testing.assert_allclose(layer(x).numpy(), [[[2.0], [2.5]]], rtol=1e-6)
  assert not layer.shared_gates  # the last level has no shared gate


def test_two_levels_hand_computed():
  layer = ple.PLE(num_tasks=2, num_levels=2, expert_units=(1,))
  x = tf.constant([[1.0, 2.0]])
  layer(x)
  _hand_set_level_one(layer)
  _zero_gates(layer)
  for experts in (layer.task_experts[1], layer.shared_experts[1]):
    experts.set_weights(
      [np.ones_like(w) if w.ndim == 3 else np.zeros_like(w) for w in experts.get_weights()]
    )
  # Level 1: task outputs [2, 2.5]; the shared gate mixes all three experts: (1 + 2 + 3) / 3.
  # Level 2 (identity experts): action j mixes its input and the shared input 2:
  # (2 + 2) / 2 = 2 and (2.5 + 2) / 2 = 2.25.
  np.testing.assert_allclose(layer(x).numpy(), [[[2.0], [2.25]]], rtol=1e-6)
  assert len(layer.shared_gates) == 1


def test_gates_are_softmax_over_own_plus_shared_experts():
  layer = ple.PLE(
    num_tasks=3, num_levels=2, num_task_experts=2, num_shared_experts=3, expert_units=(4,)
  )
  x = tf.random.stateless_normal((5, 6), seed=[7, 7])
  assert layer(x).shape == (5, 3, 4)
  gates = layer.task_gates[0](x).numpy()
  assert gates.shape == (5, 3, 2 + 3)
  np.testing.assert_allclose(gates.sum(-1), np.ones((5, 3)), rtol=1e-6)
  assert layer.shared_gates[0](x).shape == (5, 1, 3 * 2 + 3)
  assert layer.task_experts[0].num_heads == 3 * 2


def test_validation_and_config_round_trip():
  with pytest.raises(ValueError, match="num_levels must be a positive integer, got 0"):
    ple.PLE(2, num_levels=0)
  layer = ple.PLE(
    4, num_levels=3, num_task_experts=2, num_shared_experts=1, expert_units=(8, 4), dropout=0.1
  )
  config = layer.get_config()
  assert ple.PLE.from_config(config).get_config() == config
