"""Ad-task conversion statistics: the counts c_i^j that Attribution Driven Masking thresholds.

Two kinds (`StatsConfig.as_of`):

* `end` (static, one window): for every ad task with at least one click in the window of
  `window_days` days ending at `end_day` (inclusive; default: the last day in the logs), the
  statistics hold its click count (records, since each record is a post-click sample) and,
  per action, its number of reported conversions (records with `label_<action> = 1`). Days
  after `end_day` never count. Every training row of the window is masked by counts that
  include its own day and later days.
* `daily` (point in time): one row per (ad task, day d) for every day d from the first log day
  to the day after the last one (`end_day` + 1 when given), counting the task's clicks and
  reported conversions of days [d - T, d - 1], never day d itself; a task gets a row for day d
  only if it has a click in those days. A row of day d is then masked by what a daily job
  would have known on the morning of day d. Days are consecutive integers (d - 1 is the day
  before d).

Conversion delay (`label_delay_days` = L >= 0): the last L days before the statistics are
taken are excluded, not counted as partial. The window keeps its T days and ends L days
earlier: `end` counts days [E - L - T + 1, E - L] (E: `end_day`, default the last day in the
logs); `daily` gives day d the counts of days [d - L - T, d - L - 1]. Why excluded: the
conversions of those days' clicks have not all been reported yet, so their counts are known
to be too low; counted, they would bias Attribution Driven Masking toward not extending a
task's mask (fewer conversions than alpha), on the newest tasks most. A window of T complete
days keeps the counts on the scale the thresholds were set for. L = 0 (the default) is the
behaviour, and the bytes, of statistics without delay.

The job streams the logs in large batches (TFRecord through `tf.data`, Parquet through
pyarrow, both via `validation.checked_batches`) and aggregates each batch with pyarrow
into per (ad task, day) partial sums, compacted whenever they grow: memory is bounded by the
number of (ad task, day) pairs, never by the number of rows.

The daily windows are sliding sums of the per (ad task, day) table, sorted by task then day:
one cumulative sum over it, and two binary searches per output row whose difference stays
within the row's task, vectorised in numpy (`_daily_windows`). Memory stays bounded by
(ad task, day) pairs: the input pairs, and the output rows (at most T per input pair).

The result is one Parquet file, written atomically, with the columns `ad_task_id` (then `day`
for daily statistics), `clicks` and `conversions_<action>` (sorted by ad task id, then day)
and, under the metadata key `kaml.stats`, a JSON object with the window, the action names and
the fingerprint of the schema it was computed with (daily files: version 2, `as_of` "daily",
the window length and the days covered). `load_stats` reads either back into a
`ConversionStats` (`is_daily` tells them apart); `WindowCountsLookup` joins static statistics
to batches of ad task ids in-graph, `point_in_time.DailyCountsLookup` daily ones to
(ad task id, day) pairs.
"""

import dataclasses
import json
from typing import Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import tensorflow as tf

from kaml_tf import configs
from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.logs import parquet as parquet_logs
from kaml_tf.logs import validation
from kaml_tf import atomic

STATS_VERSION = 1
# Daily files get their own version, so that a library that only knows static statistics
# refuses them instead of reading one row per (task, day) as one row per task.
DAILY_STATS_VERSION = 2
END = "end"
DAILY = "daily"
AS_OF = (END, DAILY)
METADATA_KEY = b"kaml.stats"
CLICKS = "clicks"
CONVERSIONS_PREFIX = "conversions_"
PARQUET_SUFFIX = parquet_logs.PARQUET_SUFFIX
TFRECORD_FORMAT = "tfrecord"
PARQUET_FORMAT = "parquet"

_COUNT = "count_all"


class StatsError(ValueError):
  """Statistics are malformed or do not match the schema; the message names the file."""


# A log file is unreadable or a record is malformed; the message names file, record and field.
LogError = validation.LogError


# --------------------------------------------------------------------------------------------
# Reading logs in batches (TFRecord or Parquet).
# --------------------------------------------------------------------------------------------


def log_format(path: str) -> str:
  """`PARQUET_FORMAT` for `*.parquet` files, else `TFRECORD_FORMAT` (plain or `.gz`)."""
  return PARQUET_FORMAT if parquet_logs.is_parquet(path) else TFRECORD_FORMAT


