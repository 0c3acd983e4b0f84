"""Tests of the conversion-statistics job, its Parquet file and the in-graph join."""

import json
import os

import kaml_tf  # noqa: F401
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from kaml_tf import configs
from kaml_tf.logs import parquet as parquet_logs
from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.data import stats as stats_lib

SCHEMA = schema_lib.Schema(
  actions=("A", "B"),
  sparse_features=(schema_lib.SparseFeature("ad_task_id"), schema_lib.SparseFeature("user")),
  dense_features=(schema_lib.DenseFeature("x"),),
)

# (ad_task_id, day, label_A, label_B) per record.
ROWS = [
  (1, 3, 1, 1),  # day 3: outside a window 4..5
  (1, 4, 1, 0),
  (1, 4, 1, 1),
  (1, 5, 0, 1),
  (1, 6, 1, 1),  # day 6: after end_day 5
  (2, 5, 0, 0),
  (3, 2, 1, 1),  # ad task 3 only outside the window
  (4, 6, 1, 0),
]


def _columns(rows, schema=SCHEMA):
  a = np.asarray(rows, np.int64)
  n = len(a)
  cols = {
    "ad_task_id": a[:, 0],
    "day": a[:, 1],
    "target_action": np.zeros(n, np.int64),
    "user": np.arange(n, dtype=np.int64),
    "x": np.linspace(0, 1, n).astype(np.float32),
  }
  for j, key in enumerate(schema.label_keys):
    cols[key] = a[:, 2 + j]
  return cols


def _write(tmp_path, rows, name="logs", num_shards=1, compression=""):
  return records.write_logs(
    SCHEMA,
    str(tmp_path / name),
    _columns(rows),
    num_shards=num_shards,
    compression=compression,
    batch_rows=3,
  )


def _as_dict(stats):
  return {
    int(t): (int(c), tuple(int(v) for v in row))
    for t, c, row in zip(stats.ad_task_ids, stats.clicks, stats.counts)
  }


def test_window_boundaries(tmp_path):
  files = _write(tmp_path, ROWS)
  stats = stats_lib.compute_stats(files, SCHEMA, stats_lib.StatsConfig(window_days=2, end_day=5))
  # Days 4 and 5 only: task 1 has 3 clicks, A = 1 + 1 + 0, B = 0 + 1 + 1; task 2 one click.
  assert _as_dict(stats) == {1: (3, (2, 2)), 2: (1, (0, 0))}
  assert (stats.window_start, stats.window_end, stats.window_days) == (4, 5, 2)
  assert stats.rows_read == len(ROWS)
  assert stats.actions == ("A", "B")
  assert stats.schema_fingerprint == SCHEMA.fingerprint()


def test_one_day_outside_the_window_does_not_count(tmp_path):
  files = _write(tmp_path, [(7, 9, 1, 0), (7, 10, 0, 1), (7, 12, 1, 1)])
  # Window 10..12: the day-9 conversion of A is one day outside.
  stats = stats_lib.compute_stats(files, SCHEMA, stats_lib.StatsConfig(window_days=3, end_day=12))
  assert _as_dict(stats) == {7: (2, (1, 2))}
  stats = stats_lib.compute_stats(files, SCHEMA, stats_lib.StatsConfig(window_days=4, end_day=12))
  assert _as_dict(stats) == {7: (3, (2, 2))}


def test_end_day_defaults_to_last_day_in_logs(tmp_path):
  files = _write(tmp_path, ROWS)
  stats = stats_lib.compute_stats(files, SCHEMA, stats_lib.StatsConfig(window_days=2))
  # Last day 6 -> window 5..6.
  assert _as_dict(stats) == {1: (2, (1, 2)), 2: (1, (0, 0)), 4: (1, (1, 0))}
  assert (stats.window_start, stats.window_end) == (5, 6)


