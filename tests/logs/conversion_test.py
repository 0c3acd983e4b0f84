"""Tests of log conversion between TFRecord and Parquet (`kaml_tf.logs.conversion`)."""

import os

import kaml_tf  # noqa: F401
import numpy as np
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from kaml_tf import configs
from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.logs import conversion as log_conversion
from kaml_tf.data import stats as stats_lib
from kaml_tf.logs import validation

SCHEMA = schema_lib.Schema(
  actions=("A", "B"),
  sparse_features=(schema_lib.SparseFeature("ad_task_id"),),
  dense_features=(schema_lib.DenseFeature("x"),),
  has_true_labels=True,
)


def _columns(n):
  i = np.arange(n)
  return {
    "ad_task_id": 10 + i,
    "day": i % 3,
    "target_action": i % 3 - 1,
    "x": (i / 4).astype(np.float32),
    "label_A": i % 2,
    "label_B": (i // 2) % 2,
    "true_label_A": np.ones(n, np.int64),
    "true_label_B": (i // 2) % 2,
  }


def _read(files):
  parts = [c for _, _, c in stats_lib.iter_log_batches(files, SCHEMA.record_dtypes(), 4)]
  return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


@pytest.mark.parametrize("num_shards", [1, 3])
def test_tfrecord_to_parquet_and_back_keeps_every_field(tmp_path, num_shards):
  cols = _columns(10)
  source = records.write_logs(SCHEMA, str(tmp_path / "src"), cols)
  parquet = log_conversion.convert_logs(
    source,
    SCHEMA,
    log_conversion.ConversionConfig(str(tmp_path / "pq"), num_shards=num_shards, batch_size=4),
  )
  assert parquet.records == 10 and parquet.skipped is None
  assert [os.path.basename(p) for p in parquet.paths] == [
    f"pq-{i:05d}-of-{num_shards:05d}.parquet" for i in range(num_shards)
  ]
  back = log_conversion.convert_logs(
    parquet.paths,
    SCHEMA,
    log_conversion.ConversionConfig(
      str(tmp_path / "back"), to_format="tfrecord", compression="GZIP"
    ),
  )
  assert back.paths[0].endswith(".tfrecord.gz")
  # Batches of 4, 4, 2 split as (2, 1, 1), (2, 1, 1), (1, 1, 0); reading shard by shard
  # regroups the rows.
  sizes = [
    len(c["ad_task_id"])
    for _, _, c in stats_lib.iter_log_batches(parquet.paths, {"ad_task_id": tf.int64}, 100)
  ]
  assert sizes == {1: [10], 3: [5, 3, 2]}[num_shards]
  got = _read(back.paths)
  order = np.argsort(got["ad_task_id"])
  for k, v in cols.items():
    np.testing.assert_array_equal(got[k][order], v, err_msg=k)
    assert got[k].dtype == SCHEMA.record_dtypes()[k].as_numpy_dtype


def test_bad_records_stop_the_conversion_or_are_skipped(tmp_path, broken_log):
  source = str(tmp_path / "src.tfrecord")
  broken_log(source, SCHEMA, _columns(6), "bad_label", record=2)
  config = log_conversion.ConversionConfig(str(tmp_path / "out"))
  with pytest.raises(records.LogError, match=r"src.tfrecord: record #2 field 'label_B' is 2"):
    log_conversion.convert_logs(source, SCHEMA, config)
  assert sorted(os.listdir(tmp_path)) == ["src.tfrecord"]  # nothing half-written
  skipping = log_conversion.ConversionConfig(str(tmp_path / "out"), skip_bad_records=True)
  result = log_conversion.convert_logs(source, SCHEMA, skipping)
  assert result.records == 5
  assert result.skipped["total_records"] == 1
  assert _read(result.paths)["ad_task_id"].tolist() == [10, 11, 13, 14, 15]


@pytest.mark.parametrize(
  "kwargs, message",
  [
    (dict(to_format="csv"), "to_format: must be one of"),
    (dict(num_shards=0), "num_shards: must be >= 1"),
    # Named by its flag, shared with the other jobs that read logs.
    (dict(batch_size=0), "read_batch_size: must be >= 1, got 0"),
    (dict(compression="GZIP"), "compression: applies to TFRecord output only"),
  ],
)
def test_config_errors(kwargs, message):
  with pytest.raises(configs.ConfigError, match=message) as error:
    log_conversion.ConversionConfig("out", **kwargs)
  assert error.value.field == next(iter(kwargs))


TAG_SCHEMA = schema_lib.Schema(
  actions=("A", "B"),
  sparse_features=(
    schema_lib.SparseFeature("tags", max_values=3),
    schema_lib.SparseFeature("words", dtype="string", max_values=2),
  ),
  dense_features=(schema_lib.DenseFeature("x"),),
  has_true_labels=True,
)


@pytest.mark.parametrize("compression", ["", "GZIP"])
def test_lists_round_trip_tfrecord_parquet_tfrecord(tmp_path, compression):
  cols = _columns(4)
  cols["tags"] = np.array([[1, 2, 3], [-1, -1, -1], [4, -1, -1], [5, 6, -1]])
  cols["words"] = np.array([[b"a", b""], [b"", b""], [b"b", b"c"], [b"d", b""]], object)
  records.write_logs(TAG_SCHEMA, str(tmp_path / "in"), cols)
  to_parquet = log_conversion.ConversionConfig(str(tmp_path / "pq"), num_shards=1)
  log_conversion.convert_logs(str(tmp_path / "in-*"), TAG_SCHEMA, to_parquet)
  back_config = log_conversion.ConversionConfig(
    str(tmp_path / "back"), to_format="tfrecord", compression=compression
  )
  log_conversion.convert_logs(str(tmp_path / "pq-*"), TAG_SCHEMA, back_config)
  back = records.read_columns(str(tmp_path / "back-*"), TAG_SCHEMA)
  for k, v in cols.items():
    assert back[k].tolist() == v.tolist(), k


MAPPED = schema_lib.Schema(
  actions=("A", "B"),
  sparse_features=(schema_lib.SparseFeature("ad_task_id"),),
  dense_features=(schema_lib.DenseFeature("x"),),
  columns=schema_lib.ColumnMapping(
    fields={"ad_task_id": "campaign", "target_action": "goal", "day": "ts", "label_A": "a"},
    target_names=True,
    timestamp_unit="s",
  ),
)
DAY_S = 86_400


def _mapped_records(path, schema):
  batches = validation.checked_batches(path, schema, schema.parse_spec(), 4, None)
  parts = [c for _, c in batches]
  return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def test_mapped_logs_convert_both_ways_under_their_own_names(tmp_path):
  # Foreign logs: their own names, action names ("view" is no action) and second timestamps.
  logs = {
    "campaign": np.array([7, 8, 9, 7, 8]),
    "goal": np.array(["A", "B", "view", "B", "A"], object),
    "ts": np.array([5, DAY_S - 1, DAY_S, 3 * DAY_S + 7, 2 * DAY_S]),
    "x": np.array([0.5, 1.5, 2.5, 3.5, 4.5], np.float32),
    "a": np.array([1, 0, 0, 1, 1]),
    "label_B": np.array([0, 1, 1, 0, 0]),
  }
  dtypes = {k: tf.string if k == "goal" else tf.float32 if k == "x" else tf.int64 for k in logs}
  source = str(tmp_path / "src.tfrecord")
  with tf.io.TFRecordWriter(source) as writer:
    for record in records.encode_examples(logs, dtypes):
      writer.write(record)
  expected = {
    "ad_task_id": logs["campaign"],
    "target_action": np.array([0, 1, -1, 1, 0]),
    "day": np.array([0, 0, 1, 3, 2]),
    "x": logs["x"],
    "label_A": logs["a"],
    "label_B": logs["label_B"],
  }
  parquet = log_conversion.convert_logs(
    source, MAPPED, log_conversion.ConversionConfig(str(tmp_path / "pq"), batch_size=2)
  )
  (path,) = parquet.paths
  table = pq.read_table(path)
  assert sorted(table.column_names) == sorted(logs)
  assert table.column("goal").to_pylist() == ["A", "B", "", "B", "A"]  # "view" was Other
  assert table.column("ts").to_pylist() == [0, 0, DAY_S, 3 * DAY_S, 2 * DAY_S]
  back = log_conversion.convert_logs(
    parquet.paths,
    MAPPED,
    log_conversion.ConversionConfig(str(tmp_path / "back"), to_format="tfrecord"),
  )
  (path_back,) = back.paths
  first = tf.train.Example.FromString(next(iter(tf.data.TFRecordDataset(path_back))).numpy())
  assert sorted(first.features.feature) == sorted(logs)
  for files in (source, path, path_back):
    got = _mapped_records(files, MAPPED)
    assert sorted(got) == sorted(expected)
    for k, v in expected.items():
      np.testing.assert_array_equal(got[k], v, err_msg=f"{files} {k}")
