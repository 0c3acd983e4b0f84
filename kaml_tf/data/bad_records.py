"""Dropping the bad records that `--skip_bad_records` found, on every pass over the logs.

`validation.scan` checks every record once, before training, and returns a
`validation.BadRecords`: per file, the indices of the records that do not parse or hold bad
values, and where a corruption ends the readable part. The input pipeline then drops exactly
those records on every epoch, without parsing anything twice:

* TFRecord logs, in-graph: a `BadRecordTable` holds each file's record limit and its sorted
  bad indices as one flat tensor with row splits; `drop_bad_records` filters a file's
  records by their index in it.
* Parquet logs, on the host: `bad_indices` and `readable_limit` of a path, used by the reader
  while it slices the file's columns.
"""

from typing import List, NamedTuple, Optional, Sequence

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import numpy as np
import tensorflow as tf

from kaml_tf.logs import validation

# Ends every file's list of bad record indices, so a lookup never falls off the end.
_NO_RECORD = np.iinfo(np.int64).max


def readable_files(files: Sequence[str], bad_records: validation.BadRecords) -> List[str]:
  """`files` without the empty ones and those corrupt from their first record."""
  return [
    p for p in files if bad_records.readable.get(p, 1) > 0 and p not in bad_records.empty_files
  ]


def bad_indices(bad_records: Optional[validation.BadRecords], path: str) -> np.ndarray:
  """The (k,) int64 indices of `path`'s bad records (none when `bad_records` is None)."""
  found = bad_records.bad_indices.get(path, []) if bad_records is not None else []
  return np.asarray(found, np.int64)


def readable_limit(bad_records: Optional[validation.BadRecords], path: str) -> Optional[int]:
  """Records of `path` readable before a corruption; None when all of them are."""
  return bad_records.readable.get(path) if bad_records is not None else None


class BadRecordTable(NamedTuple):
  """The bad records of F files, as tensors a reader can index by file.

  Attributes:
    limits: (F,) int64 records to read of each file; -1 reads all.
    bad: (B,) int64 every file's sorted bad indices, each file's run ending in `_NO_RECORD`.
    splits: (F + 1,) int64 row splits of `bad`: file i's run is bad[splits[i]:splits[i + 1]].
  """

  limits: tf.Tensor
  bad: tf.Tensor
  splits: tf.Tensor


def table_for(
  bad_records: Optional[validation.BadRecords], files: Sequence[str]
) -> Optional[BadRecordTable]:
  """The `BadRecordTable` of `files` (indexed in this order); None when none has a bad one."""
  if bad_records is None or all(bad_records.is_clean(p) for p in files):
    return None
  limits, flat, splits = [], [], [0]
  for path in files:
    limits.append(bad_records.readable.get(path, -1))
    flat.extend(sorted(bad_records.bad_indices.get(path, ())) + [_NO_RECORD])
    splits.append(len(flat))
  return BadRecordTable(
    tf.constant(limits, tf.int64), tf.constant(flat, tf.int64), tf.constant(splits, tf.int64)
  )


def _contains(sorted_values: tf.Tensor, value: tf.Tensor) -> tf.Tensor:
  """Whether int64 `value` is in the sorted (k,) `sorted_values` that end in `_NO_RECORD`."""
  position = tf.searchsorted(sorted_values, tf.reshape(value, [1]))[0]
  return tf.equal(tf.gather(sorted_values, position), value)


def drop_bad_records(
  records: tf.data.Dataset, table: BadRecordTable, file_id: tf.Tensor
) -> tf.data.Dataset:
  """One file's records without its bad ones.

  Args:
    records: The file's records, in file order.
    table: The bad records of the pipeline's files.
    file_id: int64 scalar, the file's index in `table`.
  """
  records = records.take(tf.gather(table.limits, file_id))
  own = table.bad[table.splits[file_id] : table.splits[file_id + 1]]
  return records.enumerate().filter(lambda i, _: ~_contains(own, i)).map(lambda _, r: r)