@pytest.mark.parametrize("end_day", [None, 5])
def test_compaction_and_shards_do_not_change_the_result(tmp_path, end_day):
  files = _write(tmp_path, ROWS, num_shards=3, compression="GZIP")
  config = stats_lib.StatsConfig(
    window_days=3, end_day=end_day, read_batch_size=2, compaction_rows=1
  )
  reference = stats_lib.StatsConfig(window_days=3, end_day=end_day)
  assert _as_dict(stats_lib.compute_stats(files, SCHEMA, config)) == _as_dict(
    stats_lib.compute_stats(files, SCHEMA, reference)
  )


def test_progress_reports_rows(tmp_path):
  files = _write(tmp_path, ROWS)
  seen = []
  stats_lib.compute_stats(
    files, SCHEMA, stats_lib.StatsConfig(window_days=1, read_batch_size=3), progress=seen.append
  )
  assert seen == [3, 6, 8]


def test_parquet_logs_give_the_same_statistics(tmp_path):
  cols = _columns(ROWS)
  path = str(tmp_path / "logs.parquet")
  # int32 days and an extra column are fine: columns are cast to the schema's dtypes.
  table = pa.table(
    {
      **{k: pa.array(v) for k, v in cols.items()},
      "day": pa.array(cols["day"].astype(np.int32)),
      "extra": pa.array(cols["user"]),
    }
  )
  pq.write_table(table, path, row_group_size=3)
  config = stats_lib.StatsConfig(window_days=2, end_day=5, read_batch_size=3)
  from_parquet = stats_lib.compute_stats(path, SCHEMA, config)
  assert _as_dict(from_parquet) == {1: (3, (2, 2)), 2: (1, (0, 0))}
  batches = list(stats_lib.iter_log_batches(path, {"ad_task_id": tf.int64, "day": tf.int64}, 3))
  assert [(first, len(b["day"])) for _, first, b in batches] == [(0, 3), (3, 3), (6, 2)]
  assert all(b["day"].dtype == np.int64 for _, _, b in batches)
  np.testing.assert_array_equal(np.concatenate([b["day"] for _, _, b in batches]), cols["day"])


@pytest.mark.parametrize(
  "config",
  [
    stats_lib.StatsConfig(window_days=2, read_batch_size=3),
    stats_lib.StatsConfig(window_days=2, end_day=5, label_delay_days=1, compaction_rows=1),
    stats_lib.StatsConfig(window_days=2, as_of=stats_lib.DAILY, read_batch_size=2),
  ],
)
def test_parquet_and_tfrecord_copies_write_the_same_bytes(tmp_path, config):
  tfrecords = _write(tmp_path, ROWS, num_shards=2)
  with parquet_logs.LogWriter(SCHEMA, str(tmp_path / "pq"), num_shards=2) as writer:
    # Row groups of 3 rows, in the TFRecord writer's round-robin over the shards.
    for start in range(0, len(ROWS), 3):
      writer.write(_columns(ROWS[start : start + 3]))
  assert [len(pq.read_table(p)) for p in writer.paths] == [5, 3]
  written = []
  for name, files in (("tfrecord", tfrecords), ("parquet", writer.paths)):
    written.append(str(tmp_path / f"{name}.stats.parquet"))
    stats_lib.compute_stats(files, SCHEMA, config).save(written[-1])
  with open(written[0], "rb") as a, open(written[1], "rb") as b:
    assert a.read() == b.read()


def test_parquet_with_nulls_or_missing_column_is_rejected(tmp_path):
  cols = _columns(ROWS[:2])
  with_null = str(tmp_path / "null.parquet")
  pq.write_table(
    pa.table(
      {**{k: pa.array(v) for k, v in cols.items()}, "label_B": pa.array([1, None], pa.int64())}
    ),
    with_null,
  )
  config = stats_lib.StatsConfig(window_days=2)
  with pytest.raises(
    stats_lib.LogError,
    match=r"null.parquet: record #1 field 'label_B' is "
    r"null",
  ):
    stats_lib.compute_stats(with_null, SCHEMA, config)
  # Under --skip_bad_records the record is skipped and counted; the other one still counts.
  skipping = stats_lib.StatsConfig(window_days=2, skip_bad_records=True)
  assert stats_lib.compute_stats(with_null, SCHEMA, skipping).rows_read == 1
  missing = str(tmp_path / "missing.parquet")
  pq.write_table(pa.table({k: pa.array(v) for k, v in cols.items() if k != "day"}), missing)
  with pytest.raises(stats_lib.LogError, match=r"missing.parquet: missing column 'day'"):
    stats_lib.compute_stats(missing, SCHEMA, config)