def iter_log_batches(
  files: Union[str, Sequence[str]],
  fields: Mapping[str, tf.DType],
  batch_size: int = 65536,
  schema: Optional[schema_lib.Schema] = None,
  bad: Optional[validation.BadRecords] = None,
) -> Iterator[Tuple[str, int, Dict[str, np.ndarray]]]:
  """Streams the logs as checked numpy column batches, file by file in sorted order.

  From Parquet only the columns of `fields` are read, `batch_size` rows at a time, and checked
  without Python per row, so the statistics job reads millions of rows per second; from
  TFRecord `tf.io.parse_example` bounds it (measured:
  docs/results/timings/library.md#statistics-job-from-parquet-and-tfrecord).

  Args:
    files: A glob, comma-separated globs or a list of paths (TFRecord, `.gz` or `.parquet`).
    fields: Field name -> dtype of the columns to read.
    batch_size: Rows per batch.
    schema: Checks label, target and dense values when given (`validation.value_problems`).
    bad: None: a bad record raises; else bad records are dropped and counted in it.

  Yields:
    (path, index of the batch's first record in the file, {field: (rows,) array}); under
    `bad`, the rows are the batch's good records.

  Raises:
    FileNotFoundError: when a pattern matches nothing.
    LogError: naming the file, record and field when a record cannot be used.
  """
  spec = {k: tf.io.FixedLenFeature([], d) for k, d in fields.items()}
  for path in records.list_files(files):
    for first, columns in validation.checked_batches(path, schema, spec, batch_size, bad):
      yield path, first, columns


# --------------------------------------------------------------------------------------------
# The statistics object.
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StatsConfig:
  """Settings of the statistics job, each field's help in its metadata (`configs.field`).

  `as_of`: `END`, one window ending at `end_day`; `DAILY`, point-in-time windows [d - T, d - 1]
  for every day d of the logs up to `end_day` + 1 (module docstring). An invalid value raises
  `configs.ConfigError` naming the field.
  """

  window_days: int = configs.field(
    28, "Statistics window T in days (the paper's four weeks by default)."
  )
  end_day: Optional[int] = configs.field(
    None, "Last day D of the statistics window (inclusive); default: the last day in the logs."
  )
  read_batch_size: int = configs.field(65536, "Log records per read batch.")
  compaction_rows: int = configs.field(
    1_000_000, "Partial (ad task, day) rows kept before they are re-aggregated."
  )
  skip_bad_records: bool = configs.field(
    False,
    "Skip and count malformed records (kaml_tf.logs.validation) instead of failing on the "
    "first one.",
  )
  as_of: str = configs.field(
    END,
    "Statistics kind: end, one static window ending at --end_day; daily, for every day d the "
    "counts of days d-T..d-1 (point in time, never day d itself).",
    choices=AS_OF,
  )
  label_delay_days: int = configs.field(
    0,
    "Conversion delay L: the last L days of the logs are not final (conversions still "
    "arriving) and are excluded: statistics --as_of=end count days E-L-T+1..E-L, --as_of=daily "
    "give day d the days d-L-T..d-L-1; training drops the last L days of --train; 0: off.",
  )

  def __post_init__(self):
    if self.as_of not in AS_OF:
      raise _config_error("as_of", f"must be one of {list(AS_OF)}, got {self.as_of!r}")
    if self.label_delay_days < 0:
      raise _config_error("label_delay_days", f"must be >= 0, got {self.label_delay_days}")
    for name in ("window_days", "read_batch_size"):
      if getattr(self, name) < 1:
        raise _config_error(name, f"must be >= 1, got {getattr(self, name)}")


def _config_error(name: str, detail: str) -> configs.ConfigError:
  return configs.ConfigError.of(StatsConfig, name, detail)


