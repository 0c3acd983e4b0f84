"""Tests of point-in-time (daily) statistics: the job, the file, the join and the stats modes."""

import dataclasses
import json

import kaml_tf  # noqa: F401
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.data import dataset as dataset_lib
from kaml_tf.data import masks
from kaml_tf.data import point_in_time
from kaml_tf.data import stats as stats_lib

SCHEMA = schema_lib.Schema(
  actions=("A", "B"),
  sparse_features=(schema_lib.SparseFeature("ad_task_id"), schema_lib.SparseFeature("user")),
  dense_features=(schema_lib.DenseFeature("x"),),
)

# (ad_task_id, day, target_action, label_A, label_B). Task 5 targets B; its only conversion
# of A is on day 4. Task 7 (target A) appears on day 6 only.
LEAK_ROWS = [
  (5, 3, 1, 0, 0),
  (5, 4, 1, 1, 0),
  (5, 4, 1, 0, 1),
  (5, 5, 1, 0, 0),
  (5, 6, 1, 0, 0),
  (7, 6, 0, 1, 1),
]
# Window T = 2, alpha (1, 1). Daily rows: (5, 4) counts days 2-3: no conversion; (5, 5) and
# (5, 6) count day 4: A 1, B 1; (5, 7) counts days 5-6: none; (7, 7) counts day 6: A 1, B 1.
LEAK_DAILY = {
  (5, 4): (1, (0, 0)),
  (5, 5): (3, (1, 1)),
  (5, 6): (3, (1, 1)),
  (5, 7): (2, (0, 0)),
  (7, 7): (1, (1, 1)),
}
# Point in time: day 3 (no history) and task 7 on day 6 (first day) are cold starts (base
# mask); day 4 rows do not see their own day's A conversion; days 5 and 6 do.
LEAK_POINT_IN_TIME_MASK = [[0, 1], [0, 1], [0, 1], [1, 1], [1, 1], [1, 0]]
# Static window 3-6: every row sees task 5's day-4 conversions, task 7 its own.
LEAK_STATIC_MASK = [[1, 1]] * 6


def _columns(rows):
  a = np.asarray(rows, np.int64)
  n = len(a)
  return {
    "ad_task_id": a[:, 0],
    "day": a[:, 1],
    "target_action": a[:, 2],
    "user": np.arange(n, dtype=np.int64),
    "x": np.zeros(n, np.float32),
    "label_A": a[:, 3],
    "label_B": a[:, 4],
  }


def _write(tmp_path, rows, name="logs"):
  return records.write_logs(
    SCHEMA, str(tmp_path / name), _columns(rows), num_shards=2, batch_rows=3
  )


def _daily(files, window_days, **kwargs):
  config = stats_lib.StatsConfig(window_days=window_days, as_of=stats_lib.DAILY, **kwargs)
  return stats_lib.compute_stats(files, SCHEMA, config)


def _as_dict(stats):
  return {
    (int(t), int(d)): (int(c), tuple(int(v) for v in row))
    for t, d, c, row in zip(stats.ad_task_ids, stats.days, stats.clicks, stats.counts)
  }


def _brute_force(rows, window_days, first_day, last_day, delay=0):
  """{(task, d): (clicks, (A, B))} counted row by row over days d-L-T..d-L-1."""
  out = {}
  for d in range(first_day, last_day + 1):
    for task in sorted({r[0] for r in rows}):
      seen = [r for r in rows if r[0] == task and d - delay - window_days <= r[1] <= d - delay - 1]
      if seen:
        out[(task, d)] = (len(seen), (sum(r[3] for r in seen), sum(r[4] for r in seen)))
  return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("window_days", [1, 3, 7])
