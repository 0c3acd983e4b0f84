"""Point-in-time ADM statistics: which statistics a run uses, and the (ad task, day) join.

Static statistics (`pipelines.compute_stats --as_of=end`) are one window over the training
days, so every training row's mask is decided by counts that include the row's own day, its
own conversion and later days. Daily statistics (`--as_of=daily`, `stats.StatsConfig`) hold,
for each ad task and day d, the counts of days [d - T, d - 1]: what a daily production job
knows when day d's traffic is served. Joined on (ad_task_id, day), a row never sees its own
day's reports nor any later day's.

Stats modes (`DataConfig.stats_mode`, flag `--stats_mode`):

* "" (auto): `POINT_IN_TIME` when the statistics file is daily, else `STATIC`;
* `STATIC`: the static join on ad_task_id (`stats.WindowCountsLookup`); a daily file is an
  error;
* `POINT_IN_TIME`: the (ad_task_id, day) join (`DailyCountsLookup`); a static file is an error.

Under `POINT_IN_TIME` a row whose ad task has no statistics for its day (no click in the T
days before) gets the base mask and is counted as cold start.
"""

from typing import Callable, Optional, Tuple

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import numpy as np
import tensorflow as tf

from kaml_tf.data import stats as stats_lib

AUTO = ""
STATIC = "static"
POINT_IN_TIME = "point_in_time"
STATS_MODES = (AUTO, STATIC, POINT_IN_TIME)
STATS_MODE_FLAG = "stats_mode"

_INT64_MAX = int(np.iinfo(np.int64).max)

# (ad_task_id (batch,) int64, day (batch,) int64) -> (counts (batch, N) int64, known (batch,)).
CountsLookup = Callable[[tf.Tensor, tf.Tensor], Tuple[tf.Tensor, tf.Tensor]]


class StatsModeError(ValueError):
  """The stats mode does not fit the statistics file; the message names flag and file."""


def resolve_stats_mode(requested: str, stats: Optional[stats_lib.ConversionStats]) -> str:
  """The stats mode a run uses: `requested`, or the file's kind when `requested` is "".

  Args:
    requested: One of `STATS_MODES`.
    stats: The loaded statistics, or None (then "" resolves to `STATIC`: nothing to join).

  Returns:
    `STATIC` or `POINT_IN_TIME`.

  Raises:
    StatsModeError: for an unknown mode, `STATIC` with a daily file, or `POINT_IN_TIME`
      with a static one (naming --stats_mode and the file).
  """
  if requested not in STATS_MODES:
    raise StatsModeError(
      f"--{STATS_MODE_FLAG}: unknown mode {requested!r}; expected one of "
      f"{list(STATS_MODES)} ('' picks the statistics file's kind)"
    )
  if stats is None:
    return requested or STATIC
  if requested == AUTO:
    return POINT_IN_TIME if stats.is_daily else STATIC
  if requested == STATIC and stats.is_daily:
    raise StatsModeError(
      f"--{STATS_MODE_FLAG}={STATIC}: {stats.source} holds daily (point-in-time) statistics "
      f"of days {stats.window_start}-{stats.window_end}; use --{STATS_MODE_FLAG}="
      f"{POINT_IN_TIME} (or leave --{STATS_MODE_FLAG} empty), or recompute static ones with "
      "pipelines.compute_stats --as_of=end"
    )
  if requested == POINT_IN_TIME and not stats.is_daily:
    raise StatsModeError(
      f"--{STATS_MODE_FLAG}={POINT_IN_TIME}: {stats.source} holds static statistics of one "
      f"window (days {stats.window_start}-{stats.window_end}), not daily ones; rerun "
      "pipelines.compute_stats --as_of=daily to write point-in-time statistics"
    )
  return requested