@dataclasses.dataclass(frozen=True)
class ConversionStats:
  """Per ad task (static) or per (ad task, day) (daily) click and conversion counts.

  Attributes:
    ad_task_ids: (K,) int64; static: sorted, unique; daily: sorted with `days`, the
      (ad_task_id, day) pairs unique.
    counts: (K, N) int64, reported conversions of each action in the row's window.
    clicks: (K,) int64, records in the row's window.
    actions: The N action names, in column order.
    schema_fingerprint: `Schema.fingerprint()` of the schema the logs were read with.
    window_start: Static: first day of the window (inclusive). Daily: first day covered
      (the first log day; its rows have no history yet).
    window_end: Static: last day of the window (inclusive). Daily: last day covered (the
      day after the last log day read).
    rows_read: Log records read to compute the statistics (in and out of the window).
    source: The file the statistics were loaded from, or "<memory>".
    skipped_bad_records: What `skip_bad_records` skipped (`BadRecords.to_dict()`), or None
      when the job ran without it.
    days: Daily statistics only: (K,) int64, the day d each row is for (its counts cover
      days [d - lookback_days, d - 1]); None for static statistics.
    lookback_days: Daily statistics only: the window length T.
  """

  ad_task_ids: np.ndarray
  counts: np.ndarray
  clicks: np.ndarray
  actions: Tuple[str, ...]
  schema_fingerprint: str
  window_start: int
  window_end: int
  rows_read: int = 0
  source: str = "<memory>"
  skipped_bad_records: Optional[Dict[str, object]] = None
  days: Optional[np.ndarray] = None
  lookback_days: int = 0

  def __post_init__(self):
    k = len(self.ad_task_ids)
    where = self.source
    if self.counts.shape != (k, len(self.actions)):
      raise StatsError(
        f"{where}: counts have shape {self.counts.shape}, expected ({k}, {len(self.actions)})"
      )
    if self.clicks.shape != (k,):
      raise StatsError(f"{where}: clicks have shape {self.clicks.shape}, expected ({k},)")
    if self.days is not None:
      self._check_daily_rows()
    elif k > 1 and not np.all(self.ad_task_ids[1:] > self.ad_task_ids[:-1]):
      raise StatsError(f"{where}: ad_task_id values must be unique and sorted")

  def _check_daily_rows(self) -> None:
    k, where = len(self.ad_task_ids), self.source
    if self.days.shape != (k,):
      raise StatsError(f"{where}: days have shape {self.days.shape}, expected ({k},)")
    if self.lookback_days < 1:
      raise StatsError(
        f"{where}: daily statistics need a window of >= 1 day, got {self.lookback_days}"
      )
    # Comparisons, not differences: np.diff of far-apart int64 ids overflows.
    ids, days = self.ad_task_ids, self.days
    if not np.all((ids[1:] > ids[:-1]) | ((ids[1:] == ids[:-1]) & (days[1:] > days[:-1]))):
      raise StatsError(f"{where}: (ad_task_id, day) pairs must be unique and sorted")
    if k and (self.days.min() < self.window_start or self.days.max() > self.window_end):
      raise StatsError(
        f"{where}: days {self.days.min()}-{self.days.max()} fall outside the "
        f"days covered, {self.window_start}-{self.window_end}"
      )

  @property
  def is_daily(self) -> bool:
    """Whether these are point-in-time statistics, one row per (ad task, day)."""
    return self.days is not None

  @property
  def as_of(self) -> str:
    return DAILY if self.is_daily else END

  @property
  def num_rows(self) -> int:
    return len(self.ad_task_ids)

  @property
  def num_ad_tasks(self) -> int:
    """Distinct ad tasks (the rows, for static statistics)."""
    return len(np.unique(self.ad_task_ids)) if self.is_daily else len(self.ad_task_ids)

  @property
  def window_days(self) -> int:
    """T: the days each row counts."""
    if self.is_daily:
      return self.lookback_days
    return self.window_end - self.window_start + 1

  def metadata(self) -> Dict[str, object]:
    """The JSON metadata stored under `METADATA_KEY`."""
    skipped = (
      {"skipped_bad_records": self.skipped_bad_records}
      if self.skipped_bad_records is not None
      else {}
    )
    if self.is_daily:
      return {
        "version": DAILY_STATS_VERSION,
        "as_of": DAILY,
        "actions": list(self.actions),
        "schema_fingerprint": self.schema_fingerprint,
        "window": {"days": self.lookback_days},
        "days_covered": {"first_day": self.window_start, "last_day": self.window_end},
        "rows_read": self.rows_read,
        "ad_tasks": self.num_ad_tasks,
        "rows": self.num_rows,
      } | skipped
    return {
      "version": STATS_VERSION,
      "actions": list(self.actions),
      "schema_fingerprint": self.schema_fingerprint,
      "window": {
        "start_day": self.window_start,
        "end_day": self.window_end,
        "days": self.window_days,
      },
      "rows_read": self.rows_read,
      "ad_tasks": self.num_ad_tasks,
    } | skipped

  def check_schema(self, schema: schema_lib.Schema) -> None:
    """Raises `StatsError` naming the file and both fingerprints unless `schema` matches."""
    fingerprint = schema.fingerprint()
    if tuple(self.actions) != tuple(schema.actions) or self.schema_fingerprint != fingerprint:
      raise StatsError(
        f"{self.source}: statistics were computed with schema fingerprint "
        f"{self.schema_fingerprint} (actions {list(self.actions)}), but the schema in use has "
        f"fingerprint {fingerprint} (actions {list(schema.actions)}); recompute them with "
        "pipelines.compute_stats and this schema"
      )

  def to_table(self) -> pa.Table:
    columns = {schema_lib.AD_TASK_ID: pa.array(self.ad_task_ids, pa.int64())}
    if self.is_daily:
      columns[schema_lib.DAY] = pa.array(self.days, pa.int64())
    columns[CLICKS] = pa.array(self.clicks, pa.int64())
    for j, action in enumerate(self.actions):
      columns[CONVERSIONS_PREFIX + action] = pa.array(self.counts[:, j], pa.int64())
    table = pa.table(columns)
    meta = json.dumps(self.metadata(), sort_keys=True).encode("utf-8")
    return table.replace_schema_metadata({METADATA_KEY: meta})

  def save(self, path: str) -> None:
    """Writes the statistics as one Parquet file, atomically."""
    with atomic.atomic_path(path) as tmp:
      pq.write_table(self.to_table(), tmp)


