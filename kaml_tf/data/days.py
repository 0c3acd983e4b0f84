"""The days that logs cover, and the hold-out of their last days as a validation set.

`days_in` reads the `day` field and nothing else: of a Parquet log only the `day` column
(pyarrow reads no other column), of a TFRecord log one `tf.data` pass parsing only that
feature. `hold_out_last` splits the days found into a training range and the range of the
last K days, the two (first, last) pairs that `dataset.make_dataset(days=...)` and
`evaluator.predict(days=...)` filter on. `exclude_last` drops the last L days first when
their labels are not final yet (`--label_delay_days`).
"""

import dataclasses
from typing import List, Optional, Sequence, Tuple, Union

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import numpy as np
import tensorflow as tf

from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.logs import validation

DayRange = Tuple[int, int]
_READ_BATCH = 1 << 16


def days_in(
  files: Union[str, Sequence[str]],
  skip_bad_records: bool = False,
  schema: Optional[schema_lib.Schema] = None,
) -> List[int]:
  """The distinct `day` values of `files`, sorted.

  Args:
    files: TFRecord or Parquet logs (glob, comma-separated globs or list).
    skip_bad_records: Skip records whose `day` is missing or unreadable instead of failing.
    schema: The logs' schema, needed when their columns have names of their own
      (`Schema.columns`, e.g. a timestamp the day comes from).

  Raises:
    validation.BadRecordError: naming the file and record of the first record without a
      readable `day` (unless skipped).
    FileNotFoundError: if no file matches.
  """
  spec = {schema_lib.DAY: tf.io.FixedLenFeature([], tf.int64)}
  bad = validation.BadRecords() if skip_bad_records else None
  found = set()
  for path in records.list_files(files):
    for _, batch in validation.checked_batches(path, schema, spec, _READ_BATCH, bad):
      found.update(np.unique(batch[schema_lib.DAY]).tolist())
  return sorted(int(d) for d in found)


@dataclasses.dataclass(frozen=True)
class DaySplit:
  """Training days and the held-out validation days, each an inclusive (first, last)."""

  train: DayRange
  validation: DayRange


def hold_out_last(days: Sequence[int], count: int) -> DaySplit:
  """Holds the last `count` of the sorted distinct `days` out of training.

  Args:
    days: Sorted distinct days (`days_in`).
    count: Days to hold out, >= 1.

  Raises:
    ValueError: if `count` < 1, or no day would be left for training.
  """
  if count < 1:
    raise ValueError(f"must hold out at least one day, got {count}")
  if count >= len(days):
    span = f"days {days[0]}..{days[-1]}" if days else "no day"
    raise ValueError(
      f"cannot hold out the last {count} day(s): the logs hold {len(days)} "
      f"distinct day(s) ({span}) and at least one must stay for training"
    )
  return DaySplit(train=(days[0], days[-count - 1]), validation=(days[-count], days[-1]))


def exclude_last(days: Sequence[int], count: int) -> List[int]:
  """The sorted distinct `days` without their last `count`, whose labels are not final yet.

  Args:
    days: Sorted distinct days (`days_in`).
    count: Days to exclude, >= 0 (0: all of `days`).

  Raises:
    ValueError: if `count` < 0, or no day would be left.
  """
  if count < 0:
    raise ValueError(f"must exclude zero or more days, got {count}")
  if count >= len(days):
    span = f"days {days[0]}..{days[-1]}" if days else "no day"
    raise ValueError(
      f"cannot exclude the last {count} day(s): the logs hold {len(days)} distinct day(s) "
      f"({span}) and at least one must stay"
    )
  return list(days[: len(days) - count])
