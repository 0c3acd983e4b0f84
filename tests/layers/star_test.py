"""Tests for kaml_tf.layers.star (STAR, actions as domains)."""

import numpy as np
import pytest

import kaml_tf  # noqa: F401
import tensorflow as tf

from kaml_tf.layers import star


def test_effective_weights_are_the_element_wise_product():
  layer = star.StarDense(num_partitions=3, units=2, activation=None)
  x = tf.random.stateless_normal((4, 3, 5), seed=[1, 9])
  layer(x)
  rng = np.random.default_rng(0)
  shared_kernel = rng.normal(size=(5, 2)).astype(np.float32)
  shared_bias = rng.normal(size=(2,)).astype(np.float32)
  partition_kernel = rng.normal(size=(3, 5, 2)).astype(np.float32)
  partition_bias = rng.normal(size=(3, 2)).astype(np.float32)
  layer.set_weights([shared_kernel, shared_bias, partition_kernel, partition_bias])
  np.testing.assert_array_equal(
    layer.effective_kernel().numpy(), shared_kernel[None] * partition_kernel
  )
  np.testing.assert_array_equal(layer.effective_bias().numpy(), shared_bias + partition_bias)
  out = layer(x).numpy()
  for j in range(3):
    expected = x.numpy()[:, j] @ (shared_kernel * partition_kernel[j]) + (
      shared_bias + partition_bias[j]
    )
    np.testing.assert_allclose(out[:, j], expected, rtol=1e-5, atol=1e-6)


def test_star_dense_hand_computed_and_initially_shared():
  layer = star.StarDense(num_partitions=2, units=1, activation="relu")
  x = tf.constant([[1.0, 2.0]])  # shared input, read by both partitions
  layer(x)
  # At initialisation action kernels are ones and action biases zeros: W* = W for all.
  np.testing.assert_array_equal(layer.effective_kernel().numpy()[0], layer.shared_kernel.numpy())
  layer.set_weights(
    [
      np.array([[2.0], [3.0]], np.float32),
      np.array([1.0], np.float32),
      np.array([[[1.0], [1.0]], [[0.5], [-2.0]]], np.float32),
      np.array([[0.0], [1.0]], np.float32),
    ]
  )
  # Action 0: [1, 2] . [2, 3] + 1 = 9; action 1: [1, 2] . [1, -6] + 2 = -9 -> relu 0.
  np.testing.assert_array_equal(layer(x).numpy(), [[[9.0], [0.0]]])


def test_partitioned_normalization_inference_and_training():
  layer = star.PartitionedNormalization(num_partitions=2, momentum=0.99, epsilon=1e-3)
  x = tf.constant([[0.0], [4.0]])
  layer(x, training=False)
  layer.set_weights(
    [
      np.array([2.0], np.float32),
      np.array([1.0], np.float32),
      np.array([[1.0], [3.0]], np.float32),
      np.array([[0.0], [-1.0]], np.float32),
    ]
    + layer.normalization.get_weights()
  )
  # Inference with the initial moving statistics (mean 0, variance 1):
  # z_j = (gamma * gamma_j) * x / sqrt(1 + eps) + (beta + beta_j).
  x_hat = np.array([0.0, 4.0]) / np.sqrt(1.0 + 1e-3)
  expected = np.stack([2.0 * x_hat + 1.0, 6.0 * x_hat + 0.0], axis=1)[..., None]
  np.testing.assert_allclose(layer(x, training=False).numpy(), expected, rtol=1e-6)
  # Training: batch mean 2, variance 4 -> x_hat = [-2, 2] / sqrt(4 + eps).
  x_hat = np.array([-2.0, 2.0]) / np.sqrt(4.0 + 1e-3)
  expected = np.stack([2.0 * x_hat + 1.0, 6.0 * x_hat + 0.0], axis=1)[..., None]
  np.testing.assert_allclose(layer(x, training=True).numpy(), expected, rtol=1e-6)
  moving_mean, moving_variance = layer.normalization.get_weights()
  np.testing.assert_allclose(moving_mean, [0.99 * 0.0 + 0.01 * 2.0], rtol=1e-6)
  np.testing.assert_allclose(moving_variance, [0.99 * 1.0 + 0.01 * 4.0], rtol=1e-6)


def test_star_backbone_shapes_and_partitions():
  layer = star.Star(num_tasks=3, units=(6, 4))
  out = layer(tf.random.stateless_normal((5, 7), seed=[3, 3]), training=True)
  assert out.shape == (5, 3, 4)
  assert layer.dense_layers[0].partition_kernel.shape == (3, 7, 6)
  assert layer.dense_layers[1].partition_kernel.shape == (3, 6, 4)


def test_validation_and_config_round_trip():
  with pytest.raises(ValueError, match="momentum must be in"):
    star.PartitionedNormalization(2, momentum=1.5)
  with pytest.raises(ValueError, match="epsilon must be > 0, got 0"):
    star.PartitionedNormalization(2, epsilon=0)
  with pytest.raises(ValueError, match="input has 4 partitions, expected 3"):
    star.StarDense(3, 2)(tf.zeros((1, 4, 2)))
  with pytest.raises(ValueError, match=r"units needs at least one layer, got \(\)"):
    star.Star(3, units=())
  for layer in (
    star.PartitionedNormalization(3, momentum=0.9, epsilon=1e-5),
    star.StarDense(3, 4, activation="tanh"),
    star.Star(3, units=(8, 2), dropout=0.2),
  ):
    config = layer.get_config()
    assert type(layer).from_config(config).get_config() == config
