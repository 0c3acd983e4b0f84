"""Ad-task conversion statistics: the counts c_i^j that Attribution Driven Masking thresholds.

For every ad task with at least one click in the window of `window_days` days ending at
`end_day` (inclusive; default: the last day in the logs), the statistics hold its click count
(records, since each record is a post-click sample) and, per action, its number of reported
conversions (records with `label_<action> = 1`). Days after `end_day` never count, so training
on a window never peeks at later reports.

The job streams the logs in large batches (TFRecord through `tf.data`, Parquet through
pyarrow, both via `validation.checked_batches`) and aggregates each batch with pyarrow
into per (ad task, day) partial sums, compacted whenever they grow: memory is bounded by the
number of (ad task, day) pairs, never by the number of rows.

The result is one Parquet file, written atomically, with the columns `ad_task_id`, `clicks` and
`conversions_<action>` (sorted by ad task id) and, under the metadata key `kaml.stats`, a JSON
object with the window, the action names and the fingerprint of the schema it was computed
with. `load_stats` reads it back into a `ConversionStats`, and `WindowCountsLookup` joins it to
batches of ad task ids in-graph.
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

from kaml_tf import records
from kaml_tf import schema as schema_lib
from kaml_tf.data import parquet_logs
from kaml_tf.data import validation
from kaml_tf.io import atomic

STATS_VERSION = 1
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


def iter_log_batches(files: Union[str, Sequence[str]], fields: Mapping[str, tf.DType],
                     batch_size: int = 65536, schema: Optional[schema_lib.Schema] = None,
                     bad: Optional[validation.BadRecords] = None
                     ) -> Iterator[Tuple[str, int, Dict[str, np.ndarray]]]:
  """Streams the logs as checked numpy column batches, file by file in sorted order.

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
  """Settings of the statistics job.

  Attributes:
    window_days: T, the window length in days (>= 1).
    end_day: D, the last day of the window (inclusive); None for the last day in the logs.
    read_batch_size: Records per read batch.
    compaction_rows: Partial (ad task, day) rows kept before they are re-aggregated.
    skip_bad_records: Skip and count malformed records (`kaml_tf.data.validation`) instead
      of failing on the first one.
  """
  window_days: int
  end_day: Optional[int] = None
  read_batch_size: int = 65536
  compaction_rows: int = 1_000_000
  skip_bad_records: bool = False

  def __post_init__(self):
    if self.window_days < 1:
      raise ValueError(f"window_days must be >= 1, got {self.window_days}")
    if self.read_batch_size < 1:
      raise ValueError(f"read_batch_size must be >= 1, got {self.read_batch_size}")