def _int_column(table: pa.Table, name: str) -> np.ndarray:
  return table.column(name).to_numpy().astype(np.int64)


def _read_metadata(path: str, raw: bytes) -> Dict[str, object]:
  """The constructor arguments that the `METADATA_KEY` JSON of `path` gives.

  Version 1 files are static (they may lack `as_of`: files written before daily statistics
  existed); version 2 files are daily.

  Raises:
    StatsError: naming `path` for malformed metadata or an unknown version.
  """
  malformed = lambda e: StatsError(  # noqa: E731
    f"{path}: malformed {METADATA_KEY.decode()} metadata ({e!r})"
  )
  try:
    meta = json.loads(raw.decode("utf-8"))
    version, as_of = meta["version"], meta.get("as_of", END)
  except (ValueError, KeyError, TypeError, AttributeError) as e:
    raise malformed(e) from None
  if version not in (STATS_VERSION, DAILY_STATS_VERSION):
    raise StatsError(
      f"{path}: statistics version {version!r}, this library reads "
      f"{STATS_VERSION} (static) and {DAILY_STATS_VERSION} (daily)"
    )
  if as_of != (DAILY if version == DAILY_STATS_VERSION else END):
    raise StatsError(f"{path}: statistics version {version} cannot be as_of {as_of!r}")
  try:
    out = {
      "actions": tuple(meta["actions"]),
      "schema_fingerprint": str(meta["schema_fingerprint"]),
      "rows_read": int(meta.get("rows_read", 0)),
      "skipped_bad_records": meta.get("skipped_bad_records"),
    }
    if as_of == DAILY:
      covered = meta["days_covered"]
      out.update(
        window_start=int(covered["first_day"]),
        window_end=int(covered["last_day"]),
        lookback_days=int(meta["window"]["days"]),
      )
    else:
      out.update(
        window_start=int(meta["window"]["start_day"]), window_end=int(meta["window"]["end_day"])
      )
  except (ValueError, KeyError, TypeError) as e:
    raise malformed(e) from None
  return out


