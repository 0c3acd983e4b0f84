"""Tests of the column mapping (`schema.ColumnMapping`, `kaml_tf.logs.columns`)."""

import kaml_tf  # noqa: F401
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.logs import columns
from kaml_tf.logs import inference
from kaml_tf.logs import parquet as parquet_logs
from kaml_tf.logs import records
from kaml_tf.logs import validation

MAPPING = schema_lib.ColumnMapping(
  fields={"ad_task_id": "campaign", "target_action": "goal", "day": "ts", "label_buy": "bought"},
  target_names=True,
  timestamp_unit="ms",
)
SCHEMA = schema_lib.Schema(
  actions=("buy", "click"),
  sparse_features=(schema_lib.SparseFeature("ad_task_id"), schema_lib.SparseFeature("user")),
  dense_features=(schema_lib.DenseFeature("price"),),
  columns=MAPPING,
)
DAY_MS = 86_400_000


def _logs(n=4):
  return pa.table(
    {
      "campaign": pa.array([7, 7, 8, 9][:n], pa.int64()),
      "goal": ["buy", "click", "view", "buy"][:n],
      "ts": pa.array([0, DAY_MS - 1, DAY_MS, 5 * DAY_MS + 3][:n], pa.int64()),
      "bought": pa.array([True, False, False, True][:n]),
      "label_click": pa.array([0, 1, 0, 0][:n], pa.int64()),
      "user": pa.array([1, 2, 3, 4][:n], pa.int64()),
      "price": [0.5, 1.5, 2.5, 3.5][:n],
    }
  )


def test_identity_mapping_leaves_the_schema_json_alone():
  plain = schema_lib.Schema(actions=("buy",))
  same = schema_lib.Schema(actions=("buy",), columns=schema_lib.ColumnMapping({"day": "day"}))
  assert "columns" not in plain.to_dict()
  assert same.to_dict() == plain.to_dict() and same.fingerprint() == plain.fingerprint()


def test_mapping_round_trips_through_json():
  data = SCHEMA.to_dict()
  assert data["columns"] == {
    "fields": {
      "ad_task_id": "campaign",
      "day": "ts",
      "label_buy": "bought",
      "target_action": "goal",
    },
    "target": "names",
    "day": "timestamp_ms",
  }
  assert schema_lib.Schema.from_dict(data) == SCHEMA
  assert SCHEMA.columns.log_name("label_click") == "label_click"


@pytest.mark.parametrize(
  "columns, message",
  [
    ({"fields": {"user": "u"}}, "'user' is not a key or label field"),
    ({"fields": {"day": "user"}}, "would both read log column 'user'"),
    ({"day": "timestamp_us"}, "columns.day"),
    ({"target": "codes"}, "columns.target"),
  ],
)
def test_bad_mappings_name_the_field(columns, message):
  data = dict(SCHEMA.to_dict(), columns=columns)
  with pytest.raises(schema_lib.SchemaError, match=message):
    schema_lib.Schema.from_dict(data)


def test_to_records_renames_and_converts():
  table = columns.to_records(_logs(), SCHEMA)
  assert table.column("ad_task_id").to_pylist() == [7, 7, 8, 9]
  assert table.column("target_action").to_pylist() == [0, 1, -1, 0]  # "view" is Other
  assert table.column("day").to_pylist() == [0, 0, 1, 5]
  assert table.column("label_buy").to_pylist() == [1, 0, 0, 1]  # booleans as 0/1
  assert columns.unknown_targets(pa.array(["buy", "view", "x"]), SCHEMA.actions) == 2


def test_log_fields_are_the_stored_columns():
  fields = SCHEMA.record_dtypes()
  stored = columns.log_fields(SCHEMA, fields)
  assert list(stored) == ["campaign", "goal", "ts", "user", "price", "bought", "label_click"]
  assert stored["goal"] == tf.string


