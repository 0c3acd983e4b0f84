"""Tests for kaml_tf.layers.taml (reconstructed TAML: learners, fusion, self-distillation)."""

import numpy as np
import pytest

import kaml_tf  # noqa: F401
import tensorflow as tf

from kaml_tf.layers import taml


def test_learners_gate_shared_task_and_own_experts():
  layer = taml.TAML(num_tasks=2, num_learners=2, expert_units=(1,))
  x = tf.constant([[1.0]])
  layer(x)
  # Expert heads: shared s, task experts t0, t1, learner experts l00, l01, l10, l11,
  # each a 1x1 kernel on x = 1 (then ReLU), so each expert outputs its kernel value.
  values = np.array([1.0, 2.0, 4.0, 3.0, 6.0, 9.0, 12.0], np.float32)
  layer.experts.set_weights([values.reshape(7, 1, 1), np.zeros((7, 1), np.float32)])
  layer.gates.set_weights([np.zeros((4, 1, 3), np.float32)])  # uniform gates
  # Learner (j, l) averages [s, t_j, l_jl]: (1+2+3)/3, (1+2+6)/3, (1+4+9)/3, (1+4+12)/3.
  np.testing.assert_allclose(layer(x).numpy()[..., 0], [[2.0, 3.0, 14.0 / 3, 17.0 / 3]], rtol=1e-6)
  gates = layer.gate_weights(x).numpy()
  assert gates.shape == (1, 4, 3)
  np.testing.assert_allclose(gates, np.full((1, 4, 3), 1.0 / 3), rtol=1e-6)


def test_expert_counts():
  layer = taml.TAML(
    num_tasks=3,
    num_learners=2,
    num_shared_experts=2,
    num_task_experts=3,
    num_learner_experts=2,
    expert_units=(4,),
  )
  assert layer(tf.zeros((5, 6))).shape == (5, 3 * 2, 4)
  assert layer.experts.num_heads == 2 + 3 * 3 + 3 * 2 * 2
  assert layer.gates.kernel.shape == (3 * 2, 6, 2 + 3 + 2)


def test_fusion_is_the_mean_of_learner_logits():
  layer = taml.LearnerFusion(num_tasks=2, num_learners=2, distillation_weight=0.0)
  fused = layer(tf.constant([[1.0, 3.0, -2.0, 4.0]]))
  np.testing.assert_array_equal(fused.numpy(), [[2.0, 1.0]])
  assert not layer.losses


def test_self_distillation_hand_computed():
  layer = taml.LearnerFusion(num_tasks=2, num_learners=2, distillation_weight=0.1)
  ln3 = np.log(3.0)
  # Sample 0: action 0 learners [ln 3, -ln 3] -> fused 0, teacher p = 1/2, students 3/4 and
  # 1/4: KL(1/2 || 3/4) = KL(1/2 || 1/4) = ln(4/3) / 2. Action 1 learners agree: KL = 0.
  # Sample 1: all learners agree: 0. Mean over samples and learners, sum over actions:
  # (ln(4/3) / 2) / 2 samples.
  logits = tf.constant([[ln3, -ln3, 2.0, 2.0], [0.5, 0.5, -1.0, -1.0]])
  with tf.GradientTape() as tape:
    tape.watch(logits)
    layer(logits)
    (loss,) = layer.losses
  expected = 0.1 * (np.log(4.0 / 3.0) / 2.0) / 2.0
  np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-6)
  # d/ds_l of KL(p || sigmoid(s_l)) = sigmoid(s_l) - p, over 2 samples x 2 learners.
  grad = tape.gradient(loss, logits).numpy()
  np.testing.assert_allclose(
    grad, 0.1 * np.array([[0.25, -0.25, 0, 0], [0, 0, 0, 0]]) / 4, atol=1e-7
  )


def test_self_distillation_is_stable_for_large_logits():
  loss = taml.self_distillation_loss(tf.constant([[[80.0, -80.0]]]), tf.constant([[0.0]]))
  # Teacher 1/2, learners sigmoid(+-80): KL = 1/2 (softplus(-80) - ln 2) + 1/2 (80 - ln 2)
  # = 40 - ln 2 for each learner (softplus(-80) underflows to 0; a naive log(1 - q) is -inf).
  np.testing.assert_allclose(loss.numpy(), 40.0 - np.log(2.0), rtol=1e-6)


def test_validation_and_config_round_trip():
  with pytest.raises(ValueError, match="num_learners must be a positive integer, got 0"):
    taml.TAML(2, num_learners=0)
  with pytest.raises(ValueError, match="distillation_weight must be a finite number >= 0"):
    taml.LearnerFusion(2, 2, distillation_weight=-1.0)
  for layer in (
    taml.TAML(3, num_learners=3, num_shared_experts=2, expert_units=(8, 4), dropout=0.1),
    taml.LearnerFusion(3, 3, distillation_weight=0.5),
  ):
    config = layer.get_config()
    assert type(layer).from_config(config).get_config() == config