def _check_columns(path: str, table: pa.Table, names: Sequence[str]) -> None:
  for name in names:
    if name not in table.column_names:
      raise StatsError(f"{path}: missing column {name!r}")
    if not pa.types.is_integer(table.schema.field(name).type):
      raise StatsError(
        f"{path}: column {name!r} has type {table.schema.field(name).type}, expected int64"
      )


def _open(path: str, header_only: bool) -> Tuple[Union[pa.Table, pa.Schema], Dict[str, object]]:
  """The table (or only its schema) of a statistics file, and its parsed metadata."""
  if not tf.io.gfile.exists(path):
    raise StatsError(f"{path}: statistics file not found")
  try:
    table = pq.read_schema(path) if header_only else pq.read_table(path)
  except (OSError, pa.ArrowException) as e:
    raise StatsError(f"{path}: not a readable Parquet file ({e})") from None
  arrow_schema = table if header_only else table.schema
  raw = (arrow_schema.metadata or {}).get(METADATA_KEY)
  if raw is None:
    raise StatsError(
      f"{path}: no {METADATA_KEY.decode()} metadata; not a statistics file "
      "written by pipelines.compute_stats"
    )
  return table, _read_metadata(path, raw)


def load_stats(path: str, schema: Optional[schema_lib.Schema] = None) -> ConversionStats:
  """Reads a statistics file written by `ConversionStats.save`, static or daily.

  Args:
    path: The Parquet file.
    schema: When given, the statistics must have been computed with it (`check_schema`).

  Returns:
    The statistics; `is_daily` (and `days`) tell point-in-time from static ones.

  Raises:
    StatsError: naming `path` when it is missing, not Parquet, not a statistics file, or
      computed with another schema (naming both fingerprints).
  """
  table, meta = _open(path, header_only=False)
  actions = meta["actions"]
  daily = "lookback_days" in meta
  names = [schema_lib.AD_TASK_ID] + ([schema_lib.DAY] if daily else []) + [CLICKS]
  _check_columns(path, table, names + [CONVERSIONS_PREFIX + a for a in actions])
  counts = (
    np.stack([_int_column(table, CONVERSIONS_PREFIX + a) for a in actions], axis=1)
    if actions
    else np.zeros([table.num_rows, 0], np.int64)
  )
  stats = ConversionStats(
    ad_task_ids=_int_column(table, schema_lib.AD_TASK_ID),
    counts=counts.reshape(table.num_rows, -1),
    clicks=_int_column(table, CLICKS),
    source=path,
    days=_int_column(table, schema_lib.DAY) if daily else None,
    **meta,
  )
  if schema is not None:
    stats.check_schema(schema)
  return stats


def load_stats_header(path: str, schema: Optional[schema_lib.Schema] = None) -> ConversionStats:
  """The metadata of a statistics file (kind, window, schema) without reading its rows.

  For checks before the rows are needed (e.g. `--stats_mode` against the file's kind before
  a job writes anything): the result has the file's window, actions and kind, and no rows.

  Raises:
    StatsError: as `load_stats`.
  """
  _, meta = _open(path, header_only=True)
  empty = np.zeros([0], np.int64)
  stats = ConversionStats(
    ad_task_ids=empty,
    counts=np.zeros([0, len(meta["actions"])], np.int64),
    clicks=empty,
    source=path,
    days=empty if "lookback_days" in meta else None,
    **meta,
  )
  if schema is not None:
    stats.check_schema(schema)
  return stats


# --------------------------------------------------------------------------------------------
# The statistics job.
# --------------------------------------------------------------------------------------------


def sum_by_task_day(table: pa.Table, values: Sequence[str]) -> pa.Table:
  """One row per (ad task, day) of `table`: `ad_task_id`, `day`, then the sum of each of
  `values` under its own name (in no particular row order)."""
  keys = [schema_lib.AD_TASK_ID, schema_lib.DAY]
  summed = table.group_by(keys, use_threads=False).aggregate([(k, "sum") for k in values])
  return summed.rename_columns({f"{k}_sum": k for k in values}).select(keys + list(values))


