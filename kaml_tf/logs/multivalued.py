"""Multi-valued columns in numpy: lists of ids as read, and the padded arrays the pipeline uses.

A multi-valued sparse feature (`SparseFeature.max_values > 1`) is one `(n, max_values)` array
in every numpy column dict, each row its ids followed by the feature's pad value (-1 for int64,
b"" for strings). The log formats store lists instead: a TFRecord `int64_list` / `bytes_list`
of 0 to `max_values` values, a Parquet `list<int64>` / `list<binary>` cell. Readers first see
a `RaggedColumn` (the flat values and each row's length, before anything is cut), which
`kaml_tf.logs.validation` checks against the rules, then `pad` it; writers store each row's
`prefix_lengths` values.
"""

from typing import Dict, NamedTuple, Optional

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import numpy as np
import tensorflow as tf

from kaml_tf import schema as schema_lib


class RaggedColumn(NamedTuple):
  """A multi-valued field of n records as read, before padding.

  Attributes:
    values: (total,) every record's ids, record after record.
    lengths: (n,) int64 ids per record (an empty or absent list has 0).
    nulls: (total,) bool, True where an id is null (Parquet), or None when none can be.
    width: The feature's `max_values`.
    pad: The feature's pad value.
  """

  values: np.ndarray
  lengths: np.ndarray
  nulls: Optional[np.ndarray]
  width: int
  pad: object

  def row_of(self) -> np.ndarray:
    """(total,) the record position of each value."""
    return np.repeat(np.arange(len(self.lengths)), self.lengths)

  def padded(self) -> np.ndarray:
    """The (n, width) padded array (rows longer than `width` are cut: check them first)."""
    return pad(self.values, self.lengths, self.width, self.pad)

  def take(self, keep: np.ndarray) -> "RaggedColumn":
    """The records where the (n,) bool `keep` is True."""
    kept_values = np.repeat(keep, self.lengths)
    return RaggedColumn(
      self.values[kept_values],
      self.lengths[keep],
      None if self.nulls is None else self.nulls[kept_values],
      self.width,
      self.pad,
    )


def widths(schema: schema_lib.Schema) -> Dict[str, int]:
  """`{name: max_values}` of the schema's multi-valued features."""
  return {f.name: f.max_values for f in schema.multivalued_features}


def pad_value(dtype: tf.DType) -> object:
  """The pad value of a multi-valued field of `dtype` (as `SparseFeature.pad_value`)."""
  if dtype == tf.int64:
    return -1
  if dtype == tf.string:
    return b""
  raise ValueError(f"multi-valued fields hold int64 or string ids, not {dtype.name}")


def _is_pad(values: np.ndarray, pad: object) -> np.ndarray:
  if values.dtype == object:
    # Either b"" or "": an id of length 0.
    return np.frompyfunc(len, 1, 1)(values).astype(np.int64) == 0
  return values == pad


def pad(values: np.ndarray, lengths: np.ndarray, width: int, pad_value: object) -> np.ndarray:
  """(n, width) rows of `values` split by `lengths`, each filled up with `pad_value`.

  Args:
    values: (total,) ids, row after row; total = sum(lengths).
    lengths: (n,) ids per row.
    width: Columns of the result; longer rows are cut.
    pad_value: What fills a row after its ids.
  """
  values = np.asarray(values)
  lengths = np.asarray(lengths, np.int64)
  n = len(lengths)
  dtype = object if values.dtype == object or isinstance(pad_value, bytes) else values.dtype
  out = np.full((n, width), pad_value, dtype=dtype)
  rows = np.repeat(np.arange(n), lengths)
  starts = np.cumsum(lengths) - lengths
  cols = np.arange(len(rows)) - np.repeat(starts, lengths)
  inside = cols < width
  out[rows[inside], cols[inside]] = values[inside]
  return out


def prefix_lengths(padded: np.ndarray, pad_value: object, name: str) -> np.ndarray:
  """(n,) the number of ids before the padding of each row of a (n, width) padded column.

  Raises:
    ValueError: naming the field when an id follows a pad value (a list cannot have holes).
  """
  padded = np.asarray(padded)
  if padded.ndim != 2:
    raise ValueError(f"multi-valued column {name!r} must be (n, max_values), got {padded.shape}")
  is_pad = _is_pad(padded, pad_value)
  # A row's length is its count of leading ids: the position of its first pad value.
  lengths = np.where(is_pad.any(axis=1), is_pad.argmax(axis=1), padded.shape[1])
  holes = ~is_pad & (np.arange(padded.shape[1])[None, :] >= lengths[:, None])
  if holes.any():
    row = int(np.flatnonzero(holes.any(axis=1))[0])
    raise ValueError(
      f"multi-valued column {name!r}: row {row} has an id after the pad value {pad_value!r}"
    )
  return lengths.astype(np.int64)


def flat_prefix(padded: np.ndarray, lengths: np.ndarray) -> np.ndarray:
  """(sum(lengths),) the first `lengths[i]` ids of each row i, row after row."""
  padded = np.asarray(padded)
  keep = np.arange(padded.shape[1])[None, :] < np.asarray(lengths)[:, None]
  return padded[keep]


def pad_positions(column: RaggedColumn) -> np.ndarray:
  """(total,) bool: the values equal to the pad value (never a valid id)."""
  # A null id is filled with a pad-like value when read; it is reported as a null instead.
  is_pad = _is_pad(column.values, column.pad)
  return is_pad if column.nulls is None else is_pad & ~column.nulls