def test_timestamp_days_floor_negative_and_float():
  assert columns.timestamp_days(np.array([-1, 0, 86399, 86400]), "s").tolist() == [-1, 0, 0, 1]
  assert columns.timestamp_days(np.array([1.5 * DAY_MS]), "ms").tolist() == [1]


def test_parquet_logs_read_back_under_record_names(tmp_path):
  path = str(tmp_path / "logs.parquet")
  pq.write_table(_logs(), path)
  fields = SCHEMA.record_dtypes()
  assert parquet_logs.check_file(path, fields, schema=SCHEMA) == 4
  with pytest.raises(records.LogError, match="missing column 'ad_task_id'"):
    parquet_logs.check_file(path, fields)
  (batch,) = parquet_logs.read_batches(path, fields, 10, schema=SCHEMA)
  assert batch.columns["target_action"].tolist() == [0, 1, -1, 0]
  assert batch.columns["day"].tolist() == [0, 0, 1, 5]
  assert batch.columns["label_buy"].dtype == np.int64


def test_checked_batches_of_mapped_parquet(tmp_path):
  path = str(tmp_path / "logs.parquet")
  pq.write_table(_logs(), path)
  spec = SCHEMA.parse_spec()
  ((first, batch),) = validation.checked_batches(path, SCHEMA, spec, 10, None)
  assert first == 0 and batch["ad_task_id"].tolist() == [7, 7, 8, 9]


def test_parquet_writer_writes_log_names_and_round_trips(tmp_path):
  records_in = {
    "ad_task_id": np.array([7, 8]),
    "target_action": np.array([1, -1]),
    "day": np.array([0, 3]),
    "user": np.array([1, 2]),
    "price": np.array([0.5, 1.5], np.float32),
    "label_buy": np.array([0, 1]),
    "label_click": np.array([1, 0]),
  }
  with parquet_logs.LogWriter(SCHEMA, str(tmp_path / "out")) as writer:
    writer.write(records_in)
  (path,) = writer.paths
  written = pq.read_table(path)
  assert written.column_names == [
    "campaign",
    "goal",
    "ts",
    "user",
    "price",
    "bought",
    "label_click",
  ]
  assert written.column("goal").to_pylist() == ["click", ""]
  assert written.column("ts").to_pylist() == [0, 3 * DAY_MS]
  (batch,) = parquet_logs.read_batches(path, SCHEMA.record_dtypes(), 10, schema=SCHEMA)
  for k, v in records_in.items():
    np.testing.assert_array_equal(batch.columns[k], v)


def _example(**features):
  feature = {}
  for key, values in features.items():
    if isinstance(values[0], bytes):
      feature[key] = tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
    elif isinstance(values[0], float):
      feature[key] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
    else:
      feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
  return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def test_tensor_translation_of_parsed_tfrecords():
  serialized = [
    _example(
      campaign=[7],
      goal=[b"click"],
      ts=[DAY_MS + 1],
      bought=[1],
      label_click=[0],
      user=[3],
      price=[0.5],
    ),
    _example(
      campaign=[8],
      goal=[b"view"],
      ts=[5],
      bought=[0],
      label_click=[1],
      user=[4],
      price=[1.5],
    ),
  ]
  spec = columns.log_parse_spec(SCHEMA, SCHEMA.parse_spec())
  parsed = tf.io.parse_example(tf.constant(serialized), spec)
  out = columns.records_from_parsed(parsed, SCHEMA)
  assert sorted(out) == sorted(SCHEMA.record_dtypes())
  assert out["target_action"].numpy().tolist() == [1, -1]
  assert out["day"].numpy().tolist() == [1, 0]
  assert out["ad_task_id"].numpy().tolist() == [7, 8]


def _tfrecord_logs(path, table):
  """Writes the rows of the log `table` as `tf.train.Example`s under its own column names."""
  with tf.io.TFRecordWriter(path) as writer:
    for row in table.to_pylist():
      values = {
        k: [v.encode() if isinstance(v, str) else int(v) if isinstance(v, bool) else v]
        for k, v in row.items()
      }
      writer.write(_example(**values))