def test_bad_label_names_file_record_and_field(tmp_path):
  rows = [(1, 1, 0, 0), (1, 1, 0, 0), (1, 1, 0, 2)]
  files = _write(tmp_path, rows)
  with pytest.raises(
    stats_lib.LogError, match=r"logs-00000-of-00001.tfrecord: record #2 field 'label_B' is 2"
  ):
    stats_lib.compute_stats(files, SCHEMA, stats_lib.StatsConfig(window_days=1))


def test_record_missing_a_field_names_the_file(tmp_path):
  other = schema_lib.Schema(actions=("A",))
  cols = _columns(ROWS[:2], other)
  files = records.write_logs(other, str(tmp_path / "short"), cols)
  with pytest.raises(
    stats_lib.LogError,
    match=r"short-00000-of-00001.tfrecord: record #0 "
    r"field 'label_B' is missing",
  ):
    stats_lib.compute_stats(files, SCHEMA, stats_lib.StatsConfig(window_days=1))


def test_no_matching_files():
  with pytest.raises(FileNotFoundError, match="no log files match"):
    stats_lib.compute_stats("/nonexistent/*.tfrecord", SCHEMA, stats_lib.StatsConfig(1))


def test_save_load_round_trip_with_metadata(tmp_path):
  stats = stats_lib.compute_stats(
    _write(tmp_path, ROWS), SCHEMA, stats_lib.StatsConfig(window_days=2, end_day=5)
  )
  path = str(tmp_path / "stats.parquet")
  stats.save(path)
  assert not [f for f in os.listdir(tmp_path) if ".tmp-" in f]
  meta = json.loads(pq.read_schema(path).metadata[b"kaml.stats"])
  assert meta == {
    "version": 1,
    "actions": ["A", "B"],
    "schema_fingerprint": SCHEMA.fingerprint(),
    "window": {"start_day": 4, "end_day": 5, "days": 2},
    "rows_read": 8,
    "ad_tasks": 2,
  }
  assert pq.read_table(path).column_names == [
    "ad_task_id",
    "clicks",
    "conversions_A",
    "conversions_B",
  ]
  loaded = stats_lib.load_stats(path, SCHEMA)
  assert _as_dict(loaded) == _as_dict(stats)
  assert (loaded.window_start, loaded.window_end, loaded.source) == (4, 5, path)


def test_statistics_from_another_schema_are_rejected(tmp_path):
  stats = stats_lib.compute_stats(_write(tmp_path, ROWS), SCHEMA, stats_lib.StatsConfig(2))
  path = str(tmp_path / "stats.parquet")
  stats.save(path)
  other = schema_lib.Schema(
    actions=("A", "B"), sparse_features=(schema_lib.SparseFeature("ad_task_id", num_buckets=7),)
  )
  with pytest.raises(stats_lib.StatsError) as error:
    stats_lib.load_stats(path, other)
  message = str(error.value)
  assert path in message
  assert SCHEMA.fingerprint() in message and other.fingerprint() in message


def test_load_rejects_missing_and_foreign_files(tmp_path):
  with pytest.raises(stats_lib.StatsError, match="nope.parquet: statistics file not found"):
    stats_lib.load_stats(str(tmp_path / "nope.parquet"))
  foreign = str(tmp_path / "foreign.parquet")
  pq.write_table(pa.table({"a": [1]}), foreign)
  with pytest.raises(stats_lib.StatsError, match="foreign.parquet: no kaml.stats metadata"):
    stats_lib.load_stats(foreign)
  text = tmp_path / "text.parquet"
  text.write_text("hello")
  with pytest.raises(stats_lib.StatsError, match="text.parquet: not a readable Parquet file"):
    stats_lib.load_stats(str(text))


