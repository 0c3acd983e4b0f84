"""Tests of `sources`: which files a pipeline gets, first-record checks, and both readers."""

import dataclasses

import kaml_tf  # noqa: F401
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.data import bad_records
from kaml_tf.data import parsing
from kaml_tf.data import sources
from kaml_tf.logs import records
from kaml_tf.logs import validation

SCHEMA = schema_lib.Schema(
  actions=("A", "B"),
  sparse_features=(schema_lib.SparseFeature("ad_task_id"), schema_lib.SparseFeature("user")),
  dense_features=(schema_lib.DenseFeature("x"),),
)


def _raw(tmp_path, name, values):
  """A TFRecord file whose records are the given byte strings (not Examples)."""
  path = str(tmp_path / name)
  with tf.io.TFRecordWriter(path) as writer:
    for v in values:
      writer.write(v.encode())
  return path


def _parquet(tmp_path, name, values):
  path = str(tmp_path / name)
  pq.write_table(pa.table({"v": pa.array(values, pa.int64())}), path)
  return path


def _touch(tmp_path, name):
  (tmp_path / name).write_bytes(b"")
  return str(tmp_path / name)


def _context(num, pipeline):
  return tf.distribute.InputContext(num_input_pipelines=num, input_pipeline_id=pipeline)


def _serial(interleave_cycle=2):
  return sources.Interleave(interleave_cycle, parallel_reads=0, deterministic=True)


def _strings(ds):
  return [r.decode() for r in ds.as_numpy_iterator()]


def test_list_logs_sorts_and_refuses_mixed_formats(tmp_path):
  b, a = _touch(tmp_path, "b.tfrecord"), _touch(tmp_path, "a.tfrecord")
  assert sources.list_logs(str(tmp_path / "*.tfrecord")) == [a, b]
  _touch(tmp_path, "c.parquet")
  with pytest.raises(sources.DatasetError, match="mixes Parquet and TFRecord"):
    sources.list_logs(str(tmp_path / "*"))


def test_list_logs_leaves_out_files_without_readable_records(tmp_path):
  a, b = _touch(tmp_path, "a.tfrecord"), _touch(tmp_path, "b.tfrecord")
  found = validation.BadRecords()
  found.add(validation.Problem(a, None, None, validation.EMPTY_FILE, "has no records"))
  assert sources.list_logs([a, b], found) == [b]
  found.add(validation.Problem(b, 0, None, validation.CORRUPT, "unreadable"))
  with pytest.raises(sources.DatasetError, match="no readable records"):
    sources.list_logs([a, b], found)


def test_pipeline_share_of_files():
  files = [f"f{i}" for i in range(5)]
  assert sources.pipeline_share(files) == (files, None)
  assert sources.pipeline_share(files, _context(1, 0)) == (files, None)
  assert sources.pipeline_share(files, _context(2, 0)) == (["f0", "f2", "f4"], None)
  assert sources.pipeline_share(files, _context(2, 1)) == (["f1", "f3"], None)
  assert sources.pipeline_share(files, _context(5, 4)) == (["f4"], None)


def test_fewer_files_than_pipelines_shard_records():
  files = ["f0", "f1"]
  assert sources.pipeline_share(files, _context(3, 2)) == (files, sources.RecordShard(3, 2))


def test_first_record_checks_name_the_file(tmp_path):
  spec = parsing.parse_spec(SCHEMA)
  empty = _touch(tmp_path, "empty.tfrecord")
  with pytest.raises(validation.BadRecordError, match="empty.tfrecord has no records"):
    sources.check_first_records([empty], SCHEMA, spec)
  other = _raw(tmp_path, "raw.tfrecord", ["not an Example"])
  with pytest.raises(validation.BadRecordError, match="raw.tfrecord: record #0"):
    sources.check_first_records([other], SCHEMA, spec)
  no_x = _parquet(tmp_path, "old.parquet", [1, 2])
  with pytest.raises(validation.LogError, match="old.parquet: missing column"):
    sources.check_first_records([no_x], SCHEMA, spec)


def test_first_record_checks_pass_good_logs(tmp_path):
  n = 3
  columns = {
    "ad_task_id": np.arange(n, dtype=np.int64),
    "target_action": np.zeros(n, np.int64),
    "day": np.zeros(n, np.int64),
    "user": np.arange(n, dtype=np.int64),
    "x": np.zeros(n, np.float32),
    "label_A": np.zeros(n, np.int64),
    "label_B": np.zeros(n, np.int64),
  }
  files = records.write_logs(SCHEMA, str(tmp_path / "good"), columns, num_shards=2)
  sources.check_first_records(files, SCHEMA, parsing.parse_spec(SCHEMA))


