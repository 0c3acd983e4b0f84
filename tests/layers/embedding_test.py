"""Tests for kaml_tf.layers.embedding: hashing, lookups, tables, dense normalisation."""

import numpy as np
import pytest

import kaml_tf  # noqa: F401
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.layers import embedding

SCHEMA = schema_lib.Schema(
    actions=("a", "b"),
    sparse_features=(
        schema_lib.SparseFeature("user", num_buckets=5, embedding_dim=2),
        schema_lib.SparseFeature("city", dtype="string", num_buckets=7, embedding_dim=2),
        # -1 is also Keras' default OOV token: it must still get its own row.
        schema_lib.SparseFeature("slot", vocabulary=(5, -1, 9), embedding_dim=2),
        schema_lib.SparseFeature("os", dtype="string", vocabulary=("ios", "android"),
                                 embedding_dim=2),
    ),
    dense_features=(schema_lib.DenseFeature("price", mean=1.0, std=2.0),
                    schema_lib.DenseFeature("age", mean=-3.0, std=0.5)))


def _features():
  return {
      "user": tf.constant([7, -3, 0, 4], tf.int64),
      "city": tf.constant(["paris", "rome", "", "paris"]),
      "slot": tf.constant([5, -1, 9, 42], tf.int64),
      "os": tf.constant(["android", "ios", "linux", "ios"]),
      "price": tf.constant([3.0, -1.0, 1.0, 0.0]),
      "age": tf.constant([-3.0, -2.0, -4.0, 0.0]),
  }


def _row_index_tables(layer):
  """Sets row r of every table to [r, 100 + r], so the output reveals the looked-up rows."""
  for table in layer.tables:
    rows = table.input_dim
    table.set_weights([np.stack([np.arange(rows), 100 + np.arange(rows)], 1).astype(np.float32)])


def test_hand_computed_rows_and_normalisation():
  layer = embedding.FeatureEmbedding(SCHEMA)
  layer(_features())  # builds the tables
  _row_index_tables(layer)
  out = layer(_features()).numpy()
  assert out.shape == (4, 2 * 4 + 2) and layer.output_dim == 10
  # int64 hashing is floormod(id, 5): 7 -> 2, -3 -> 2, 0 -> 0, 4 -> 4.
  np.testing.assert_array_equal(out[:, 0], [2, 2, 0, 4])
  np.testing.assert_array_equal(out[:, 1], [102, 102, 100, 104])
  # strings: FarmHash fingerprint into 7 buckets (the same string always lands together).
  city = tf.strings.to_hash_bucket_fast(_features()["city"], 7).numpy()
  np.testing.assert_array_equal(out[:, 2], city)
  assert out[0, 2] == out[3, 2]
  # vocabulary (5, -1, 9): row 0 is out-of-vocabulary, then rows 1, 2, 3.
  np.testing.assert_array_equal(out[:, 4], [1, 2, 3, 0])
  # vocabulary ("ios", "android"): android -> 2, ios -> 1, linux -> OOV 0.
  np.testing.assert_array_equal(out[:, 6], [2, 1, 0, 1])
  # dense: (x - mean) / std.
  np.testing.assert_array_equal(out[:, 8], [1.0, -1.0, 0.0, -0.5])
  np.testing.assert_array_equal(out[:, 9], [0.0, 2.0, -2.0, 6.0])


def test_tables_have_schema_sizes_and_dim_override():
  layer = embedding.FeatureEmbedding(SCHEMA, embedding_dim=3)
  out = layer(_features())
  assert out.shape == (4, 3 * 4 + 2) and layer.output_dim == 14
  assert [t.input_dim for t in layer.tables] == [5, 7, 4, 3]
  assert [tuple(t.embeddings.shape) for t in layer.tables] == [(5, 3), (7, 3), (4, 3), (3, 3)]


def test_accepts_column_vectors_and_ignores_extra_keys():
  columns = {k: tf.reshape(v, [-1, 1]) for k, v in _features().items()}
  columns["hke_indicator"] = tf.zeros((4, 2))
  layer = embedding.FeatureEmbedding(SCHEMA)
  np.testing.assert_array_equal(layer(columns).numpy(), layer(_features()).numpy())


def test_only_sparse_or_only_dense():
  sparse_only = schema_lib.Schema(
      actions=("a",), sparse_features=(schema_lib.SparseFeature("u", num_buckets=3),))
  assert embedding.FeatureEmbedding(sparse_only)({"u": tf.constant([1], tf.int64)}).shape == (
      1, 16)
  dense_only = schema_lib.Schema(actions=("a",),
                                 dense_features=(schema_lib.DenseFeature("x", 2.0, 4.0),))
  np.testing.assert_array_equal(
      embedding.FeatureEmbedding(dense_only)({"x": tf.constant([10.0])}).numpy(), [[2.0]])


def test_errors_name_the_problem():
  with pytest.raises(ValueError, match="missing input feature 'age'"):
    features = _features()
    del features["age"]
    embedding.FeatureEmbedding(SCHEMA)(features)
  with pytest.raises(ValueError, match="embedding_dim must be a positive integer, got 0"):
    embedding.FeatureEmbedding(SCHEMA, embedding_dim=0)
  with pytest.raises(ValueError, match="schema must be a Schema or its dict form, got 'x'"):
    embedding.FeatureEmbedding("x")
  with pytest.raises(ValueError, match="no features"):
    embedding.FeatureEmbedding(schema_lib.Schema(actions=("a",)))


def test_get_config_round_trip_rebuilds_the_same_layer():
  layer = embedding.FeatureEmbedding(SCHEMA, embedding_dim=4)
  config = layer.get_config()
  clone = embedding.FeatureEmbedding.from_config(config)
  assert clone.get_config() == config and clone.schema == SCHEMA
  layer(_features())
  clone(_features())
  clone.set_weights(layer.get_weights())
  np.testing.assert_array_equal(clone(_features()).numpy(), layer(_features()).numpy())