def test_lookup_joins_counts_and_flags_unknown_tasks():
  stats = stats_lib.ConversionStats(
    ad_task_ids=np.array([10, 20], np.int64),
    counts=np.array([[1, 2], [3, 4]], np.int64),
    clicks=np.array([5, 6], np.int64),
    actions=("A", "B"),
    schema_fingerprint="f",
    window_start=0,
    window_end=0,
  )
  counts, known = stats_lib.WindowCountsLookup(stats)(tf.constant([20, 99, 10], tf.int64))
  np.testing.assert_array_equal(counts.numpy(), [[3, 4], [0, 0], [1, 2]])
  np.testing.assert_array_equal(known.numpy(), [True, False, True])


def test_lookup_with_empty_statistics():
  stats = stats_lib.ConversionStats(
    ad_task_ids=np.zeros([0], np.int64),
    counts=np.zeros([0, 2], np.int64),
    clicks=np.zeros([0], np.int64),
    actions=("A", "B"),
    schema_fingerprint="f",
    window_start=0,
    window_end=0,
  )
  counts, known = stats_lib.WindowCountsLookup(stats)(tf.constant([0, 7], tf.int64))
  np.testing.assert_array_equal(counts.numpy(), [[0, 0], [0, 0]])
  np.testing.assert_array_equal(known.numpy(), [False, False])


@pytest.mark.parametrize(
  "kwargs, message",
  [
    (dict(window_days=0), r"^window_days: must be >= 1, got 0$"),
    (dict(read_batch_size=0), r"^read_batch_size: must be >= 1, got 0$"),
    (dict(as_of="weekly"), r"^as_of: must be one of \['end', 'daily'\], got 'weekly'$"),
  ],
)
def test_invalid_config_raises_a_config_error_naming_the_field(kwargs, message):
  with pytest.raises(configs.ConfigError, match=message) as error:
    stats_lib.StatsConfig(**kwargs)
  assert error.value.field == next(iter(kwargs))


def test_default_window_is_four_weeks():
  assert stats_lib.StatsConfig().window_days == 28


@pytest.mark.parametrize(
  "delay, end_day, expected, window",
  [
    # End day 6 (the last in the logs), T = 2. L = 0: days 5-6.
    (0, None, {1: (2, (1, 2)), 2: (1, (0, 0)), 4: (1, (1, 0))}, (5, 6)),
    # L = 1: day 6 is excluded, the window is days 4-5: task 1 has d4 (1, 0), d4 (1, 1) and
    # d5 (0, 1); task 2 d5; task 4 (day 6 only) is gone.
    (1, None, {1: (3, (2, 2)), 2: (1, (0, 0))}, (4, 5)),
    # L = 2: days 3-4: task 1 has d3 (1, 1) and the two day-4 rows.
    (2, None, {1: (3, (3, 2))}, (3, 4)),
    # An explicit end day 5 with L = 1: days 3-4 as well; day 6 is never read.
    (1, 5, {1: (3, (3, 2))}, (3, 4)),
  ],
)
def test_label_delay_excludes_the_last_days(tmp_path, delay, end_day, expected, window):
  files = _write(tmp_path, ROWS)
  config = stats_lib.StatsConfig(
    window_days=2, end_day=end_day, label_delay_days=delay, compaction_rows=1
  )
  stats = stats_lib.compute_stats(files, SCHEMA, config)
  assert _as_dict(stats) == expected
  assert (stats.window_start, stats.window_end, stats.window_days) == window + (2,)


def test_label_delay_zero_writes_the_same_bytes(tmp_path):
  files = _write(tmp_path, ROWS)
  paths = []
  for name, config in (
    ("default", stats_lib.StatsConfig(window_days=2)),
    ("zero", stats_lib.StatsConfig(window_days=2, label_delay_days=0)),
  ):
    paths.append(str(tmp_path / f"{name}.parquet"))
    stats_lib.compute_stats(files, SCHEMA, config).save(paths[-1])
  with open(paths[0], "rb") as a, open(paths[1], "rb") as b:
    assert a.read() == b.read()


def test_negative_label_delay_is_a_config_error():
  with pytest.raises(configs.ConfigError, match="label_delay_days: must be >= 0, got -1"):
    stats_lib.StatsConfig(label_delay_days=-1)
