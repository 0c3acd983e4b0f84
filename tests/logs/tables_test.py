"""Tests of reading logs into one table (`kaml_tf.logs.tables`)."""

import kaml_tf  # noqa: F401
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from kaml_tf.logs import records
from kaml_tf.logs import tables


def _example(**features):
  feature = {}
  for key, values in features.items():
    if values and isinstance(values[0], bytes):
      feature[key] = tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
    elif values and isinstance(values[0], float):
      feature[key] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
    else:
      feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
  return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _write_records(path, examples, compression=""):
  with tf.io.TFRecordWriter(path, options=compression) as writer:
    for e in examples:
      writer.write(e)
  return path


def test_tfrecord_scalars_lists_and_absent_keys(tmp_path):
  _write_records(
    str(tmp_path / "logs.tfrecord.gz"),
    [
      _example(a=[1], x=[0.5], s=[b"u"], tags=[1, 2]),
      _example(a=[2], s=[b"v"], tags=[]),
      _example(a=[3], x=[1.5], s=[b"w"]),
    ],
    compression="GZIP",
  )
  table = tables.read_table(str(tmp_path / "*.gz")).table
  assert table.column("a").to_pylist() == [1, 2, 3]
  assert table.column("x").to_pylist() == [0.5, None, 1.5]  # absent -> null
  assert table.column("s").to_pylist() == [b"u", b"v", b"w"]
  assert table.column("tags").type == pa.list_(pa.int64())
  assert table.column("tags").to_pylist() == [[1, 2], [], []]  # absent -> empty list


def test_tfrecord_kind_changes_name_the_record_and_key(tmp_path):
  path = _write_records(str(tmp_path / "a.tfrecord"), [_example(a=[1]), _example(a=[0.5])])
  with pytest.raises(records.LogError, match=r"record #1, key 'a': float_list"):
    tables.read_table(path)


def test_not_an_example_names_the_record(tmp_path):
  path = _write_records(str(tmp_path / "a.tfrecord"), [_example(a=[1]), b"\xff\x01junk"])
  with pytest.raises(records.LogError, match=r"record #1 is not a tf.train.Example"):
    tables.read_table(path)


def test_parquet_and_csv_files_merge_in_sorted_order(tmp_path):
  pq.write_table(pa.table({"a": [1, 2], "b": ["x", "y"]}), str(tmp_path / "0.parquet"))
  (tmp_path / "1.csv").write_text("a,b\n3,z\n")
  logs = tables.read_table(f"{tmp_path}/*.parquet,{tmp_path}/*.csv")
  assert logs.table.column("a").to_pylist() == [1, 2, 3]
  assert logs.table.column("b").to_pylist() == ["x", "y", "z"]
  assert not logs.truncated
  assert logs.to_dict()["rows_used"] == "every row"


@pytest.mark.parametrize(
  "max_rows, rows, files, truncated",
  [(1, 1, 1, True), (2, 2, 1, True), (3, 3, 2, False), (9, 3, 2, False)],
)
def test_max_rows_reads_a_prefix(tmp_path, max_rows, rows, files, truncated):
  pq.write_table(pa.table({"a": [1, 2]}), str(tmp_path / "0.parquet"))
  _write_records(str(tmp_path / "1.tfrecord"), [_example(a=[3])])
  logs = tables.read_table(f"{tmp_path}/0.parquet,{tmp_path}/1.tfrecord", max_rows=max_rows)
  assert logs.table.num_rows == rows
  assert len(logs.files) == files
  assert logs.truncated == truncated
  if truncated:
    assert logs.to_dict()["rows_used"] == f"the first {rows} rows of the files in sorted order"


def test_tfrecord_cap_in_the_middle_of_a_file(tmp_path):
  path = _write_records(str(tmp_path / "a.tfrecord"), [_example(a=[i]) for i in range(5)])
  logs = tables.read_table(path, max_rows=2)
  assert logs.table.column("a").to_pylist() == [0, 1] and logs.truncated


def test_no_match_names_the_pattern(tmp_path):
  with pytest.raises(FileNotFoundError, match="no log files match"):
    tables.read_table(str(tmp_path / "*.parquet"))
