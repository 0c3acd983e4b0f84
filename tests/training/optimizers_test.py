"""The embedding tables' own optimizer: which variables it trains, and its first steps by hand."""

import numpy as np
import pytest

import kaml_tf  # noqa: F401
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.models import builder
from kaml_tf.models import config as model_config_lib
from kaml_tf.training import config as config_lib
from kaml_tf.training import optimizers
from kaml_tf.training import trainer

SCHEMA = schema_lib.Schema(
  actions=("a", "b"),
  sparse_features=(
    schema_lib.SparseFeature("user", num_buckets=7, embedding_dim=2),
    schema_lib.SparseFeature("tags", num_buckets=5, embedding_dim=2, max_values=3),
  ),
)
# User 1 twice: its row's gradient is the sum of two slices. Users 4-6 are not in the batch.
FEATURES = {
  "user": tf.constant([0, 1, 1, 3], tf.int64),
  "tags": tf.constant([[0, 1, -1], [2, -1, -1], [-1, -1, -1], [1, 1, 3]], tf.int64),
}
TARGETS = {
  "labels": tf.constant([[1, 0], [0, 1], [0, 0], [1, 1]], tf.float32),
  "mask": tf.constant([[1, 0], [1, 1], [1, 1], [1, 0]], tf.float32),
  "is_target": tf.constant([[1, 0], [0, 1], [1, 0], [0, 0]], tf.float32),
}
ADAM_LR, EMBEDDING_LR = 1e-3, 0.05


def _task(embedding_optimizer, backbone="mmoe"):
  tf.keras.utils.set_random_seed(2)
  run = config_lib.RunConfig(
    data=config_lib.DataConfig(schema_path="unused", train_files="unused"),
    model=model_config_lib.ModelConfig(
      backbone=backbone, num_experts=1, expert_units=(3,), tower_units=()
    ),
    optim=config_lib.OptimConfig(
      learning_rate=ADAM_LR,
      embedding_optimizer=embedding_optimizer,
      embedding_learning_rate=EMBEDDING_LR,
    ),
  )
  return trainer.build_task(SCHEMA, run)


def _adam_first_step(g):
  """Keras Adam's first step, about -lr * sign(g).

  m = (1 - b1) g, v = (1 - b2) g^2, step = lr sqrt(1 - b2) / (1 - b1) * m / (sqrt(v) + eps)
  = lr * g / (|g| + eps / sqrt(1 - b2)), with b2 = 0.999 and eps = 1e-7.
  """
  return -ADAM_LR * g / (np.abs(g) + 1e-7 / np.sqrt(0.001))


def _gradients(task):
  """Dense gradients of the training objective by variable name, before the step."""
  with tf.GradientTape() as tape:
    objective = task.compute_loss((FEATURES, TARGETS), training=True)
  grads = tape.gradient(objective, task.trainable_variables)
  return {v.name: tf.convert_to_tensor(g).numpy() for g, v in zip(grads, task.trainable_variables)}


@pytest.mark.parametrize(
  "backbone, tables",
  [
    ("mmoe", ["embedding/embedding_user", "embedding/embedding_tags"]),
    (
      "single_task",
      [f"single_task/embedding_{a}/embedding_{f}" for a in "ab" for f in ("user", "tags")],
    ),
  ],
)
def test_embedding_tables_are_every_embedding_layers_table(backbone, tables):
  network = builder.build_model(SCHEMA, model_config_lib.ModelConfig(backbone=backbone))
  found = optimizers.embedding_tables(network)
  assert [v.name for v in found] == [f"{t}/embeddings:0" for t in tables]


def test_adagrad_moves_the_batch_rows_by_hand_and_adam_the_rest():
  task = _task(optimizers.ADAGRAD)
  assert isinstance(task.embedding_optimizer, tf.keras.optimizers.Adagrad)
  table = task.network.get_layer("embedding").tables[0].embeddings
  kernel = next(v for v in task.trainable_variables if "kernel" in v.name)
  before = {v.name: v.numpy() for v in task.trainable_variables}
  grads = _gradients(task)
  task.train_step((FEATURES, TARGETS))
  # Adagrad (Keras: accumulator starts at 0.1, epsilon 1e-7) on rows 0, 1 and 3:
  # acc = 0.1 + g^2, row -= lr * g / sqrt(acc + eps); rows 2, 4-6 have g = 0.
  g = grads[table.name]
  expected = before[table.name] - EMBEDDING_LR * g / np.sqrt(0.1 + g * g + 1e-7)
  np.testing.assert_allclose(table.numpy(), expected, rtol=1e-6, atol=1e-7)
  np.testing.assert_array_equal(table.numpy()[[2, 4, 5, 6]], before[table.name][[2, 4, 5, 6]])
  assert np.all(g[[0, 1, 3]] != 0)
  delta = kernel.numpy() - before[kernel.name]
  np.testing.assert_allclose(delta, _adam_first_step(grads[kernel.name]), rtol=1e-4)
  assert int(task.embedding_optimizer.iterations) == 1 and int(task.optimizer.iterations) == 1


def test_one_adam_moves_the_embedding_rows_by_adams_step():
  task = _task(optimizers.ADAM)
  assert task.embedding_optimizer is None
  table = task.network.get_layer("embedding").tables[0].embeddings
  before = table.numpy()
  g = _gradients(task)[table.name]
  task.train_step((FEATURES, TARGETS))
  np.testing.assert_allclose(table.numpy() - before, _adam_first_step(g), rtol=1e-4, atol=1e-9)
  assert np.all(np.abs(table.numpy() - before)[[0, 1, 3]] > 0.9 * ADAM_LR)


def test_ftrl_trains_and_zeroes_rows_not_looked_up_yet():
  task = _task(optimizers.FTRL)
  table = task.network.get_layer("embedding").tables[0].embeddings
  losses = []
  for _ in range(6):
    task.reset_metrics()  # Each step logs its own loss (before its update).
    losses.append(float(task.train_step((FEATURES, TARGETS))["total"]))
  assert losses == sorted(losses, reverse=True) and losses[-1] < losses[0]
  # The module docstring: Keras' Ftrl updates every row; one never looked up is FTRL's 0.
  np.testing.assert_array_equal(table.numpy()[[2, 4, 5, 6]], 0.0)
  assert np.all(table.numpy()[[0, 1, 3]] != 0)


def test_unknown_name_is_refused():
  with pytest.raises(ValueError, match=r"one of \('adam', 'adagrad', 'ftrl'\), got 'sgd'"):
    optimizers.embedding_optimizer("sgd", 0.1)
