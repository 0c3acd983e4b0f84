"""Tests of Parquet log reading and writing (`kaml_tf.logs.parquet`)."""

import os

import kaml_tf  # noqa: F401
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.logs import parquet as parquet_logs

SCHEMA = schema_lib.Schema(
  actions=("A", "B"),
  sparse_features=(schema_lib.SparseFeature("ad_task_id"),),
  dense_features=(schema_lib.DenseFeature("x"),),
)
FIELDS = {"ad_task_id": tf.int64, "x": tf.float32, "label_A": tf.int64}


def _table(n=5, **override):
  columns = {
    "ad_task_id": pa.array(np.arange(n, dtype=np.int32)),
    "x": pa.array(np.arange(n, dtype=np.float64) / 4),
    "label_A": pa.array(np.arange(n) % 2),
    "unused": pa.array(["u"] * n),
  }
  columns.update(override)
  return pa.table(columns)


def _write(tmp_path, table, name="logs.parquet", row_group_size=None):
  path = str(tmp_path / name)
  pq.write_table(table, path, row_group_size=row_group_size)
  return path


def test_read_batches_casts_to_the_schema_dtypes_in_record_order(tmp_path):
  path = _write(tmp_path, _table(5), row_group_size=2)
  batches = list(parquet_logs.read_batches(path, FIELDS, batch_size=2))
  assert [(b.first, b.size) for b in batches] == [(0, 2), (2, 2), (4, 1)]
  assert [b.columns["ad_task_id"].dtype for b in batches] == [np.int64] * 3
  assert batches[0].columns["x"].dtype == np.float32
  np.testing.assert_array_equal(
    np.concatenate([b.columns["x"] for b in batches]), [0, 0.25, 0.5, 0.75, 1.0]
  )
  assert set(batches[0].columns) == set(FIELDS)  # only the asked columns
  assert all(not b.nulls for b in batches)


def test_urls_are_read_through_tf_filesystems(tmp_path):
  path = _write(tmp_path, _table(3))
  (batch,) = parquet_logs.read_batches("file://" + path, FIELDS, batch_size=8)
  np.testing.assert_array_equal(batch.columns["ad_task_id"], [0, 1, 2])
  with pytest.raises(records.LogError, match=r"file://.*missing.parquet: not a readable"):
    parquet_logs.check_file("file://" + str(tmp_path / "missing.parquet"), FIELDS)


def test_limit_stops_inside_a_batch(tmp_path):
  path = _write(tmp_path, _table(5))
  batches = list(parquet_logs.read_batches(path, FIELDS, batch_size=4, limit=3))
  assert [(b.first, b.size) for b in batches] == [(0, 3)]


def test_nulls_are_reported_by_position_and_read_as_zero(tmp_path):
  path = _write(tmp_path, _table(4, label_A=pa.array([1, None, 0, None], pa.int64())))
  (batch,) = parquet_logs.read_batches(path, FIELDS, batch_size=8)
  assert list(batch.nulls) == ["label_A"]
  np.testing.assert_array_equal(batch.nulls["label_A"], [1, 3])
  np.testing.assert_array_equal(batch.columns["label_A"], [1, 0, 0, 0])


@pytest.mark.parametrize(
  "table, message",
  [
    (_table(3).drop(["x"]), r"logs.parquet: missing column 'x'"),
    (
      _table(3, label_A=pa.array([0.0, 1.0, 0.0])),
      r"logs.parquet: column 'label_A' has type double, expected int64",
    ),
    (
      _table(3, x=pa.array(["a", "b", "c"])),
      r"logs.parquet: column 'x' has type string, expected float32",
    ),
  ],
)
def test_footer_mismatch_names_file_and_column(tmp_path, table, message):
  path = _write(tmp_path, table)
  with pytest.raises(records.LogError, match=message):
    parquet_logs.check_file(path, FIELDS)
  with pytest.raises(records.LogError, match=message):
    next(parquet_logs.read_batches(path, FIELDS, 2))


