"""Tests of `parsing`: the parse spec, and the in-graph checks naming the bad field."""

import kaml_tf  # noqa: F401
import numpy as np
import pytest
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.data import parsing
from kaml_tf.logs import records


def _schema(has_true_labels=False):
  return schema_lib.Schema(
    actions=("A", "B"),
    sparse_features=(schema_lib.SparseFeature("ad_task_id"), schema_lib.SparseFeature("user")),
    dense_features=(schema_lib.DenseFeature("x"),),
    has_true_labels=has_true_labels,
  )


SCHEMA = _schema()


def _columns(n=3):
  return {
    "ad_task_id": np.arange(1, n + 1, dtype=np.int64),
    "target_action": np.array([0, 1, -1][:n], np.int64),
    "day": np.full(n, 4, np.int64),
    "user": 100 + np.arange(n, dtype=np.int64),
    "x": np.arange(n, dtype=np.float32) / 2,
    "label_A": np.array([1, 0, 0][:n], np.int64),
    "label_B": np.array([0, 1, 1][:n], np.int64),
  }


def _serialized(columns):
  return tf.constant(records.encode_examples(columns, SCHEMA.record_dtypes()))


def test_parse_spec_fields():
  spec = parsing.parse_spec(SCHEMA)
  # Features (ad_task_id once), target and labels; no day unless asked for.
  assert list(spec) == ["ad_task_id", "user", "x", "target_action", "label_A", "label_B"]
  assert "day" in parsing.parse_spec(SCHEMA, with_day=True)
  assert spec["x"].dtype == tf.float32 and spec["user"].dtype == tf.int64
  with_true = parsing.parse_spec(_schema(has_true_labels=True))
  assert list(with_true)[-2:] == ["true_label_A", "true_label_B"]


def test_parse_gives_the_columns():
  parser = parsing.RecordParser(SCHEMA, parsing.parse_spec(SCHEMA))
  parsed = parser.parse(_serialized(_columns()))
  assert set(parsed) == set(parser.spec)
  np.testing.assert_array_equal(parsed["user"], [100, 101, 102])
  np.testing.assert_allclose(parsed["x"], [0, 0.5, 1])
  np.testing.assert_array_equal(parsed["target_action"], [0, 1, -1])
  assert parser.dtypes["x"] == tf.float32


@pytest.mark.parametrize(
  "field,value,message",
  [
    ("target_action", 2, "record field target_action must be < 2"),
    ("target_action", -2, "record field target_action must be >= -1"),
    ("label_B", 2, "record labels must be 0 or 1"),
    ("x", np.nan, "record field x must be finite"),
    ("x", np.inf, "record field x must be finite"),
  ],
)
def test_parse_rejects_a_bad_value_naming_the_field(field, value, message):
  parser = parsing.RecordParser(SCHEMA, parsing.parse_spec(SCHEMA))
  columns = _columns()
  columns[field][1] = value
  with pytest.raises(tf.errors.InvalidArgumentError, match=message):
    parser.parse(_serialized(columns))


def test_check_passes_good_columns_and_rejects_bad_ones():
  parser = parsing.RecordParser(SCHEMA, parsing.parse_spec(SCHEMA))
  columns = {k: tf.constant(v) for k, v in _columns().items() if k in parser.spec}
  checked = parser.check(columns)
  np.testing.assert_array_equal(checked["label_A"], [1, 0, 0])
  columns["label_A"] = tf.constant([1, 3, 0], tf.int64)
  with pytest.raises(tf.errors.InvalidArgumentError, match="record labels must be 0 or 1"):
    parser.check(columns)


def test_checks_run_inside_a_dataset():
  parser = parsing.RecordParser(SCHEMA, parsing.parse_spec(SCHEMA))
  columns = _columns()
  columns["target_action"][2] = 5
  ds = tf.data.Dataset.from_tensors(_serialized(columns)).map(parser.parse)
  with pytest.raises(tf.errors.InvalidArgumentError, match="target_action must be < 2"):
    list(ds)


def test_multivalued_features_parse_padded_and_bad_lists_fail_naming_the_field():
  schema = schema_lib.Schema(
    actions=("A", "B"), sparse_features=(schema_lib.SparseFeature("tags", max_values=2),)
  )
  spec = parsing.parse_spec(schema)
  assert isinstance(spec["tags"], tf.io.RaggedFeature)
  parser = parsing.RecordParser(schema, spec)
  assert parser.widths == {"tags": 2}
  cols = {k: v for k, v in _columns().items() if k in schema.record_dtypes()}

  def parse(tags):
    return parser.parse(
      tf.constant(records.encode_examples(dict(cols, tags=tags), schema.record_dtypes()))
    )

  tags = parse(np.array([[7, 8], [-1, -1], [9, -1]]))["tags"]
  np.testing.assert_array_equal(tags.numpy(), [[7, 8], [-1, -1], [9, -1]])
  wide = schema_lib.Schema(
    actions=("A", "B"), sparse_features=(schema_lib.SparseFeature("tags", max_values=3),)
  )
  too_long = records.encode_examples(
    dict(cols, tags=np.array([[1, 2, 3]] * 3)), wide.record_dtypes()
  )
  with pytest.raises(tf.errors.InvalidArgumentError, match="tags must hold at most max_values=2"):
    parser.parse(tf.constant(too_long))
  example = tf.train.Example.FromString(too_long[0])
  example.features.feature["tags"].int64_list.value[:] = [4, -1]
  with pytest.raises(tf.errors.InvalidArgumentError, match="tags must not hold the pad value -1"):
    parser.parse(tf.constant([example.SerializeToString()]))