def test_daily_statistics_equal_a_brute_force_count(tmp_path, seed, window_days):
  rng = np.random.default_rng(seed)
  n = 80
  rows = [
    (int(t), int(d), 0, int(a), int(b))
    for t, d, a, b in zip(
      rng.integers(-2, 4, n), rng.integers(10, 22, n), rng.integers(0, 2, n), rng.integers(0, 2, n)
    )
  ]
  # Small reads and compaction: the (task, day) sums are merged across many parts.
  stats = _daily(_write(tmp_path, rows), window_days, read_batch_size=7, compaction_rows=5)
  first, last = min(r[1] for r in rows), max(r[1] for r in rows)
  assert (stats.window_start, stats.window_end, stats.window_days) == (first, last + 1, window_days)
  expected = _brute_force(rows, window_days, first, last + 1)
  assert _as_dict(stats) == expected
  # The day after the logs (a serving or test day) has statistics too.
  assert any(d == last + 1 for _, d in expected)
  assert stats.is_daily and stats.as_of == "daily" and stats.rows_read == n


@pytest.mark.parametrize("delay", [1, 2, 5])
@pytest.mark.parametrize("window_days", [1, 3])
def test_delayed_daily_statistics_equal_a_brute_force_count(tmp_path, delay, window_days):
  rng = np.random.default_rng(delay)
  n = 60
  rows = [
    (int(t), int(d), 0, int(a), int(b))
    for t, d, a, b in zip(
      rng.integers(0, 4, n), rng.integers(10, 20, n), rng.integers(0, 2, n), rng.integers(0, 2, n)
    )
  ]
  stats = _daily(
    _write(tmp_path, rows),
    window_days,
    label_delay_days=delay,
    read_batch_size=7,
    compaction_rows=5,
  )
  first, last = min(r[1] for r in rows), max(r[1] for r in rows)
  assert (stats.window_start, stats.window_end) == (first, last + 1)
  assert _as_dict(stats) == _brute_force(rows, window_days, first, last + 1, delay)


@pytest.mark.parametrize(
  "delay, expected",
  [
    (0, LEAK_DAILY),
    # L = 1: day d counts days d-3..d-2. Day 5: day 3 (1 click); day 6: days 3-4 (3 clicks,
    # A 1, B 1); day 7: days 4-5 (3 clicks, A 1, B 1); task 7 (day 6) would count from day 8.
    (1, {(5, 5): (1, (0, 0)), (5, 6): (3, (1, 1)), (5, 7): (3, (1, 1))}),
    # L = 2: day d counts days d-4..d-3. Day 6: day 3; day 7: days 3-4.
    (2, {(5, 6): (1, (0, 0)), (5, 7): (3, (1, 1))}),
  ],
)
def test_label_delay_by_hand(tmp_path, delay, expected):
  stats = _daily(_write(tmp_path, LEAK_ROWS), 2, label_delay_days=delay)
  assert _as_dict(stats) == expected
  assert (stats.window_start, stats.window_end, stats.window_days) == (3, 7, 2)


def test_a_row_never_sees_its_own_day(tmp_path):
  stats = _daily(_write(tmp_path, LEAK_ROWS), 2)
  assert _as_dict(stats) == LEAK_DAILY
  assert (stats.window_start, stats.window_end) == (3, 7)


def test_end_day_bounds_the_days_read_and_covered(tmp_path):
  stats = _daily(_write(tmp_path, LEAK_ROWS), 2, end_day=4)
  # Days after 4 are not read: day 5 counts days 3-4 only.
  assert _as_dict(stats) == {(5, 4): (1, (0, 0)), (5, 5): (3, (1, 1))}
  assert (stats.window_start, stats.window_end) == (3, 5)


def test_unknown_as_of_is_rejected():
  with pytest.raises(ValueError, match=r"as_of: must be one of \['end', 'daily'\], got 'weekly'"):
    stats_lib.StatsConfig(window_days=2, as_of="weekly")


