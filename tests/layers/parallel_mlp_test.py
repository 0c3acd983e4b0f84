"""Tests for kaml_tf.layers.parallel_mlp: batched per-head dense layers and MLPs."""

import numpy as np
import pytest

import kaml_tf  # noqa: F401
import tensorflow as tf

from kaml_tf.layers import parallel_mlp

# Head 0 keeps the first input, head 1 the second; biases 0.5 and -1.
_KERNEL = np.array([[[1.0], [0.0]], [[0.0], [1.0]]], np.float32)  # (H=2, d_in=2, units=1)
_BIAS = np.array([[0.5], [-1.0]], np.float32)


def _dense(**kwargs):
  return parallel_mlp.ParallelDense(2, 1, **kwargs)


def test_shared_input_feeds_every_head():
  layer = _dense()
  layer.build((None, 2))
  layer.set_weights([_KERNEL, _BIAS])
  out = layer(tf.constant([[1.0, 2.0]]))
  assert out.shape == (1, 2, 1)
  np.testing.assert_array_equal(out.numpy(), [[[1.5], [1.0]]])


def test_per_head_input_batch_major_and_heads_first():
  per_head = np.array([[[1.0, 2.0], [3.0, 4.0]]], np.float32)  # (batch=1, H=2, d_in=2)
  layer = _dense()
  layer.build((None, 2, 2))
  layer.set_weights([_KERNEL, _BIAS])
  # head 0: [1, 2] . [1, 0] + 0.5 = 1.5; head 1: [3, 4] . [0, 1] - 1 = 3.
  np.testing.assert_array_equal(layer(per_head).numpy(), [[[1.5], [3.0]]])
  heads_first = _dense(heads_first=True)
  heads_first.build((2, None, 2))
  heads_first.set_weights([_KERNEL, _BIAS])
  out = heads_first(tf.constant(per_head.transpose(1, 0, 2)))
  np.testing.assert_array_equal(out.numpy(), [[[1.5]], [[3.0]]])


def test_activation_is_per_head_over_units():
  layer = parallel_mlp.ParallelDense(3, 4, activation="softmax", kernel_initializer="ones")
  out = layer(tf.constant([[1.0, -2.0], [0.5, 3.0]]))
  # Equal kernels -> equal logits -> uniform softmax over each head's 4 units.
  np.testing.assert_allclose(out.numpy(), np.full((2, 3, 4), 0.25), rtol=1e-6)


def test_headwise_glorot_limit_is_per_head():
  layer = parallel_mlp.ParallelDense(8, 10)
  layer.build((None, 30))
  limit = np.sqrt(6.0 / (30 + 10))  # a Dense(10) on 30 inputs; not sqrt(6 / (8 * 40))
  kernel = np.abs(layer.kernel.numpy())
  assert kernel.max() <= limit
  assert kernel.max() > 0.9 * limit  # 2400 uniform draws: the top decile is reached


def test_bad_arguments_and_shapes_are_quoted():
  with pytest.raises(ValueError, match="num_heads must be a positive integer, got 0"):
    parallel_mlp.ParallelDense(0, 4)
  with pytest.raises(ValueError, match="unknown activation 'nope'"):
    parallel_mlp.ParallelDense(2, 4, activation="nope")
  with pytest.raises(ValueError, match="has 3 heads"):
    parallel_mlp.ParallelDense(2, 4)(tf.zeros((1, 3, 5)))
  with pytest.raises(ValueError, match="units must contain positive integers, got"):
    parallel_mlp.ParallelMLP(2, (4, -1))


def test_parallel_mlp_hand_computed():
  layer = parallel_mlp.ParallelMLP(2, (2, 1), activation="relu", kernel_initializer="ones")
  # Each head: [1, 2] -> relu([3, 3]) -> relu(6).
  np.testing.assert_array_equal(layer(tf.constant([[1.0, 2.0]])).numpy(), [[[6.0], [6.0]]])
  per_head = tf.constant([[[1.0, 2.0], [-4.0, 1.0]]])
  # Head 1: [-4, 1] -> relu([-3, -3]) = 0 -> 0.
  np.testing.assert_array_equal(layer(per_head).numpy(), [[[6.0], [0.0]]])


def test_parallel_mlp_heads_are_independent():
  layer = parallel_mlp.ParallelMLP(3, (4, 2), activation="tanh")
  x = tf.random.stateless_normal((5, 6), seed=[1, 2])
  out = layer(x).numpy()
  for h in range(3):
    hidden = np.tanh(x.numpy() @ layer.dense_layers[0].kernel.numpy()[h])
    expected = np.tanh(hidden @ layer.dense_layers[1].kernel.numpy()[h])
    np.testing.assert_allclose(out[:, h], expected, rtol=1e-5, atol=1e-6)


def test_parallel_mlp_without_units_is_identity():
  x = tf.constant([[[1.0, 2.0]]])
  assert parallel_mlp.ParallelMLP(1, ())(x) is x


def test_parallel_mlp_dropout_only_in_training():
  layer = parallel_mlp.ParallelMLP(2, (64,), dropout=0.5, kernel_initializer="ones")
  x = tf.ones((4, 3))
  np.testing.assert_array_equal(layer(x, training=False).numpy(), np.full((4, 2, 64), 3.0))
  dropped = layer(x, training=True).numpy()
  assert (dropped == 0).any() and set(np.unique(dropped)) <= {0.0, 6.0}


@pytest.mark.parametrize(
  "layer",
  [
    parallel_mlp.ParallelDense(2, 3, activation="relu", use_bias=False, heads_first=True),
    parallel_mlp.ParallelDense(2, 3, kernel_initializer="ones"),
    parallel_mlp.ParallelMLP(3, (4, 2), activation="tanh", dropout=0.1),
    parallel_mlp.ParallelMLP(3, (), kernel_initializer="zeros"),
  ],
)
def test_get_config_round_trip(layer):
  config = layer.get_config()
  assert type(layer).from_config(config).get_config() == config