@dataclasses.dataclass(frozen=True)
class ConversionStats:
  """Per ad task click and conversion counts over a window of days.

  Attributes:
    ad_task_ids: (K,) int64, sorted, unique.
    counts: (K, N) int64, reported conversions of each action in the window.
    clicks: (K,) int64, records in the window.
    actions: The N action names, in column order.
    schema_fingerprint: `Schema.fingerprint()` of the schema the logs were read with.
    window_start: First day of the window (inclusive).
    window_end: Last day of the window (inclusive).
    rows_read: Log records read to compute the statistics (in and out of the window).
    source: The file the statistics were loaded from, or "<memory>".
    skipped_bad_records: What `skip_bad_records` skipped (`BadRecords.to_dict()`), or None
      when the job ran without it.
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

  def __post_init__(self):
    k = len(self.ad_task_ids)
    where = self.source
    if self.counts.shape != (k, len(self.actions)):
      raise StatsError(f"{where}: counts have shape {self.counts.shape}, expected "
                       f"({k}, {len(self.actions)})")
    if self.clicks.shape != (k,):
      raise StatsError(f"{where}: clicks have shape {self.clicks.shape}, expected ({k},)")
    if k > 1 and not np.all(np.diff(self.ad_task_ids) > 0):
      raise StatsError(f"{where}: ad_task_id values must be unique and sorted")

  @property
  def num_ad_tasks(self) -> int:
    return len(self.ad_task_ids)

  @property
  def window_days(self) -> int:
    return self.window_end - self.window_start + 1

  def metadata(self) -> Dict[str, object]:
    """The JSON metadata stored under `METADATA_KEY`."""
    return {
        "version": STATS_VERSION,
        "actions": list(self.actions),
        "schema_fingerprint": self.schema_fingerprint,
        "window": {"start_day": self.window_start, "end_day": self.window_end,
                   "days": self.window_days},
        "rows_read": self.rows_read,
        "ad_tasks": self.num_ad_tasks,
    } | ({"skipped_bad_records": self.skipped_bad_records}
         if self.skipped_bad_records is not None else {})

  def check_schema(self, schema: schema_lib.Schema) -> None:
    """Raises `StatsError` naming the file and both fingerprints unless `schema` matches."""
    fingerprint = schema.fingerprint()
    if tuple(self.actions) != tuple(schema.actions) or self.schema_fingerprint != fingerprint:
      raise StatsError(
          f"{self.source}: statistics were computed with schema fingerprint "
          f"{self.schema_fingerprint} (actions {list(self.actions)}), but the schema in use has "
          f"fingerprint {fingerprint} (actions {list(schema.actions)}); recompute them with "
          "pipelines.compute_stats and this schema")

  def to_table(self) -> pa.Table:
    columns = {schema_lib.AD_TASK_ID: pa.array(self.ad_task_ids, pa.int64()),
               CLICKS: pa.array(self.clicks, pa.int64())}
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


def load_stats(path: str, schema: Optional[schema_lib.Schema] = None) -> ConversionStats:
  """Reads a statistics file written by `ConversionStats.save`.

  Args:
    path: The Parquet file.
    schema: When given, the statistics must have been computed with it (`check_schema`).

  Raises:
    StatsError: naming `path` when it is missing, not Parquet, not a statistics file, or
      computed with another schema (naming both fingerprints).
  """
  if not tf.io.gfile.exists(path):
    raise StatsError(f"{path}: statistics file not found")
  try:
    table = pq.read_table(path)
  except (OSError, pa.ArrowException) as e:
    raise StatsError(f"{path}: not a readable Parquet file ({e})") from None
  raw = (table.schema.metadata or {}).get(METADATA_KEY)
  if raw is None:
    raise StatsError(f"{path}: no {METADATA_KEY.decode()} metadata; not a statistics file "
                     "written by pipelines.compute_stats")
  try:
    meta = json.loads(raw.decode("utf-8"))
    version = meta["version"]
    actions = tuple(meta["actions"])
    fingerprint = str(meta["schema_fingerprint"])
    start, end = int(meta["window"]["start_day"]), int(meta["window"]["end_day"])
    rows_read = int(meta.get("rows_read", 0))
    skipped = meta.get("skipped_bad_records")
  except (ValueError, KeyError, TypeError) as e:
    raise StatsError(f"{path}: malformed {METADATA_KEY.decode()} metadata ({e!r})") from None
  if version != STATS_VERSION:
    raise StatsError(f"{path}: statistics version {version!r}, this library reads "
                     f"{STATS_VERSION}")
  names = [schema_lib.AD_TASK_ID, CLICKS] + [CONVERSIONS_PREFIX + a for a in actions]
  for name in names:
    if name not in table.column_names:
      raise StatsError(f"{path}: missing column {name!r}")
    if not pa.types.is_integer(table.schema.field(name).type):
      raise StatsError(f"{path}: column {name!r} has type {table.schema.field(name).type}, "
                       "expected int64")
  counts = (np.stack([_int_column(table, CONVERSIONS_PREFIX + a) for a in actions], axis=1)
            if actions else np.zeros([table.num_rows, 0], np.int64))
  stats = ConversionStats(
      ad_task_ids=_int_column(table, schema_lib.AD_TASK_ID),
      counts=counts.reshape(table.num_rows, -1), clicks=_int_column(table, CLICKS),
      actions=actions, schema_fingerprint=fingerprint, window_start=start, window_end=end,
      rows_read=rows_read, source=path, skipped_bad_records=skipped)
  if schema is not None:
    stats.check_schema(schema)
  return stats


# --------------------------------------------------------------------------------------------
# The statistics job.
# --------------------------------------------------------------------------------------------


class _WindowAggregator:
  """Per (ad task, day) click and conversion sums, compacted as they grow."""

  def __init__(self, label_keys: Sequence[str], config: StatsConfig):
    self._labels = list(label_keys)
    self._config = config
    self._parts: List[pa.Table] = []
    self._part_rows = 0
    self.max_day: Optional[int] = None

  def _lowest_useful_day(self) -> Optional[int]:
    end = self._config.end_day if self._config.end_day is not None else self.max_day
    return None if end is None else end - self._config.window_days + 1

  def add(self, batch: Mapping[str, np.ndarray]) -> None:
    day = batch[schema_lib.DAY]
    if day.size:
      top = int(day.max())
      self.max_day = top if self.max_day is None else max(self.max_day, top)
    keys = [schema_lib.AD_TASK_ID, schema_lib.DAY]
    table = pa.table({k: batch[k] for k in keys + self._labels})
    if self._config.end_day is not None:
      low = self._config.end_day - self._config.window_days + 1
      table = table.filter((pc.field(schema_lib.DAY) >= low) &
                           (pc.field(schema_lib.DAY) <= self._config.end_day))
    part = table.group_by([schema_lib.AD_TASK_ID, schema_lib.DAY], use_threads=False).aggregate(
        [(k, "sum") for k in self._labels] + [([], _COUNT)])
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
    summed = table.group_by([schema_lib.AD_TASK_ID, schema_lib.DAY], use_threads=False).aggregate(
        [(k, "sum") for k in [CLICKS] + self._labels])
    summed = summed.rename_columns({f"{k}_sum": k for k in [CLICKS] + self._labels})
    self._parts = [summed.select([schema_lib.AD_TASK_ID, schema_lib.DAY, CLICKS] + self._labels)]
    self._part_rows = summed.num_rows

  def finish(self, end_day: int) -> pa.Table:
    """Sums over the window ending at `end_day`; one row per ad task, sorted by id."""
    low = end_day - self._config.window_days + 1
    table = pa.concat_tables(self._parts)
    table = table.filter((pc.field(schema_lib.DAY) >= low) &
                         (pc.field(schema_lib.DAY) <= end_day))
    summed = table.group_by([schema_lib.AD_TASK_ID], use_threads=False).aggregate(
        [(k, "sum") for k in [CLICKS] + self._labels])
    summed = summed.rename_columns({f"{k}_sum": k for k in [CLICKS] + self._labels})
    return summed.sort_by(schema_lib.AD_TASK_ID)


def compute_stats(files: Union[str, Sequence[str]], schema: schema_lib.Schema,
                  config: StatsConfig,
                  progress: Optional[Callable[[int], None]] = None) -> ConversionStats:
  """Counts clicks and reported conversions per ad task over the window (streaming).

  Args:
    files: Log files (glob, comma-separated globs or list; TFRecord, `.gz` or `.parquet`).
    schema: The logs' schema; its fingerprint goes into the result.
    config: Window and batching.
    progress: Called with the number of records read so far after every batch.

  Returns:
    The `ConversionStats` of the window.

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
  end_day = config.end_day if config.end_day is not None else aggregator.max_day
  table = aggregator.finish(end_day)
  counts = np.stack([_int_column(table, k) for k in label_keys], axis=1)
  return ConversionStats(
      ad_task_ids=_int_column(table, schema_lib.AD_TASK_ID),
      counts=counts.reshape(table.num_rows, -1), clicks=_int_column(table, CLICKS),
      actions=tuple(schema.actions), schema_fingerprint=schema.fingerprint(),
      window_start=end_day - config.window_days + 1, window_end=end_day, rows_read=rows,
      skipped_bad_records=bad.to_dict() if bad is not None else None)