def test_not_a_parquet_file_or_a_directory(tmp_path):
  garbage = tmp_path / "garbage.parquet"
  garbage.write_bytes(b"not parquet at all")
  with pytest.raises(records.LogError, match=r"garbage.parquet: not a readable Parquet file"):
    parquet_logs.check_file(str(garbage), FIELDS)
  folder = tmp_path / "dir.parquet"
  folder.mkdir()
  with pytest.raises(records.LogError, match=r"dir.parquet: is a directory"):
    parquet_logs.check_file(str(folder), FIELDS)


def test_corrupt_row_group_names_the_first_unread_record(tmp_path):
  path = _write(tmp_path, _table(6), row_group_size=3)
  metadata = pq.ParquetFile(path).metadata
  second = metadata.row_group(1).column(0)
  data = bytearray(open(path, "rb").read())
  # Overwrite the second row group's first column chunk with garbage (footer intact).
  start = second.data_page_offset
  data[start : start + 16] = b"\xff" * 16
  open(path, "wb").write(bytes(data))
  batches = parquet_logs.read_batches(path, FIELDS, batch_size=3)
  assert next(batches).first == 0
  with pytest.raises(parquet_logs.ReadError, match=r"unreadable from record #3 on") as caught:
    next(batches)
  assert caught.value.first == 3


def test_writer_round_trips_every_record_field_atomically(tmp_path):
  cols = {
    "ad_task_id": np.array([5, 6, 7]),
    "day": np.array([1, 1, 2]),
    "target_action": np.array([0, -1, 1]),
    "x": np.array([0.5, 1.5, 2.5]),
    "label_A": np.array([1, 0, 0]),
    "label_B": np.array([0, 0, 1]),
  }
  with parquet_logs.LogWriter(SCHEMA, str(tmp_path / "out"), num_shards=2) as writer:
    writer.write({k: v[:2] for k, v in cols.items()})
    writer.write({k: v[2:] for k, v in cols.items()})
  assert [os.path.basename(p) for p in writer.paths] == [
    "out-00000-of-00002.parquet",
    "out-00001-of-00002.parquet",
  ]
  assert writer.rows_written == 3
  dtypes = SCHEMA.record_dtypes()
  read = [b.columns for p in writer.paths for b in parquet_logs.read_batches(p, dtypes, 8)]
  for k, v in cols.items():
    np.testing.assert_array_equal(np.concatenate([r[k] for r in read]), v)
  assert sorted(os.listdir(tmp_path)) == [
    "out-00000-of-00002.parquet",
    "out-00001-of-00002.parquet",
  ]


def test_failed_writer_leaves_nothing(tmp_path):
  with pytest.raises(ValueError, match=r"lack the record fields \['day'"):
    with parquet_logs.LogWriter(SCHEMA, str(tmp_path / "out")) as writer:
      writer.write({"ad_task_id": np.array([1])})
  assert os.listdir(tmp_path) == []


TAG_SCHEMA = schema_lib.Schema(
  actions=("A",),
  sparse_features=(
    schema_lib.SparseFeature("tags", max_values=3),
    schema_lib.SparseFeature("words", dtype="string", max_values=2),
  ),
)
TAG_FIELDS = {"tags": tf.int64, "words": tf.string}
TAG_WIDTHS = {"tags": 3, "words": 2}


