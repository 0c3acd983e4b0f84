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
    schema_lib.SparseFeature("os", dtype="string", vocabulary=("ios", "android"), embedding_dim=2),
  ),
  dense_features=(
    schema_lib.DenseFeature("price", mean=1.0, std=2.0),
    schema_lib.DenseFeature("age", mean=-3.0, std=0.5),
  ),
)


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
    actions=("a",), sparse_features=(schema_lib.SparseFeature("u", num_buckets=3),)
  )
  assert embedding.FeatureEmbedding(sparse_only)({"u": tf.constant([1], tf.int64)}).shape == (1, 16)
  dense_only = schema_lib.Schema(
    actions=("a",), dense_features=(schema_lib.DenseFeature("x", 2.0, 4.0),)
  )
  np.testing.assert_array_equal(
    embedding.FeatureEmbedding(dense_only)({"x": tf.constant([10.0])}).numpy(), [[2.0]]
  )


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


def test_l2_penalises_the_looked_up_rows_mean_over_the_batch():
  layer = embedding.FeatureEmbedding(SCHEMA, l2=0.01)
  layer(_features())
  _row_index_tables(layer)
  layer(_features())
  # Rows (see test_hand_computed_rows_and_normalisation) have squared norm r^2 + (100 + r)^2.
  # user rows 2, 2, 0, 4; slot rows 1, 2, 3, 0; os rows 2, 1, 0, 1; city rows from FarmHash.
  city = tf.strings.to_hash_bucket_fast(_features()["city"], 7).numpy()
  rows = np.concatenate([[2, 2, 0, 4], city, [1, 2, 3, 0], [2, 1, 0, 1]])
  expected = 0.01 * np.sum(rows**2 + (100 + rows) ** 2) / 4  # batch of 4
  assert len(layer.losses) == 1
  assert layer.losses[0].numpy() == pytest.approx(expected, rel=1e-6)


def test_l2_gradient_touches_only_the_rows_used():
  layer = embedding.FeatureEmbedding(SCHEMA, l2=0.5)
  layer(_features())
  _row_index_tables(layer)
  with tf.GradientTape() as tape:
    layer(_features())
    penalty = tf.add_n(layer.losses)
  user = layer.tables[0].embeddings
  gradient = tf.convert_to_tensor(tape.gradient(penalty, user)).numpy()
  # d/dE_r of 0.5 * mean_i ||E_{id_i}||^2 = 0.5 * 2 * count_r / 4 * E_r; user rows 2, 2, 0, 4.
  table = user.numpy()
  expected = np.zeros_like(table)
  for row, count in ((2, 2), (0, 1), (4, 1)):
    expected[row] = 0.5 * 2 * count / 4 * table[row]
  np.testing.assert_allclose(gradient, expected, rtol=1e-6)
  assert not gradient[[1, 3]].any()  # rows 1 and 3 are not in the batch


def test_no_l2_adds_no_loss_and_l2_is_in_the_config():
  layer = embedding.FeatureEmbedding(SCHEMA)
  layer(_features())
  assert not layer.losses
  assert embedding.FeatureEmbedding(SCHEMA, l2=0.25).get_config()["l2"] == 0.25
  with pytest.raises(ValueError, match="l2 must be a finite number >= 0, got -1"):
    embedding.FeatureEmbedding(SCHEMA, l2=-1)


def test_log1p_transform_before_normalisation():
  schema = schema_lib.Schema(
    actions=("a",),
    dense_features=(
      schema_lib.DenseFeature("spend", mean=1.0, std=2.0, transform="log1p"),
      schema_lib.DenseFeature("age", mean=1.0, std=2.0),
    ),
  )
  layer = embedding.FeatureEmbedding(schema)
  e = np.e
  out = layer({"spend": tf.constant([0.0, e - 1, -(e**3 - 1)]), "age": tf.constant([3.0] * 3)})
  # sign(x) * log1p(|x|): 0, 1, -3; then (t - 1) / 2. The identity column is untouched.
  np.testing.assert_allclose(out.numpy(), [[-0.5, 1.0], [0.0, 1.0], [-2.0, 1.0]], rtol=1e-6)


# Multi-valued features: tags hashed (strings), cats with an int64 vocabulary, one per combiner.
MULTI = schema_lib.Schema(
  actions=("a",),
  sparse_features=(
    schema_lib.SparseFeature(
      "tags", dtype="string", num_buckets=50, embedding_dim=2, max_values=3, combiner="sum"
    ),
    schema_lib.SparseFeature(
      "cats", vocabulary=(7, 8, 9), embedding_dim=2, max_values=4, combiner="mean"
    ),
    schema_lib.SparseFeature("apps", num_buckets=10, embedding_dim=2, max_values=2),
  ),
)


def _multi_features():
  return {
    # Rows: two tags, none (the empty list), three, one.
    "tags": tf.constant([["x", "y", ""], ["", "", ""], ["x", "x", "z"], ["y", "", ""]]),
    # 5 is out of vocabulary (row 0); ids 7, 8, 9 are rows 1, 2, 3.
    "cats": tf.constant([[7, 8, -1, -1], [9, 5, 7, -1], [-1, -1, -1, -1], [8, 8, 8, 8]], tf.int64),
    # Hashed int64: floormod(id, 10); a pad between ids is masked wherever it stands.
    "apps": tf.constant([[3, 4], [-1, 6], [12, -1], [-1, -1]], tf.int64),
  }


