"""Tests for kaml_tf.layers.single_task: one independent network per action."""

import numpy as np
import pytest

import kaml_tf  # noqa: F401
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.layers import single_task

SCHEMA = schema_lib.Schema(
  actions=("buy", "pay"),
  sparse_features=(schema_lib.SparseFeature("item", num_buckets=3, embedding_dim=1),),
  dense_features=(schema_lib.DenseFeature("price", mean=0.0, std=1.0),),
)
FEATURES = {"item": tf.constant([1, 5], tf.int64), "price": tf.constant([0.5, -2.0])}


def test_each_action_has_its_own_embeddings():
  layer = single_task.SingleTask(SCHEMA, units=())
  layer(FEATURES)
  layer.embeddings[0].tables[0].set_weights([np.array([[1.0], [2.0], [3.0]], np.float32)])
  layer.embeddings[1].tables[0].set_weights([np.array([[10.0], [20.0], [30.0]], np.float32)])
  # ids 1 and 5 % 3 = 2; each action reads its own table, then the shared dense column.
  np.testing.assert_array_equal(
    layer(FEATURES).numpy(), [[[2.0, 0.5], [20.0, 0.5]], [[3.0, -2.0], [30.0, -2.0]]]
  )
  assert [e.name for e in layer.embeddings] == ["embedding_buy", "embedding_pay"]


def test_each_action_has_its_own_mlp():
  layer = single_task.SingleTask(SCHEMA, units=(4, 3), embedding_dim=2)
  assert layer(FEATURES).shape == (2, 2, 3)
  assert layer.mlp.dense_layers[0].kernel.shape == (2, 2 + 1, 4)
  trainable = {v.name for v in layer.trainable_variables}
  assert len(trainable) == 2 + 2 * 2  # two tables, two (kernel, bias) pairs


def test_validation_and_config_round_trip():
  with pytest.raises(ValueError, match="schema must be a Schema or its dict form, got 3"):
    single_task.SingleTask(3)
  layer = single_task.SingleTask(SCHEMA, units=(8,), embedding_dim=4, dropout=0.1)
  config = layer.get_config()
  clone = single_task.SingleTask.from_config(config)
  assert clone.get_config() == config and clone.schema == SCHEMA