class _WindowAggregator:
  """Per (ad task, day) click and conversion sums, compacted as they grow."""

  def __init__(self, label_keys: Sequence[str], config: StatsConfig):
    self._labels = list(label_keys)
    self._config = config
    self._parts: List[pa.Table] = []
    self._part_rows = 0
    self.max_day: Optional[int] = None
    self.min_day: Optional[int] = None

  def _lowest_useful_day(self) -> Optional[int]:
    if self._config.as_of == DAILY:
      # Every day is some later day's history.
      return None
    end = self._config.end_day if self._config.end_day is not None else self.max_day
    if end is None:
      return None
    return end - self._config.label_delay_days - self._config.window_days + 1

  def add(self, batch: Mapping[str, np.ndarray]) -> None:
    day = batch[schema_lib.DAY]
    if day.size:
      top, bottom = int(day.max()), int(day.min())
      self.max_day = top if self.max_day is None else max(self.max_day, top)
      self.min_day = bottom if self.min_day is None else min(self.min_day, bottom)
    keys = [schema_lib.AD_TASK_ID, schema_lib.DAY]
    table = pa.table({k: batch[k] for k in keys + self._labels})
    end = self._config.end_day
    if end is not None:
      # Days after E - L are never counted (E itself is still the last day rows are for).
      end -= self._config.label_delay_days
      keep = pc.field(schema_lib.DAY) <= end
      if self._config.as_of == END:
        keep &= pc.field(schema_lib.DAY) >= end - self._config.window_days + 1
      table = table.filter(keep)
    part = table.group_by([schema_lib.AD_TASK_ID, schema_lib.DAY], use_threads=False).aggregate(
      [(k, "sum") for k in self._labels] + [([], _COUNT)]
    )
    part = part.rename_columns({f"{k}_sum": k for k in self._labels} | {_COUNT: CLICKS})
    self._parts.append(part.select([schema_lib.AD_TASK_ID, schema_lib.DAY, CLICKS] + self._labels))
    self._part_rows += part.num_rows
    if self._part_rows > self._config.compaction_rows:
      self._compact()

  def _compact(self) -> None:
    table = pa.concat_tables(self._parts)
    low = self._lowest_useful_day()
    if low is not None:
      # Days before the window of the latest day seen so far can never count again.
      table = table.filter(pc.field(schema_lib.DAY) >= low)
    summed = sum_by_task_day(table, [CLICKS] + self._labels)
    self._parts = [summed]
    self._part_rows = summed.num_rows

  def per_day(self, end_day: int) -> pa.Table:
    """The (ad task, day) sums of days <= `end_day`, one row per pair, sorted by both."""
    self._compact()
    table = self._parts[0].filter(pc.field(schema_lib.DAY) <= end_day)
    return table.sort_by([(schema_lib.AD_TASK_ID, "ascending"), (schema_lib.DAY, "ascending")])