def test_daily_file_round_trip_and_metadata(tmp_path):
  stats = _daily(_write(tmp_path, LEAK_ROWS), 2)
  path = str(tmp_path / "daily.parquet")
  stats.save(path)
  meta = json.loads(pq.read_schema(path).metadata[b"kaml.stats"])
  assert meta == {
    "version": 2,
    "as_of": "daily",
    "actions": ["A", "B"],
    "schema_fingerprint": SCHEMA.fingerprint(),
    "window": {"days": 2},
    "days_covered": {"first_day": 3, "last_day": 7},
    "rows_read": 6,
    "ad_tasks": 2,
    "rows": 5,
  }
  assert pq.read_table(path).column_names == [
    "ad_task_id",
    "day",
    "clicks",
    "conversions_A",
    "conversions_B",
  ]
  loaded = stats_lib.load_stats(path, SCHEMA)
  assert loaded.is_daily and _as_dict(loaded) == LEAK_DAILY
  assert (loaded.window_start, loaded.window_end, loaded.window_days) == (3, 7, 2)
  header = stats_lib.load_stats_header(path, SCHEMA)
  assert header.is_daily and header.num_rows == 0 and header.window_days == 2


def test_old_static_file_still_loads(tmp_path):
  # A file as written before daily statistics existed: version 1, no "as_of".
  path = str(tmp_path / "old.parquet")
  meta = {
    "version": 1,
    "actions": ["A", "B"],
    "schema_fingerprint": SCHEMA.fingerprint(),
    "window": {"start_day": 0, "end_day": 27, "days": 28},
    "rows_read": 9,
    "ad_tasks": 2,
  }
  table = pa.table(
    {
      "ad_task_id": pa.array([3, 8], pa.int64()),
      "clicks": pa.array([4, 5], pa.int64()),
      "conversions_A": pa.array([1, 0], pa.int64()),
      "conversions_B": pa.array([0, 2], pa.int64()),
    }
  )
  pq.write_table(table.replace_schema_metadata({b"kaml.stats": json.dumps(meta).encode()}), path)
  stats = stats_lib.load_stats(path, SCHEMA)
  assert not stats.is_daily and stats.as_of == "end" and stats.days is None
  np.testing.assert_array_equal(stats.counts, [[1, 0], [0, 2]])
  assert (stats.window_start, stats.window_end, stats.window_days) == (0, 27, 28)
  assert point_in_time.resolve_stats_mode("", stats) == point_in_time.STATIC


def test_daily_file_without_day_column_is_rejected(tmp_path):
  stats = _daily(_write(tmp_path, LEAK_ROWS), 2)
  path = str(tmp_path / "broken.parquet")
  table = stats.to_table()
  pq.write_table(table.drop(["day"]), path)
  with pytest.raises(stats_lib.StatsError, match=r"broken.parquet: missing column 'day'"):
    stats_lib.load_stats(path)


def _factory(files, stats, stats_mode="", batch_size=4):
  config = dataset_lib.DatasetConfig(
    files=files, batch_size=batch_size, mask=masks.MaskConfig("adm", (1, 1)), stats_mode=stats_mode
  )
  return dataset_lib.DatasetFactory(SCHEMA, stats, config)


def _masks(factory):
  return np.concatenate([t["mask"].numpy() for _, t in factory()])


def _sorted_logs(tmp_path, fmt):
  # One shard, rows in LEAK_ROWS order, so masks line up with the expectations.
  if fmt == "parquet":
    path = str(tmp_path / "logs.parquet")
    pq.write_table(pa.table(_columns(LEAK_ROWS)), path, row_group_size=4)
    return path
  return records.write_logs(SCHEMA, str(tmp_path / "logs"), _columns(LEAK_ROWS))


@pytest.mark.parametrize("fmt", ["tfrecord", "parquet"])
def test_point_in_time_masks_and_cold_starts(tmp_path, fmt):
  files = _sorted_logs(tmp_path, fmt)
  factory = _factory(files, _daily(files, 2))
  assert factory.stats_mode == point_in_time.POINT_IN_TIME
  np.testing.assert_array_equal(_masks(factory), LEAK_POINT_IN_TIME_MASK)
  counters = factory.counters
  assert (counters.cold_start_samples, counters.unknown_ad_task_samples, counters.samples_read) == (
    2,
    0,
    6,
  )
  counters.reset()
  assert counters.cold_start_samples == 0