def test_first_record_checks_read_mapped_logs_under_their_own_names(tmp_path):
  mapped = dataclasses.replace(
    SCHEMA, columns=schema_lib.ColumnMapping({"target_action": "goal"}, target_names=True)
  )
  columns = {
    "ad_task_id": np.array([1]),
    "target_action": np.array([1]),
    "day": np.array([0]),
    "user": np.array([5]),
    "x": np.zeros(1, np.float32),
    "label_A": np.array([0]),
    "label_B": np.array([1]),
  }
  files = records.write_logs(mapped, str(tmp_path / "mapped"), columns)
  sources.check_first_records(files, mapped, parsing.parse_spec(mapped))
  # Logs written under the record names lack the mapped column, which the error names.
  plain = records.write_logs(SCHEMA, str(tmp_path / "plain"), columns)
  with pytest.raises(validation.BadRecordError, match="record #0 field 'goal' is missing"):
    sources.check_first_records(plain, mapped, parsing.parse_spec(mapped))


def test_file_dataset_elements(tmp_path):
  files = ["a.tfrecord", "b.tfrecord.gz"]
  elements = list(sources.file_dataset(files).as_numpy_iterator())
  assert elements == [(b"a.tfrecord", b"", 0), (b"b.tfrecord.gz", b"GZIP", 1)]


def test_read_tfrecords_takes_a_record_from_each_file_in_turn(tmp_path):
  files = [_raw(tmp_path, "a", ["a0", "a1", "a2"]), _raw(tmp_path, "b", ["b0", "b1"])]
  ds = sources.read_tfrecords(sources.file_dataset(files), _serial())
  assert _strings(ds) == ["a0", "b0", "a1", "b1", "a2"]
  # One file at a time reads them one after the other.
  ds = sources.read_tfrecords(sources.file_dataset(files), _serial(1))
  assert _strings(ds) == ["a0", "a1", "a2", "b0", "b1"]


def test_read_tfrecords_shards_the_interleaved_records(tmp_path):
  files = [_raw(tmp_path, "a", ["a0", "a1", "a2"]), _raw(tmp_path, "b", ["b0", "b1"])]
  ds = sources.read_tfrecords(
    sources.file_dataset(files), _serial(), shard=sources.RecordShard(2, 1)
  )
  assert _strings(ds) == ["b0", "b1"]


def test_read_tfrecords_drops_the_bad_records(tmp_path):
  a = _raw(tmp_path, "a", ["a0", "a1", "a2"])
  b = _raw(tmp_path, "b", ["b0", "b1", "b2"])
  found = validation.BadRecords()
  found.add(validation.Problem(a, 1, "label_B", validation.BAD_LABEL, "is 2"))
  found.add(validation.Problem(b, 2, None, validation.CORRUPT, "unreadable"))
  table = bad_records.table_for(found, [a, b])
  ds = sources.read_tfrecords(sources.file_dataset([a, b]), _serial(), table)
  # a keeps a0, a2 and b keeps b0, b1 (the corruption at 2 ends it); turns alternate.
  assert _strings(ds) == ["a0", "b0", "a2", "b1"]


def test_read_parquet_slices_files_in_turn(tmp_path):
  files = [_parquet(tmp_path, "a.parquet", [0, 1, 2]), _parquet(tmp_path, "b.parquet", [10, 11])]
  ds = sources.read_parquet(sources.file_dataset(files), _serial(), {"v": tf.int64}, rows=2)
  assert [s["v"].tolist() for s in ds.as_numpy_iterator()] == [[0, 1], [10, 11], [2]]


def test_read_parquet_drops_bad_records_and_shards_per_file(tmp_path):
  a = _parquet(tmp_path, "a.parquet", [0, 1, 2, 3, 4])
  found = validation.BadRecords()
  found.add(validation.Problem(a, 2, "v", validation.MISSING_FIELD, "is null"))
  found.add(validation.Problem(a, 4, None, validation.CORRUPT, "unreadable"))
  read = sources.read_parquet(
    sources.file_dataset([a]), _serial(), {"v": tf.int64}, rows=10, bad_records=found
  )
  assert [s["v"].tolist() for s in read.as_numpy_iterator()] == [[0, 1, 3]]
  read = sources.read_parquet(
    sources.file_dataset([a]), _serial(), {"v": tf.int64}, rows=10, shard=sources.RecordShard(2, 1)
  )
  assert [s["v"].tolist() for s in read.as_numpy_iterator()] == [[1, 3]]