# --------------------------------------------------------------------------------------------
# The in-graph join.
# --------------------------------------------------------------------------------------------


class WindowCountsLookup:
  """Joins ad task ids to their window counts in-graph (a hash table and a gather).

  The table maps each ad task id to its row of the counts matrix; ids missing from the
  statistics map to an extra all-zero row, so they get zero counts and `known = False`.
  """

  def __init__(self, stats: ConversionStats):
    num = stats.num_ad_tasks
    padded = np.concatenate([stats.counts.astype(np.int64),
                             np.zeros([1, len(stats.actions)], np.int64)], axis=0)
    with tf.init_scope():
      self._unknown_row = tf.constant(num, tf.int64)
      self._counts = tf.constant(padded)
      # A table needs at least one key: without statistics a placeholder key maps to the
      # unknown row too, so every id comes out unknown.
      keys = stats.ad_task_ids.astype(np.int64) if num else np.zeros([1], np.int64)
      values = np.arange(num, dtype=np.int64) if num else np.full([1], num, np.int64)
      self._table = tf.lookup.StaticHashTable(
          tf.lookup.KeyValueTensorInitializer(tf.constant(keys), tf.constant(values)),
          default_value=num)

  def __call__(self, ad_task_id: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """Looks up a batch of ad task ids.

    Args:
      ad_task_id: (batch,) int64.

    Returns:
      (counts (batch, N) int64, known (batch,) bool).
    """
    rows = self._table.lookup(tf.cast(ad_task_id, tf.int64))
    return tf.gather(self._counts, rows), tf.not_equal(rows, self._unknown_row)