class DailyCountsLookup:
  """Joins (ad task id, day) pairs to their point-in-time counts in-graph.

  One `StaticHashTable` maps the combined int64 key (ad_task_id - min id) * span +
  (day - first day covered) to a row of the counts matrix. Of one probe with its range checks,
  two probes (ad task -> index, then index and day) and a string key ("id:day", formatted and
  hashed per row), the combined key is the fastest
  (measured: docs/results/timings/library.md#point-in-time-counts-lookup), and exact as long
  as the key range fits int64 (checked when the table is built).

  Pairs missing from the statistics (the ad task had no click in the T days before the day)
  map to an extra all-zero row: zero counts and `known = False`. A day outside the days
  covered fails the pipeline: the statistics cannot tell whether such a row has history.
  """

  def __init__(self, stats: stats_lib.ConversionStats):
    """Builds the table.

    Raises:
      StatsError: naming the file for static statistics, or ad task ids spread too widely
        for the combined key.
    """
    if not stats.is_daily:
      raise stats_lib.StatsError(
        f"{stats.source}: static statistics have no day column; "
        "join them with stats.WindowCountsLookup"
      )
    num = stats.num_rows
    self._first, self._last = stats.window_start, stats.window_end
    self._span = self._last - self._first + 1
    ids = stats.ad_task_ids.astype(np.int64)
    self._low = int(ids.min()) if num else 0
    self._high = int(ids.max()) if num else 0
    if (self._high - self._low + 1) * self._span - 1 > _INT64_MAX:
      raise stats_lib.StatsError(
        f"{stats.source}: ad task ids span [{self._low}, {self._high}], too wide a range to "
        f"combine with {self._span} days into an int64 key; map the ad task ids to a "
        "smaller range (e.g. consecutive integers) before computing the statistics"
      )
    self._source = stats.source
    padded = np.concatenate(
      [stats.counts.astype(np.int64), np.zeros([1, len(stats.actions)], np.int64)], axis=0
    )
    with tf.init_scope():
      self._missing_row = tf.constant(num, tf.int64)
      self._counts = tf.constant(padded)
      # A table needs at least one key: without rows a placeholder maps to the missing row.
      keys = (
        (ids - self._low) * self._span + (stats.days - self._first)
        if num
        else np.zeros([1], np.int64)
      )
      values = np.arange(num, dtype=np.int64) if num else np.full([1], num, np.int64)
      self._table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(keys, tf.int64), tf.constant(values)),
        default_value=num,
      )

  def _day_checks(self, day: tf.Tensor):
    message = (
      f"{self._source}: point-in-time statistics cover days {self._first}-"
      f"{self._last} (the days of their logs and the day after); a record of a day "
      "outside them has none. Compute them with pipelines.compute_stats "
      "--as_of=daily over the logs up to the day before the last day you read"
    )
    return [
      tf.debugging.assert_greater_equal(day, tf.constant(self._first, tf.int64), message=message),
      tf.debugging.assert_less_equal(day, tf.constant(self._last, tf.int64), message=message),
    ]

  def __call__(self, ad_task_id: tf.Tensor, day: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """Looks up a batch of (ad task id, day) pairs.

    Args:
      ad_task_id: (batch,) int64.
      day: (batch,) int64, each in the days covered.

    Returns:
      (counts (batch, N) int64, known (batch,) bool).
    """
    ids = tf.cast(ad_task_id, tf.int64)
    day = tf.cast(day, tf.int64)
    with tf.control_dependencies(self._day_checks(day)):
      day = tf.identity(day)
    # Ids outside the statistics' range are unknown anyway; keying them would overflow.
    inside = (ids >= self._low) & (ids <= self._high)
    keys = tf.where(inside, (ids - self._low) * self._span + (day - self._first), 0)
    rows = tf.where(inside, self._table.lookup(keys), self._missing_row)
    return tf.gather(self._counts, rows), tf.not_equal(rows, self._missing_row)


def counts_lookup(stats: stats_lib.ConversionStats, mode: str) -> CountsLookup:
  """The join of a resolved stats `mode`, as a function of (ad_task_id, day).

  Raises:
    StatsModeError: when `mode` does not fit `stats` (see `resolve_stats_mode`).
  """
  mode = resolve_stats_mode(mode, stats)
  if mode == POINT_IN_TIME:
    return DailyCountsLookup(stats)
  static = stats_lib.WindowCountsLookup(stats)
  return lambda ad_task_id, day: static(ad_task_id)
