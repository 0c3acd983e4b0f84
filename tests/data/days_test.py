"""Days of logs and the day filter: `days.days_in`, `days.hold_out_last`, `make_dataset(days=)`.

Hand-made logs of 12 records, user 100 + i on day DAYS[i] (days 3, 4, 5 and 7: day 6 has no
record), so every yielded row tells its day.
"""

import kaml_tf  # noqa: F401
import numpy as np
import pytest

from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.data import counters as counters_lib
from kaml_tf.data import dataset as dataset_lib
from kaml_tf.data import days as days_lib
from kaml_tf.logs import parquet as parquet_logs
from kaml_tf.logs import validation

SCHEMA = schema_lib.Schema(
  actions=("A", "B"), sparse_features=(schema_lib.SparseFeature("user"),), dense_features=()
)
DAYS = np.array([3, 3, 4, 7, 5, 4, 7, 7, 3, 5, 4, 7], np.int64)


def _columns():
  n = len(DAYS)
  return {
    "ad_task_id": np.ones(n, np.int64),
    "target_action": np.arange(n) % 2,
    "day": DAYS,
    "user": 100 + np.arange(n, dtype=np.int64),
    "label_A": np.zeros(n, np.int64),
    "label_B": np.ones(n, np.int64),
  }


def _tfrecord(tmp_path):
  return records.write_logs(SCHEMA, str(tmp_path / "logs"), _columns(), num_shards=2, batch_rows=3)


def _parquet(tmp_path):
  writer = parquet_logs.LogWriter(SCHEMA, str(tmp_path / "pq"), num_shards=2)
  columns = _columns()
  with writer:
    for start in range(0, len(DAYS), 3):
      writer.write({k: v[start : start + 3] for k, v in columns.items()})
  return writer.paths


@pytest.mark.parametrize("write", [_tfrecord, _parquet], ids=["tfrecord", "parquet"])
def test_days_in_lists_the_distinct_days(tmp_path, write):
  assert days_lib.days_in(write(tmp_path)) == [3, 4, 5, 7]


def test_days_in_names_an_unreadable_record(tmp_path, broken_log):
  path = str(tmp_path / "bad.tfrecord")
  broken_log(path, SCHEMA, _columns(), "unparsable", record=2)
  with pytest.raises(validation.BadRecordError, match=f"^{path}: record #2: "):
    days_lib.days_in(path)
  # Skipped, the other records still hold every day (record 2 is day 4, as are 5 and 10).
  assert days_lib.days_in(path, skip_bad_records=True) == [3, 4, 5, 7]


def test_hold_out_last_splits_the_distinct_days():
  split = days_lib.hold_out_last([3, 4, 5, 7], 2)
  assert split == days_lib.DaySplit(train=(3, 4), validation=(5, 7))
  assert days_lib.hold_out_last([3, 4, 5, 7], 3) == days_lib.DaySplit((3, 3), (4, 7))


@pytest.mark.parametrize(
  "count, message",
  [
    (
      4,
      r"cannot hold out the last 4 day\(s\): the logs hold 4 distinct day\(s\) \(days "
      r"3\.\.7\) and at least one must stay for training",
    ),
    (0, r"must hold out at least one day, got 0"),
  ],
)
def test_hold_out_last_needs_a_training_day(count, message):
  with pytest.raises(ValueError, match=message):
    days_lib.hold_out_last([3, 4, 5, 7], count)


def test_exclude_last_drops_the_days_not_final():
  assert days_lib.exclude_last([3, 4, 5, 7], 0) == [3, 4, 5, 7]
  assert days_lib.exclude_last([3, 4, 5, 7], 2) == [3, 4]
  with pytest.raises(ValueError, match=r"cannot exclude the last 4 day\(s\).*\(days 3\.\.7\)"):
    days_lib.exclude_last([3, 4, 5, 7], 4)
  with pytest.raises(ValueError, match="must exclude zero or more days, got -1"):
    days_lib.exclude_last([3], -1)


def _users_by_batch(files, days, batch_size=3, shuffle_buffer=0, drop_remainder=False):
  ds = dataset_lib.make_dataset(
    files,
    SCHEMA,
    policy="base",
    batch_size=batch_size,
    shuffle_buffer=shuffle_buffer,
    seed=1,
    days=days,
    drop_remainder=drop_remainder,
  )
  return [f["user"].numpy().tolist() for f, _ in ds]


@pytest.mark.parametrize("write", [_tfrecord, _parquet], ids=["tfrecord", "parquet"])
@pytest.mark.parametrize("shuffle_buffer", [0, 5])
def test_dataset_keeps_the_rows_of_the_days_in_full_batches(tmp_path, write, shuffle_buffer):
  files = write(tmp_path)
  batches = _users_by_batch(files, (4, 5), shuffle_buffer=shuffle_buffer)
  kept = sorted(u for batch in batches for u in batch)
  # Days 4 and 5: records 2, 4, 5, 9, 10.
  assert kept == [102, 104, 105, 109, 110]
  if not shuffle_buffer:
    assert [len(b) for b in batches] == [3, 2]
  everything = sorted(
    u for b in _users_by_batch(files, None, shuffle_buffer=shuffle_buffer) for u in b
  )
  assert everything == list(100 + np.arange(len(DAYS)))


def test_dataset_day_filter_drops_only_the_last_partial_batch(tmp_path):
  files = _tfrecord(tmp_path)
  # Days 3..5: 7 records -> two full batches of 3, the 7th dropped.
  batches = _users_by_batch(files, (3, 5), drop_remainder=True)
  assert [len(b) for b in batches] == [3, 3]
  assert set(u for b in batches for u in b) < set(100 + np.flatnonzero(DAYS <= 5))


def test_dataset_counts_only_the_rows_kept(tmp_path):
  counters = counters_lib.InputCounters()
  ds = dataset_lib.make_dataset(
    _tfrecord(tmp_path), SCHEMA, policy="base", batch_size=4, days=(7, 7), counters=counters
  )
  assert sorted(u for f, _ in ds for u in f["user"].numpy().tolist()) == [103, 106, 107, 111]
  assert counters.samples_read == 4


@pytest.mark.parametrize("days", [(5, 4), (1, 2, 3)])
def test_dataset_refuses_a_bad_day_range(tmp_path, days):
  with pytest.raises(dataset_lib.DatasetError, match="days must be a \\(first, last\\) pair"):
    dataset_lib.make_dataset(_tfrecord(tmp_path), SCHEMA, policy="base", days=days)