def _daily_windows(
  task: np.ndarray, day: np.ndarray, values: np.ndarray, window_days: int, last_day: int
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Point-in-time sums: for each (task, d) with history, the sum of days [d - T, d - 1].

  Args:
    task: (P,) int64 ad task ids and `day` (P,) int64 days: unique pairs, sorted by task
      then day.
    values: (P, C) int64 sums of each (task, day).
    window_days: T.
    last_day: The last day to emit rows for.

  Returns:
    (tasks (R,), days (R,), sums (R, C)): one row for every day d <= `last_day` that has a
    (task, day) pair in [d - T, d - 1], sorted by task then day. Every input day must be
    before `last_day`.
  """
  if not len(task):
    return task, day, values
  new_task = np.r_[True, task[1:] != task[:-1]]
  index = np.cumsum(new_task) - 1
  # Day e feeds days e + 1 .. e + T. Those spans, merged per task where they touch (the next
  # active day at most T days later), are the days with history.
  starts = np.r_[True, new_task[1:] | (np.diff(day) > window_days)]
  ends = np.r_[starts[1:], True]
  first = day[starts] + 1
  lengths = np.minimum(day[ends] + window_days, last_day) - first + 1
  group_task = index[starts]
  offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
  out_index = np.repeat(group_task, lengths)
  out_day = np.repeat(first, lengths) + offsets
  # One sorted int64 key per (task index, day), so that every window is two binary searches
  # into the cumulative sums; the day part stays in [0, stride) for every day queried.
  base = int(day.min()) - window_days - 1
  stride = last_day - base + 1
  key = lambda i, d: i * stride + (d - base)  # noqa: E731
  cumulative = np.concatenate(
    [np.zeros((1, values.shape[1]), np.int64), np.cumsum(values, axis=0, dtype=np.int64)]
  )
  keys = key(index, day)
  upper = np.searchsorted(keys, key(out_index, out_day - 1), side="right")
  lower = np.searchsorted(keys, key(out_index, out_day - window_days - 1), side="right")
  return task[new_task][out_index], out_day, cumulative[upper] - cumulative[lower]


def compute_stats(
  files: Union[str, Sequence[str]],
  schema: schema_lib.Schema,
  config: StatsConfig,
  progress: Optional[Callable[[int], None]] = None,
) -> ConversionStats:
  """Counts clicks and reported conversions per ad task (and day) over the window (streaming).

  Args:
    files: Log files (glob, comma-separated globs or list; TFRecord, `.gz` or `.parquet`).
    schema: The logs' schema; its fingerprint goes into the result.
    config: Window, `as_of` and batching.
    progress: Called with the number of records read so far after every batch.

  Returns:
    The `ConversionStats` of the window (`as_of="end"`), or of every day's window
    (`as_of="daily"`, see the module docstring).

  Raises:
    FileNotFoundError: when a pattern matches nothing.
    LogError: naming the file, record and field for malformed logs, or when they are empty.
  """
  label_keys = list(schema.label_keys)
  fields = {schema_lib.AD_TASK_ID: tf.int64, schema_lib.DAY: tf.int64}
  fields.update({k: tf.int64 for k in label_keys})
  aggregator = _WindowAggregator(label_keys, config)
  rows = 0
  bad = validation.BadRecords() if config.skip_bad_records else None
  for _, _, batch in iter_log_batches(files, fields, config.read_batch_size, schema, bad):
    aggregator.add(batch)
    rows += len(batch[schema_lib.AD_TASK_ID])
    if progress is not None:
      progress(rows)
  if bad is not None:
    bad.log("compute_stats")
  if rows == 0:
    raise LogError(f"no usable records in the logs {files!r}")
  last = config.end_day if config.end_day is not None else aggregator.max_day
  return stats_from_day_sums(
    aggregator.per_day(last),
    schema,
    config,
    aggregator.min_day,
    aggregator.max_day,
    rows,
    bad.to_dict() if bad is not None else None,
  )


def stats_from_day_sums(
  day_sums: pa.Table,
  schema: schema_lib.Schema,
  config: StatsConfig,
  min_day: int,
  max_day: int,
  rows_read: int,
  skipped_bad_records: Optional[Dict[str, object]] = None,
) -> ConversionStats:
  """The statistics of `config`'s window(s) from the logs' per (ad task, day) sums.

  The part of the job after the aggregation, shared by `compute_stats` and the Beam job
  (`kaml_tf.beam.stats`): both give it the same sums, so they write the same bytes.

  Args:
    day_sums: One row per (ad task, day) pair, in any order: `ad_task_id`, `day`, `clicks`
      and the schema's `label_<action>` columns (their sums), int64. Days may go beyond the
      window: those are dropped here.
    schema: The logs' schema.
    config: Window, `as_of` and delay.
    min_day: The first day in the logs read.
    max_day: The last day in the logs read.
    rows_read: Log records read.
    skipped_bad_records: `BadRecords.to_dict()` of what was skipped, or None.

  Returns:
    The `ConversionStats`, as `compute_stats` describes.
  """
  label_keys = list(schema.label_keys)
  end_day = config.end_day if config.end_day is not None else max_day
  delay = config.label_delay_days
  common = dict(
    actions=tuple(schema.actions),
    schema_fingerprint=schema.fingerprint(),
    rows_read=rows_read,
    skipped_bad_records=skipped_bad_records,
  )
  day = pc.field(schema_lib.DAY)
  if config.as_of == DAILY:
    per_day = day_sums.filter(day <= end_day - delay).sort_by(
      [(schema_lib.AD_TASK_ID, "ascending"), (schema_lib.DAY, "ascending")]
    )
    return _daily_stats(
      per_day,
      label_keys,
      config.window_days,
      min(min_day, end_day + 1),
      end_day + 1,
      common,
      delay,
    )
  end_day -= delay
  table = _window_sums(day_sums, label_keys, end_day - config.window_days + 1, end_day)
  counts = np.stack([_int_column(table, k) for k in label_keys], axis=1)
  return ConversionStats(
    ad_task_ids=_int_column(table, schema_lib.AD_TASK_ID),
    counts=counts.reshape(table.num_rows, -1),
    clicks=_int_column(table, CLICKS),
    window_start=end_day - config.window_days + 1,
    window_end=end_day,
    **common,
  )


def _window_sums(day_sums: pa.Table, label_keys: Sequence[str], low: int, high: int) -> pa.Table:
  """Sums of the days [low, high]: one row per ad task, sorted by id."""
  day = pc.field(schema_lib.DAY)
  table = day_sums.filter((day >= low) & (day <= high))
  summed = table.group_by([schema_lib.AD_TASK_ID], use_threads=False).aggregate(
    [(k, "sum") for k in [CLICKS] + list(label_keys)]
  )
  summed = summed.rename_columns({f"{k}_sum": k for k in [CLICKS] + list(label_keys)})
  return summed.sort_by(schema_lib.AD_TASK_ID)


def _daily_stats(
  per_day: pa.Table,
  label_keys: Sequence[str],
  window_days: int,
  first_day: int,
  last_day: int,
  common: Mapping[str, object],
  label_delay_days: int = 0,
) -> ConversionStats:
  """`ConversionStats` of the days [first_day, last_day] from the (ad task, day) sums.

  With a delay L, the row of day d holds the point-in-time window of day d - L: the windows
  of days up to `last_day` - L, each moved L days later (`per_day` must stop before that).
  """
  values = np.stack([_int_column(per_day, k) for k in [CLICKS] + list(label_keys)], axis=1)
  tasks, days, sums = _daily_windows(
    _int_column(per_day, schema_lib.AD_TASK_ID),
    _int_column(per_day, schema_lib.DAY),
    values.reshape(per_day.num_rows, -1),
    window_days,
    last_day - label_delay_days,
  )
  return ConversionStats(
    ad_task_ids=tasks,
    counts=sums[:, 1:],
    clicks=sums[:, 0],
    window_start=first_day,
    window_end=last_day,
    days=days + label_delay_days,
    lookback_days=window_days,
    **common,
  )


# --------------------------------------------------------------------------------------------
# The in-graph join.
# --------------------------------------------------------------------------------------------


class WindowCountsLookup:
  """Joins ad task ids to their window counts in-graph (a hash table and a gather).

  The table maps each ad task id to its row of the counts matrix; ids missing from the
  statistics map to an extra all-zero row, so they get zero counts and `known = False`.
  """

  def __init__(self, stats: ConversionStats):
    if stats.is_daily:
      raise StatsError(
        f"{stats.source}: daily statistics hold one row per (ad task, day); "
        "join them with point_in_time.DailyCountsLookup "
        "(--stats_mode=point_in_time)"
      )
    num = stats.num_ad_tasks
    padded = np.concatenate(
      [stats.counts.astype(np.int64), np.zeros([1, len(stats.actions)], np.int64)], axis=0
    )
    with tf.init_scope():
      self._unknown_row = tf.constant(num, tf.int64)
      self._counts = tf.constant(padded)
      # A table needs at least one key: without statistics a placeholder key maps to the
      # unknown row too, so every id comes out unknown.
      keys = stats.ad_task_ids.astype(np.int64) if num else np.zeros([1], np.int64)
      values = np.arange(num, dtype=np.int64) if num else np.full([1], num, np.int64)
      self._table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(keys), tf.constant(values)),
        default_value=num,
      )

  def __call__(self, ad_task_id: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """Looks up a batch of ad task ids.

    Args:
      ad_task_id: (batch,) int64.

    Returns:
      (counts (batch, N) int64, known (batch,) bool).
    """
    rows = self._table.lookup(tf.cast(ad_task_id, tf.int64))
    return tf.gather(self._counts, rows), tf.not_equal(rows, self._unknown_row)