def _multi_layer(combiner: str = "mean", l2: float = 0.0):
  schema = schema_lib.Schema.from_dict(MULTI.to_dict())
  features = list(schema.sparse_features)
  features[2] = schema_lib.SparseFeature(
    "apps", num_buckets=10, embedding_dim=2, max_values=2, combiner=combiner
  )
  layer = embedding.FeatureEmbedding(
    schema_lib.Schema(actions=("a",), sparse_features=tuple(features)), l2=l2
  )
  layer(_multi_features())
  _row_index_tables(layer)
  return layer


def _tag_rows():
  return {t: tf.strings.to_hash_bucket_fast(t, 50).numpy() for t in ("x", "y", "z")}


def test_multivalued_sum_over_real_ids_of_hashed_strings():
  out = _multi_layer()(_multi_features()).numpy()
  assert out.shape == (4, 6)
  r = _tag_rows()
  # sum of the rows [r, 100 + r] of the real tags; the empty list is the zero vector.
  expected = [
    [r["x"] + r["y"], 200 + r["x"] + r["y"]],
    [0, 0],
    [2 * r["x"] + r["z"], 300 + 2 * r["x"] + r["z"]],
    [r["y"], 100 + r["y"]],
  ]
  np.testing.assert_array_equal(out[:, 0:2], expected)


def test_multivalued_mean_with_vocabulary_and_oov():
  out = _multi_layer()(_multi_features()).numpy()
  # rows: (1 + 2) / 2; (3 + 0 + 1) / 3 (5 is OOV, row 0); empty: 0; (2 * 4) / 4.
  np.testing.assert_allclose(out[:, 2], [1.5, 4 / 3, 0.0, 2.0], rtol=1e-6)
  np.testing.assert_allclose(out[:, 3], [101.5, 100 + 4 / 3, 0.0, 102.0], rtol=1e-6)


@pytest.mark.parametrize(
  "combiner, expected",
  [
    # apps rows: {3, 4}, {6}, {12 % 10 = 2}, {} -> sums 7, 6, 2, 0 (second column 207, 106,
    # 102, 0) over the counts 2, 1, 1, 0 (0 divides by 1).
    ("sum", [[7, 207], [6, 106], [2, 102], [0, 0]]),
    ("mean", [[3.5, 103.5], [6, 106], [2, 102], [0, 0]]),
    ("sqrtn", [[7 / np.sqrt(2), 207 / np.sqrt(2)], [6, 106], [2, 102], [0, 0]]),
  ],
)
def test_each_combiner_on_int64_ids(combiner, expected):
  out = _multi_layer(combiner)(_multi_features()).numpy()
  np.testing.assert_allclose(out[:, 4:6], expected, rtol=1e-6)


def test_multivalued_rows_do_not_depend_on_the_batch():
  layer = _multi_layer()
  whole = layer(_multi_features()).numpy()
  for i in range(4):
    alone = layer({k: v[i : i + 1] for k, v in _multi_features().items()}).numpy()
    np.testing.assert_array_equal(alone[0], whole[i])


def test_multivalued_l2_counts_only_real_ids():
  layer = _multi_layer("sum", l2=0.01)
  layer(_multi_features())
  r = _tag_rows()
  tags = [r["x"], r["y"], r["x"], r["x"], r["z"], r["y"]]  # every real tag, per occurrence
  cats = [1, 2, 3, 0, 1, 2, 2, 2, 2]
  apps = [3, 4, 6, 2]
  rows = np.array(tags + cats + apps, np.float64)
  expected = 0.01 * np.sum(rows**2 + (100 + rows) ** 2) / 4
  assert layer.losses[-1].numpy() == pytest.approx(expected, rel=1e-6)


def test_multivalued_gradient_skips_pad_rows():
  layer = _multi_layer("sum", l2=0.5)
  with tf.GradientTape() as tape:
    out = layer(_multi_features())
    loss = tf.reduce_sum(out[:, 4]) + tf.add_n(layer.losses)
  apps = layer.tables[2].embeddings
  gradient = tf.convert_to_tensor(tape.gradient(loss, apps)).numpy()
  # The pad -1 hashes to row 9 (floormod(-1, 10)): it must get no gradient. Rows 3, 4, 6, 2
  # each occur once: d(sum of column 0)/dE_r = [1, 0]; the L2 adds 0.5 * 2 / 4 * E_r.
  table = apps.numpy()
  expected = np.zeros_like(table)
  for row in (3, 4, 6, 2):
    expected[row] = [1.0, 0.0] + 0.25 * table[row]
  np.testing.assert_allclose(gradient, expected, rtol=1e-6)


def test_multivalued_config_round_trip_and_shape_errors():
  layer = _multi_layer()
  config = layer.get_config()
  clone = embedding.FeatureEmbedding.from_config(config)
  assert clone.get_config() == config
  assert [f.max_values for f in clone.schema.sparse_features] == [3, 4, 2]
  assert [f.combiner for f in clone.schema.sparse_features] == ["sum", "mean", "mean"]
  clone(_multi_features())
  clone.set_weights(layer.get_weights())
  np.testing.assert_array_equal(clone(_multi_features()).numpy(), layer(_multi_features()).numpy())
  features = _multi_features()
  features["apps"] = tf.constant([3, 4], tf.int64)
  with pytest.raises(ValueError, match=r"'apps' must be \(batch, 2\) ids .*got shape \[2\]"):
    layer(features)


def test_multivalued_in_a_keras_model():
  inputs = MULTI.keras_inputs()
  assert inputs["tags"].shape.as_list() == [None, 3]
  model = tf.keras.Model(inputs, embedding.FeatureEmbedding(MULTI)(inputs))
  assert model(_multi_features()).shape == (4, 6)
