"""The record columns of a split under its schema, from the split's Arrow table.

Key fields and labels are copied. A feature's empty cell becomes its `missing_value`. A
multi-valued feature (a list column) becomes one (n, max_values) array padded at the end with
its `pad_value`; a null list is the empty list. A null inside a list, an id equal to the pad
value or a list longer than `max_values` is an error naming the column and the row: the
protocol never cuts a list. Columns the schema does not name (a constant column inference
dropped) are not written.
"""

from typing import Dict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.datasets.incomplete import table as table_lib
from kaml_tf.datasets.incomplete.errors import ConversionError

_NUMPY_TYPES = {tf.int64: np.int64, tf.float32: np.float32}
_ARROW_TYPES = {tf.int64: pa.int64(), tf.float32: pa.float32(), tf.string: pa.string()}


def record_columns(
  table: pa.Table, schema: schema_lib.Schema, source_rows: np.ndarray
) -> Dict[str, np.ndarray]:
  """`{field: (n,) or (n, max_values) array}` keyed like `schema.record_dtypes()`.

  Args:
    table: A split's rows with the canonical key and label columns and the features.
    schema: The logs' schema.
    source_rows: (n,) int64 input row of each row, for errors.

  Raises:
    ConversionError: naming a schema field the table lacks, a value of the wrong type, or a
      bad list (see the module docstring).
  """
  missing = [k for k in schema.record_dtypes() if k not in table.column_names]
  if missing:
    raise ConversionError(f"the schema names field(s) {missing} the table does not have")
  sparse = {f.name: f for f in schema.sparse_features}
  dense = {f.name: f for f in schema.dense_features}
  out = {}
  for key, dtype in schema.record_dtypes().items():
    column = table[key]
    if key in sparse and sparse[key].multivalued:
      out[key] = _padded(column, sparse[key], source_rows)
      continue
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
      raise ConversionError(f"column {key!r}: a list column in a schema that says single-valued")
    feature = sparse.get(key) or dense.get(key)
    if feature is not None and column.null_count:
      column = pc.fill_null(column, pa.scalar(feature.missing_value, _ARROW_TYPES[dtype]))
    out[key] = _numpy(column, dtype, key)
  return out


def _numpy(column: pa.ChunkedArray, dtype: tf.DType, key: str) -> np.ndarray:
  try:
    column = pc.cast(column, _ARROW_TYPES[dtype])
  except pa.ArrowException as e:
    raise ConversionError(f"column {key!r}: cannot be read as {dtype.name} ({e})") from None
  if dtype == tf.string:
    return np.asarray(column.to_pylist(), dtype=object)
  return column.to_numpy().astype(_NUMPY_TYPES[dtype])


def _padded(
  column: pa.ChunkedArray, feature: schema_lib.SparseFeature, source_rows: np.ndarray
) -> np.ndarray:
  """(n, max_values) ids of a list column, padded with the feature's pad value."""
  key, width = feature.name, feature.max_values
  if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)):
    raise ConversionError(f"column {key!r}: the schema says multi-valued, expected a list column")
  lists = column.to_pylist()
  kind = object if feature.dtype == "string" else np.int64
  out = np.full((len(lists), width), feature.pad_value, dtype=kind)
  for i, values in enumerate(lists):
    values = values or []
    problem = None
    if len(values) > width:
      problem = f"{len(values)} values, more than max_values {width}"
    elif any(v is None for v in values):
      problem = "a null inside the list"
    elif any(v == feature.pad_value for v in values):
      problem = f"the pad value {feature.pad_value!r} inside the list"
    if problem:
      raise ConversionError(f"column {key!r}, {table_lib.row_text(int(source_rows[i]))}: {problem}")
    out[i, : len(values)] = values
  return out
