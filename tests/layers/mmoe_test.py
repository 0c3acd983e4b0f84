"""Tests for kaml_tf.layers.mmoe (paper eq. 2-3)."""

import numpy as np
import pytest

import kaml_tf  # noqa: F401
import tensorflow as tf

from kaml_tf.layers import mmoe


def test_gates_sum_to_one_per_action_and_sample():
  layer = mmoe.MMoE(num_tasks=3, num_experts=4, expert_units=(5,))
  x = tf.random.stateless_normal((6, 7), seed=[1, 1]) * 3.0
  gates = layer.gate_weights(x).numpy()
  assert gates.shape == (6, 3, 4)
  assert (gates > 0).all()
  np.testing.assert_allclose(gates.sum(axis=-1), np.ones((6, 3)), rtol=1e-6)


def test_hand_computed_gated_sum():
  layer = mmoe.MMoE(num_tasks=2, num_experts=2, expert_units=(1,))
  x = tf.constant([[2.0, 3.0]])
  layer(x)
  # Expert 0 keeps x_0, expert 1 keeps x_1: f = [2, 3].
  layer.experts.set_weights(
    [np.array([[[1.0], [0.0]], [[0.0], [1.0]]], np.float32), np.zeros((2, 1), np.float32)]
  )
  # Gate of action 0 is all zeros (uniform); gate of action 1 gives logits [ln 3, 0]
  # (weight ln(3) / 2 on x_0 = 2), i.e. g_1 = [3/4, 1/4].
  gate_kernel = np.zeros((2, 2, 2), np.float32)
  gate_kernel[1, 0, 0] = np.log(3.0) / 2.0
  layer.gates.set_weights([gate_kernel])
  np.testing.assert_allclose(layer.gate_weights(x).numpy(), [[[0.5, 0.5], [0.75, 0.25]]], rtol=1e-6)
  # h_0 = 0.5 * 2 + 0.5 * 3 = 2.5; h_1 = 0.75 * 2 + 0.25 * 3 = 2.25 (eq. 3).
  np.testing.assert_allclose(layer(x).numpy(), [[[2.5], [2.25]]], rtol=1e-6)


def test_matches_separate_experts_and_gates():
  layer = mmoe.MMoE(num_tasks=3, num_experts=2, expert_units=(4, 3))
  x = tf.random.stateless_normal((5, 6), seed=[2, 2])
  h = layer(x).numpy()
  (k0, b0), (k1, b1) = [d.get_weights() for d in layer.experts.dense_layers]
  gate_kernel = layer.gates.get_weights()[0]

  def relu(v):
    return np.maximum(v, 0.0)

  experts = [relu(relu(x.numpy() @ k0[m] + b0[m]) @ k1[m] + b1[m]) for m in range(2)]
  for j in range(3):
    logits = x.numpy() @ gate_kernel[j]
    g = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected = g[:, :1] * experts[0] + g[:, 1:] * experts[1]
    np.testing.assert_allclose(h[:, j], expected, rtol=1e-5, atol=1e-6)


def test_validation_and_config_round_trip():
  with pytest.raises(ValueError, match="num_experts must be a positive integer, got 0"):
    mmoe.MMoE(2, num_experts=0)
  with pytest.raises(ValueError, match=r"expert_units needs at least one layer, got \(\)"):
    mmoe.MMoE(2, expert_units=())
  with pytest.raises(ValueError, match=r"expected x of shape \(batch, d_in\)"):
    mmoe.MMoE(2)(tf.zeros((1, 2, 3)))
  layer = mmoe.MMoE(5, num_experts=3, expert_units=(8, 4), activation="gelu", dropout=0.2)
  config = layer.get_config()
  assert mmoe.MMoE.from_config(config).get_config() == config
