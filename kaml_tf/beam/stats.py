"""`pipelines.compute_stats` as a Beam pipeline: the same statistics file, byte for byte.

The workers read the log files (`reading`), sum clicks and every label per (ad task, day)
with a pyarrow group-by per batch, and the sums of all files are combined into one table,
re-aggregated whenever it grows (memory: (ad task, day) pairs, never rows). The launching
machine then runs the library's own tail of the job, `stats.stats_from_day_sums` (windows,
daily point-in-time sums, delay), on that table, so both paths write the same bytes.
"""

import dataclasses
from typing import Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import pyarrow as pa
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.beam import execution
from kaml_tf.beam import options as options_lib
from kaml_tf.beam import reading
from kaml_tf.data import stats as stats_lib

_KEYS = [schema_lib.AD_TASK_ID, schema_lib.DAY]
# Partial rows a `DaySums` keeps before it re-aggregates them.
_COMPACT_ROWS = 1_000_000


@dataclasses.dataclass
class DaySums:
  """Per (ad task, day) sums of clicks and labels of some files, and their days' range.

  Attributes:
    label_keys: The schema's label columns.
    parts: Tables of `ad_task_id`, `day`, `clicks` and the label columns; a pair may be in
      several until they are compacted.
    min_day: The first day seen (None before any row).
    max_day: The last day seen.
  """

  label_keys: Tuple[str, ...]
  parts: List[pa.Table] = dataclasses.field(default_factory=list)
  min_day: Optional[int] = None
  max_day: Optional[int] = None

  @property
  def _values(self) -> List[str]:
    return [stats_lib.CLICKS] + list(self.label_keys)

  def add(self, columns: reading.Columns) -> None:
    """Adds a batch of rows, grouped by (ad task, day)."""
    day = columns[schema_lib.DAY]
    if not day.size:
      return
    table = pa.table({k: columns[k] for k in _KEYS + list(self.label_keys)})
    table = table.append_column(stats_lib.CLICKS, pa.array(np.ones(table.num_rows, np.int64)))
    self.parts.append(stats_lib.sum_by_task_day(table, self._values))
    self.min_day = _extreme(min, self.min_day, int(day.min()))
    self.max_day = _extreme(max, self.max_day, int(day.max()))
    self._compact_if_large()

  def merge(self, other: "DaySums") -> "DaySums":
    """The sums of both (a new object; neither is changed)."""
    merged = DaySums(
      self.label_keys,
      self.parts + other.parts,
      _extreme(min, self.min_day, other.min_day),
      _extreme(max, self.max_day, other.max_day),
    )
    merged._compact_if_large()
    return merged

  def _compact_if_large(self) -> None:
    if sum(p.num_rows for p in self.parts) > _COMPACT_ROWS:
      self.parts = [self.table()]

  def table(self) -> pa.Table:
    """The sums, one row per (ad task, day)."""
    return stats_lib.sum_by_task_day(pa.concat_tables(self.parts), self._values)


def _extreme(pick, a: Optional[int], b: Optional[int]) -> Optional[int]:
  known = [d for d in (a, b) if d is not None]
  return pick(known) if known else None


class _SumFiles(reading.CheckedFiles):
  """Each file's `DaySums` (in its `Outcome`)."""

  def __init__(self, schema: schema_lib.Schema, config: stats_lib.StatsConfig):
    fields = {k: tf.int64 for k in _KEYS + list(schema.label_keys)}
    super().__init__(
      schema, reading.scalar_spec(fields), config.read_batch_size, config.skip_bad_records
    )
    self._label_keys = tuple(schema.label_keys)

  def start(self) -> DaySums:
    return DaySums(self._label_keys)

  def fold(self, value: DaySums, columns: reading.Columns) -> Iterable:
    value.add(columns)
    return ()


def compute_stats(
  files: Union[str, Sequence[str]],
  schema: schema_lib.Schema,
  config: stats_lib.StatsConfig,
  beam_config: options_lib.BeamConfig,
  near: str,
) -> stats_lib.ConversionStats:
  """`stats.compute_stats` on Beam: the same `ConversionStats` (and the same errors).

  Args:
    files: Log files (glob, comma-separated globs or list; TFRecord, `.gz` or `.parquet`).
    schema: The logs' schema.
    config: Window, `as_of`, delay, batching and `skip_bad_records`.
    beam_config: The runner and its pipeline arguments.
    near: A path reachable by the workers, e.g. the output file (`execution.run`).

  Raises:
    FileNotFoundError: when a pattern matches nothing.
    LogError: naming the file, record and field for malformed logs, or when they are empty.
  """
  reader = _SumFiles(schema, config)
  result = execution.run(beam_config, lambda p: reading.read_checked(p, files, reader)[1], near)
  bad = result.checked("compute_stats", files, config.skip_bad_records)
  sums = result.value
  return stats_lib.stats_from_day_sums(
    sums.table(),
    schema,
    config,
    sums.min_day,
    sums.max_day,
    result.rows,
    bad.to_dict() if bad is not None else None,
  )