def test_static_mode_is_unchanged(tmp_path):
  files = _sorted_logs(tmp_path, "tfrecord")
  static = stats_lib.compute_stats(files, SCHEMA, stats_lib.StatsConfig(window_days=4))
  for mode in ("", "static"):
    factory = _factory(files, static, mode)
    assert factory.stats_mode == point_in_time.STATIC
    np.testing.assert_array_equal(_masks(factory), LEAK_STATIC_MASK)
    assert (factory.counters.cold_start_samples, factory.counters.samples_read) == (0, 6)
  # An ad task missing from static statistics is still "unknown", not a cold start.
  only_5 = stats_lib.compute_stats(files, SCHEMA, stats_lib.StatsConfig(window_days=4, end_day=5))
  factory = _factory(files, only_5)
  np.testing.assert_array_equal(_masks(factory)[5], [1, 0])
  assert (factory.counters.unknown_ad_task_samples, factory.counters.cold_start_samples) == (1, 0)


def test_stats_mode_errors(tmp_path):
  files = _sorted_logs(tmp_path, "tfrecord")
  daily = dataclasses.replace(_daily(files, 2), source="daily.parquet")
  static = dataclasses.replace(
    stats_lib.compute_stats(files, SCHEMA, stats_lib.StatsConfig(window_days=4)),
    source="static.parquet",
  )
  with pytest.raises(
    point_in_time.StatsModeError, match=r"--stats_mode=static: daily.parquet holds daily"
  ):
    _factory(files, daily, "static")
  with pytest.raises(
    point_in_time.StatsModeError,
    match=r"--stats_mode=point_in_time: static.parquet holds static .*rerun "
    r"pipelines.compute_stats --as_of=daily",
  ):
    _factory(files, static, "point_in_time")
  with pytest.raises(point_in_time.StatsModeError, match=r"--stats_mode: unknown mode 'daily'"):
    _factory(files, static, "daily")


def test_lookup_of_days_outside_the_statistics_fails(tmp_path):
  stats = _daily(_write(tmp_path, LEAK_ROWS), 2)
  lookup = point_in_time.DailyCountsLookup(stats)
  counts, known = lookup(
    tf.constant([5, 5, 7, 99, -4], tf.int64), tf.constant([5, 7, 7, 5, 5], tf.int64)
  )
  np.testing.assert_array_equal(counts.numpy(), [[1, 1], [0, 0], [1, 1], [0, 0], [0, 0]])
  np.testing.assert_array_equal(known.numpy(), [True, True, True, False, False])
  with pytest.raises(
    tf.errors.InvalidArgumentError, match=r"<memory>: point-in-time statistics cover days 3-7"
  ):
    lookup(tf.constant([5], tf.int64), tf.constant([8], tf.int64))


def test_ad_task_ids_too_spread_for_the_combined_key():
  big = np.iinfo(np.int64).max
  stats = stats_lib.ConversionStats(
    ad_task_ids=np.array([-big, big], np.int64),
    counts=np.zeros([2, 2], np.int64),
    clicks=np.ones(2, np.int64),
    actions=("A", "B"),
    schema_fingerprint="f",
    window_start=0,
    window_end=1,
    source="wide.parquet",
    days=np.array([1, 1], np.int64),
    lookback_days=1,
  )
  with pytest.raises(stats_lib.StatsError, match=r"wide.parquet: ad task ids span"):
    point_in_time.DailyCountsLookup(stats)


def test_static_join_refuses_daily_statistics(tmp_path):
  stats = _daily(_write(tmp_path, LEAK_ROWS), 2)
  with pytest.raises(stats_lib.StatsError, match="daily statistics hold one row per"):
    stats_lib.WindowCountsLookup(stats)