def test_mapped_tfrecord_logs_read_back_as_the_parquet_ones(tmp_path):
  tfrecord, parquet = str(tmp_path / "logs.tfrecord"), str(tmp_path / "logs.parquet")
  _tfrecord_logs(tfrecord, _logs())
  pq.write_table(_logs(), parquet)
  spec = SCHEMA.parse_spec()
  ((_, from_tfrecord),) = validation.checked_batches(tfrecord, SCHEMA, spec, 10, None)
  ((_, from_parquet),) = validation.checked_batches(parquet, SCHEMA, spec, 10, None)
  assert sorted(from_tfrecord) == sorted(spec)
  assert from_tfrecord["target_action"].tolist() == [0, 1, -1, 0]  # "view" is Other
  assert from_tfrecord["day"].tolist() == [0, 0, 1, 5]
  assert from_tfrecord["label_buy"].tolist() == [1, 0, 0, 1]
  for k, v in from_parquet.items():
    np.testing.assert_array_equal(from_tfrecord[k], v, err_msg=k)


def test_mapped_tfrecord_problems_name_the_log_column(tmp_path):
  path = str(tmp_path / "logs.tfrecord")
  _tfrecord_logs(path, _logs().drop_columns(["goal"]))
  with pytest.raises(validation.BadRecordError, match="record #0 field 'goal' is missing"):
    list(validation.checked_batches(path, SCHEMA, SCHEMA.parse_spec(), 10, None))


def test_tfrecord_writer_writes_log_names_and_round_trips(tmp_path):
  records_in = {
    "ad_task_id": np.array([7, 8]),
    "target_action": np.array([1, -1]),
    "day": np.array([0, 3]),
    "user": np.array([1, 2]),
    "price": np.array([0.5, 1.5], np.float32),
    "label_buy": np.array([0, 1]),
    "label_click": np.array([1, 0]),
  }
  with records.LogWriter(SCHEMA, str(tmp_path / "out")) as writer:
    writer.write(records_in)
  (path,) = writer.paths
  first, second = [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)]
  assert sorted(first.features.feature) == sorted(
    ["campaign", "goal", "ts", "user", "price", "bought", "label_click"]
  )
  goals = [e.features.feature["goal"].bytes_list.value for e in (first, second)]
  assert goals == [[b"click"], [b""]]
  assert second.features.feature["ts"].int64_list.value == [3 * DAY_MS]
  ((_, batch),) = validation.checked_batches(path, SCHEMA, SCHEMA.parse_spec(), 10, None)
  whole = records.read_columns(path, SCHEMA)
  for k, v in records_in.items():
    np.testing.assert_array_equal(batch[k], v, err_msg=k)
    np.testing.assert_array_equal(whole[k], v, err_msg=k)


def test_log_parser_is_the_plain_parse_under_the_identity_mapping():
  plain = schema_lib.Schema(actions=("buy",))
  parser = columns.LogParser(plain, plain.parse_spec())
  assert parser.spec == plain.parse_spec()
  assert columns.LogParser(None, {"day": plain.parse_spec()["day"]}).spec == {
    "day": plain.parse_spec()["day"]
  }


def test_inferred_mapping_reads_the_logs_it_came_from(tmp_path):
  config = inference.InferenceConfig(
    actions=("buy=bought", "click"),
    ad_task="campaign",
    target="goal",
    timestamp="ts",
    timestamp_unit="ms",
  )
  schema = inference.infer(_logs(), config).schema
  assert schema.columns == MAPPING
  path = str(tmp_path / "logs.parquet")
  pq.write_table(_logs(), path)
  (batch,) = parquet_logs.read_batches(path, schema.record_dtypes(), 10, schema=schema)
  assert batch.columns["target_action"].tolist() == [0, 1, -1, 0]
