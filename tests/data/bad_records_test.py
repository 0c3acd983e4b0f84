"""Tests of `bad_records`: which records a bad-record table drops, on tiny hand-made files."""

import kaml_tf  # noqa: F401
import numpy as np
import tensorflow as tf

from kaml_tf.data import bad_records
from kaml_tf.logs import validation


def _problem(path, record, reason=validation.BAD_LABEL):
  return validation.Problem(path, record, None, reason, "is bad")


def _scan():
  """a: records 1 and 3 bad; b: corrupt at record 2; c: empty; d: clean; e: corrupt at 0."""
  found = validation.BadRecords()
  for problem in (
    _problem("a", 3),
    _problem("a", 1),
    _problem("b", 2, validation.CORRUPT),
    validation.Problem("c", None, None, validation.EMPTY_FILE, "has no records"),
    _problem("e", 0, validation.CORRUPT),
  ):
    found.add(problem)
  return found


def _records(n, name):
  return tf.data.Dataset.from_tensor_slices([f"{name}{i}" for i in range(n)])


def _drop(table, n, name, file_id):
  records = _records(n, name)
  kept = bad_records.drop_bad_records(records, table, tf.constant(file_id, tf.int64))
  return [r.decode() for r in kept.as_numpy_iterator()]


def test_readable_files_leave_out_empty_and_corrupt_from_the_start():
  assert bad_records.readable_files(["a", "b", "c", "d", "e"], _scan()) == ["a", "b", "d"]


def test_table_layout():
  table = bad_records.table_for(_scan(), ["a", "b", "d"])
  sentinel = np.iinfo(np.int64).max
  np.testing.assert_array_equal(table.limits, [-1, 2, -1])
  # a's sorted bad indices, then b's and d's (none), each run ending in the sentinel.
  np.testing.assert_array_equal(table.bad, [1, 3, sentinel, sentinel, sentinel])
  np.testing.assert_array_equal(table.splits, [0, 3, 4, 5])


def test_the_table_drops_exactly_the_bad_records():
  table = bad_records.table_for(_scan(), ["a", "b", "d"])
  assert _drop(table, 5, "a", 0) == ["a0", "a2", "a4"]
  assert _drop(table, 5, "b", 1) == ["b0", "b1"]  # nothing after the corruption at 2
  assert _drop(table, 3, "d", 2) == ["d0", "d1", "d2"]


def test_clean_files_need_no_table():
  assert bad_records.table_for(_scan(), ["d"]) is None
  assert bad_records.table_for(None, ["a"]) is None


def test_host_side_lookups_for_parquet():
  found = _scan()
  np.testing.assert_array_equal(bad_records.bad_indices(found, "a"), [3, 1])
  assert bad_records.bad_indices(found, "d").size == 0
  assert bad_records.bad_indices(None, "a").dtype == np.int64
  assert bad_records.readable_limit(found, "b") == 2
  assert bad_records.readable_limit(found, "a") is None
  assert bad_records.readable_limit(None, "b") is None