def test_list_columns_read_padded_with_their_lists_as_read(tmp_path):
  table = pa.table(
    {
      "tags": pa.array([[1, 2], None, [], [3, None, -1, 4]], pa.list_(pa.int64())),
      "words": pa.array([["a"], ["b", "c"], None, []], pa.list_(pa.string())),
    }
  )
  path = _write(tmp_path, table)
  (batch,) = parquet_logs.read_batches(path, TAG_FIELDS, 8, widths=TAG_WIDTHS)
  # A null list is the empty list, not a null; the over-long row is cut here (validation
  # refuses it from `lists`).
  assert batch.nulls == {}
  np.testing.assert_array_equal(
    batch.columns["tags"], [[1, 2, -1], [-1] * 3, [-1] * 3, [3, -1, -1]]
  )
  assert batch.columns["words"].tolist() == [[b"a", b""], [b"b", b"c"], [b""] * 2, [b""] * 2]
  tags = batch.lists["tags"]
  np.testing.assert_array_equal(tags.lengths, [2, 0, 0, 4])
  np.testing.assert_array_equal(tags.nulls, [False, False, False, True, False, False])
  assert (tags.width, tags.pad) == (3, -1)
  assert batch.lists["words"].nulls is None


def test_a_sliced_batch_reads_the_lists_of_its_own_rows(tmp_path):
  table = pa.table(
    {
      "tags": pa.array([[1], [2, 3], [4], []], pa.list_(pa.int64())),
      "words": pa.array([[]] * 4, pa.list_(pa.string())),
    }
  )
  path = _write(tmp_path, table)
  batches = list(parquet_logs.read_batches(path, TAG_FIELDS, 2, limit=3, widths=TAG_WIDTHS))
  np.testing.assert_array_equal(batches[1].columns["tags"], [[4, -1, -1]])
  np.testing.assert_array_equal(batches[0].lists["tags"].values, [1, 2, 3])


@pytest.mark.parametrize(
  "table, widths, message",
  [
    (
      pa.table({"tags": pa.array([[1]], pa.list_(pa.int64()))}),
      {},
      r"logs.parquet: column 'tags' is a list column \(list<\w+: int64>\) in a schema that "
      r"says single-valued",
    ),
    (
      pa.table({"tags": pa.array([1])}),
      {"tags": 3},
      r"logs.parquet: column 'tags' has type int64, expected list<int64> \(a multi-valued "
      r"feature, max_values=3\)",
    ),
    (
      pa.table({"tags": pa.array([[1.5]], pa.list_(pa.float64()))}),
      {"tags": 3},
      r"column 'tags' has type list<\w+: double>, expected list<int64>",
    ),
  ],
)
def test_list_column_mismatch_names_file_and_column(tmp_path, table, widths, message):
  path = _write(tmp_path, table)
  with pytest.raises(records.LogError, match=message):
    parquet_logs.check_file(path, {"tags": tf.int64}, widths)
  with pytest.raises(records.LogError, match=message):
    next(parquet_logs.read_batches(path, {"tags": tf.int64}, 2, widths=widths))


def test_writer_writes_list_columns_of_the_ids_before_the_padding(tmp_path):
  cols = {
    "ad_task_id": np.array([1, 2, 3]),
    "day": np.zeros(3, np.int64),
    "target_action": np.zeros(3, np.int64),
    "tags": np.array([[5, 6, -1], [-1, -1, -1], [7, 8, 9]]),
    "words": np.array([[b"", b""], ["x", "y"], [b"z", b""]], object),
    "label_A": np.array([1, 0, 0]),
  }
  with parquet_logs.LogWriter(TAG_SCHEMA, str(tmp_path / "out")) as writer:
    writer.write(cols)
  table = pq.read_table(writer.paths[0])
  assert table.schema.field("tags").type == pa.list_(pa.int64())
  assert table.column("tags").to_pylist() == [[5, 6], [], [7, 8, 9]]
  assert table.column("words").to_pylist() == [[], [b"x", b"y"], [b"z"]]
  (batch,) = parquet_logs.read_batches(writer.paths[0], TAG_FIELDS, 8, widths=TAG_WIDTHS)
  np.testing.assert_array_equal(batch.columns["tags"], cols["tags"])
  assert batch.columns["words"].tolist() == [[b"", b""], [b"x", b"y"], [b"z", b""]]
