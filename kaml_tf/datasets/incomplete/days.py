"""The `day` of every row: from its time, or pseudo-days when the table has no time.

With a time column, `day` is the number of whole days since the first day of the table:
floor(t / D) - floor(t_min / D), D the length of a day in the time's unit (calendar days in UTC
for times since the epoch). Timestamp and date columns carry their unit; a numeric column's
unit is given (`TIME_UNITS`).

Without one, the random split orders the rows at random (`split.random_ranks`), and the
train rows of ranks 0..cut-1 get the pseudo-day floor(rank * P / cut), P = `pseudo_days`:
P days of (within one row) equal size, in random order, so that the statistics window and
`--validation_days` see days as they would in real logs. Every test row gets day P, the day
after training (as a time split's test rows come after its train rows).
"""

from typing import Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kaml_tf.datasets.incomplete.errors import ConversionError

# A numeric time column's unit -> its units per day.
TIME_UNITS = {
  "day": 1,
  "s": 86_400,
  "ms": 86_400_000,
  "us": 86_400_000_000,
  "ns": 86_400_000_000_000,
}


def time_values(column: pa.ChunkedArray, unit: str, name: str) -> Tuple[np.ndarray, int]:
  """The times of a column as numbers, and their units per day.

  Args:
    column: (n,) timestamps, dates, integers or floats, without nulls.
    unit: A `TIME_UNITS` key, the unit of a numeric column (ignored for timestamps and dates).
    name: The column's name, for errors.

  Returns:
    ((n,) int64 or float64 times, units per day).

  Raises:
    ConversionError: naming the column, for another type.
  """
  kind = column.type
  if pa.types.is_timestamp(kind):
    return pc.cast(column, pa.int64()).to_numpy(), TIME_UNITS[kind.unit]
  if pa.types.is_date32(kind):
    return pc.cast(column, pa.int32()).to_numpy().astype(np.int64), 1
  if pa.types.is_date64(kind):
    return pc.cast(column, pa.int64()).to_numpy(), TIME_UNITS["ms"]
  if pa.types.is_integer(kind):
    return column.to_numpy().astype(np.int64), TIME_UNITS[unit]
  if pa.types.is_floating(kind):
    return column.to_numpy().astype(np.float64), TIME_UNITS[unit]
  raise ConversionError(
    f"time column {name!r} has type {kind}; expected timestamps, dates or numbers"
  )


def days_from_time(times: np.ndarray, per_day: int) -> np.ndarray:
  """(n,) int64 whole days since the first day of `times` ((n,), `per_day` units a day)."""
  days = np.floor_divide(times, per_day)
  return (days - days.min()).astype(np.int64)


def pseudo_days(ranks: np.ndarray, cut: int, num_days: int) -> np.ndarray:
  """(n,) int64 pseudo-days of the random split (see the module docstring).

  Args:
    ranks: (n,) int64 random rank of each row.
    cut: Train rows (ranks below it).
    num_days: P, the train pseudo-days.
  """
  return np.where(ranks < cut, ranks * num_days // max(cut, 1), num_days).astype(np.int64)


def pseudo_day_rule(num_days: int) -> str:
  """The pseudo-day rule in words, for the report."""
  return (
    f"random split, no time column: train rows in random order get pseudo-day "
    f"floor(rank * {num_days} / train rows) (days 0..{num_days - 1}); test rows get day "
    f"{num_days}"
  )
