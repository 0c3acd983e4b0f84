"""KamlTask's step: the network's losses are optimised and logged, soft ADM reaches the BCE."""

import numpy as np
import pytest

import kaml_tf  # noqa: F401
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.losses import joint
from kaml_tf.models import builder
from kaml_tf.models import config as config_lib
from kaml_tf.training import task as task_lib

SCHEMA = schema_lib.Schema(
  actions=("a", "b"),
  sparse_features=(schema_lib.SparseFeature("user", num_buckets=7, embedding_dim=2),),
)
FEATURES = {"user": tf.constant([0, 1, 2, 3], tf.int64)}
TARGETS = {
  "labels": tf.constant([[1, 0], [0, 1], [0, 0], [1, 1]], tf.float32),
  "mask": tf.constant([[1, 0], [1, 1], [1, 1], [1, 0]], tf.float32),
  "is_target": tf.constant([[1, 0], [0, 1], [1, 0], [0, 0]], tf.float32),
}


def _task(extended_weight, embedding_l2):
  tf.keras.utils.set_random_seed(2)
  network = builder.build_model(
    SCHEMA,
    config_lib.ModelConfig(
      num_experts=1, expert_units=(3,), tower_units=(), embedding_l2=embedding_l2
    ),
  )
  loss = joint.KamlLoss(gamma=1.0, extended_weight=extended_weight)
  task = task_lib.KamlTask(network, loss, SCHEMA.actions)
  task.compile(optimizer=tf.keras.optimizers.SGD(0.1))
  return task


def test_train_step_optimises_and_logs_the_embedding_penalty_and_soft_bce():
  task = _task(extended_weight=0.5, embedding_l2=0.5)
  table = task.network.get_layer("embedding").tables[0].embeddings
  table.assign(tf.reshape(tf.range(14, dtype=tf.float32) / 10.0, (7, 2)))
  before = table.numpy()
  logits = task.network(FEATURES)
  # Rows 0-3 of the table are (0, .1), (.2, .3), (.4, .5), (.6, .7): squared norms .01, .13,
  # .41, .85; mean over the batch .35, times 0.5.
  penalty = 0.5 * 0.35
  soft_bce = joint.KamlLoss(gamma=1.0, extended_weight=0.5)(
    TARGETS["labels"], logits, TARGETS["mask"], is_target=TARGETS["is_target"]
  )["bce"]
  logs = task.train_step((FEATURES, TARGETS))
  assert float(logs["regularization"]) == pytest.approx(penalty, rel=1e-6)
  assert float(logs["bce"]) == pytest.approx(float(soft_bce), rel=1e-6)
  assert float(logs["total"]) == pytest.approx(float(soft_bce) + penalty, rel=1e-6)
  after = table.numpy()
  # Rows 4-6 are not in the batch: neither the data nor the penalty moves them.
  np.testing.assert_array_equal(after[4:], before[4:])
  assert not np.array_equal(after[:4], before[:4])


def test_the_penalty_is_in_the_gradient():
  # Same network and batch; only the L2 coefficient differs. SGD moves row 3 by
  # -lr * (data gradient + l2 * 2 * E_3 / batch), so the difference is lr * l2 * 2 / 4 * E_3.
  rows = []
  for l2 in (0.0, 0.5):
    task = _task(extended_weight=None, embedding_l2=l2)
    table = task.network.get_layer("embedding").tables[0].embeddings
    table.assign(tf.reshape(tf.range(14, dtype=tf.float32) / 10.0, (7, 2)))
    task.train_step((FEATURES, TARGETS))
    rows.append(table.numpy()[3])
  np.testing.assert_allclose(rows[0] - rows[1], 0.1 * 0.5 * 2 / 4 * np.array([0.6, 0.7]), rtol=1e-5)
