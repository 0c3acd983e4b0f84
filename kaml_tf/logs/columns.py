"""The column mapping of a schema (`Schema.columns`): logs with names of their own, as records.

A user's logs may keep their own column names for the key and label fields, their target as
action names and their day as a timestamp (`schema.ColumnMapping`, written by
`pipelines.infer_schema`). Everything after reading works with the record fields of
`Schema.record_dtypes`; this module translates at the reading and writing sites:

* `log_fields`: the log columns (and their dtypes) to read for some record fields;
* `to_records` (arrow, Parquet logs): renames the mapped columns to their fields, turns action
  names into indices (a name that is no action: -1, "Other", as `unknown_targets` counts) and
  timestamps into days (floor(ts / 1 day), UTC), and boolean columns into 0/1 integers;
* `to_logs` (arrow, for the writers): the way back: fields renamed to their log columns,
  indices to names (-1: ""), days to the timestamp of their midnight;
* `to_log_columns` and `written_dtypes` (numpy, for the TFRecord writer): the same way back;
* `LogParser` (tensors, TFRecord logs): parses serialized records with `log_parse_spec` and
  translates them with `records_from_parsed`, eagerly (the checked reads of
  `kaml_tf.logs.validation`) or in-graph (the training pipeline's `data.parsing.RecordParser`).
"""

from typing import Dict, Mapping, Optional, Union

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow as tf

from kaml_tf import schema as schema_lib

Table = Union[pa.Table, pa.RecordBatch]


def is_mapped(schema: schema_lib.Schema) -> bool:
  """Whether the logs of `schema` keep column names or encodings of their own."""
  return not schema.columns.is_identity


def log_fields(schema: schema_lib.Schema, fields: Mapping[str, tf.DType]) -> Dict[str, tf.DType]:
  """`{log column: dtype as stored}` of the record `fields` (`{field: dtype}`).

  The target column holds strings when it names actions; a timestamp column numbers (read as
  float32 when checked, any integer or float column passes).
  """
  mapping = schema.columns
  stored = {}
  for field, dtype in fields.items():
    if field == schema_lib.TARGET_ACTION and mapping.target_names:
      dtype = tf.string
    elif field == schema_lib.DAY and mapping.timestamp_unit:
      dtype = tf.float32
    stored[mapping.log_name(field)] = dtype
  return stored


def timestamp_days(values: np.ndarray, unit: str) -> np.ndarray:
  """(n,) int64 days floor(ts / 1 day) (UTC) of (n,) timestamps in `unit` ("s" or "ms")."""
  per_day = schema_lib.DAY_IN_UNITS[unit]
  if np.issubdtype(values.dtype, np.integer):
    return np.floor_divide(values.astype(np.int64), per_day)
  return np.floor(np.asarray(values, np.float64) / per_day).astype(np.int64)


def target_indices(names: pa.Array, actions) -> pa.Array:
  """int64 indices into `actions` of action `names`; -1 ("Other") for any other name."""
  if pa.types.is_binary(names.type) or pa.types.is_large_binary(names.type):
    names = names.cast(pa.string())
  index = pc.index_in(names, value_set=pa.array(list(actions), pa.string()))
  return pc.fill_null(index, schema_lib.OTHER_TARGET).cast(pa.int64())


def unknown_targets(names: pa.Array, actions) -> int:
  """How many of `names` name no action (they become -1, "Other")."""
  return int(np.sum(target_indices(names, actions).to_numpy() == schema_lib.OTHER_TARGET))


def to_records(table: Table, schema: schema_lib.Schema) -> Table:
  """`table` (log columns) with the mapped columns as record fields (module docstring).

  Columns that map to nothing keep their names; a table with the identity mapping only has its
  boolean columns cast to int64.
  """
  mapping = schema.columns
  fields = {column: field for field, column in mapping.fields}
  names, arrays = [], []
  for name, column in zip(table.column_names, table.columns):
    field = fields.get(name, name)
    if field == schema_lib.TARGET_ACTION and mapping.target_names:
      column = target_indices(_array(column), schema.actions)
    elif field == schema_lib.DAY and mapping.timestamp_unit:
      column = pa.array(timestamp_days(_numbers(column), mapping.timestamp_unit), pa.int64())
    elif pa.types.is_boolean(column.type):
      column = column.cast(pa.int64())
    names.append(field)
    arrays.append(column)
  if isinstance(table, pa.RecordBatch):
    return pa.RecordBatch.from_arrays([_array(a) for a in arrays], names=names)
  return pa.table(arrays, names=names)


def to_logs(table: Table, schema: schema_lib.Schema) -> pa.Table:
  """The way back from record fields to log columns, for writers (module docstring)."""
  mapping = schema.columns
  names, arrays = [], []
  for name, column in zip(table.column_names, table.columns):
    if _is_encoded(name, mapping):
      stored = pa.string() if name == schema_lib.TARGET_ACTION else pa.int64()
      column = pa.array(_log_values(name, _numbers(column), schema), stored)
    names.append(mapping.log_name(name))
    arrays.append(column)
  return pa.table(arrays, names=names)


def to_log_columns(
  columns: Mapping[str, np.ndarray], schema: schema_lib.Schema
) -> Dict[str, np.ndarray]:
  """`to_logs` of numpy `{field: (n,) or (n, max_values)}` columns, keyed by log column."""
  mapping = schema.columns
  return {
    mapping.log_name(k): _log_values(k, np.asarray(v), schema) if _is_encoded(k, mapping) else v
    for k, v in columns.items()
  }


def written_dtypes(
  schema: schema_lib.Schema, dtypes: Mapping[str, tf.DType]
) -> Dict[str, tf.DType]:
  """`{log column: dtype}` a writer stores the record fields `dtypes` (`{field: dtype}`) as.

  Action names are strings; a timestamp keeps the day's int64 (milliseconds or seconds).
  """
  mapping = schema.columns
  stored = {}
  for field, dtype in dtypes.items():
    if field == schema_lib.TARGET_ACTION and mapping.target_names:
      dtype = tf.string
    stored[mapping.log_name(field)] = dtype
  return stored


def _is_encoded(field: str, mapping: schema_lib.ColumnMapping) -> bool:
  """Whether the log column of `field` holds another encoding than the field's values."""
  return (field == schema_lib.TARGET_ACTION and mapping.target_names) or (
    field == schema_lib.DAY and mapping.timestamp_unit is not None
  )


def _log_values(field: str, values: np.ndarray, schema: schema_lib.Schema) -> np.ndarray:
  """(n,) log values of (n,) `field` values: action names ("" for -1), or midnight timestamps."""
  if field == schema_lib.TARGET_ACTION:
    labels = np.asarray(list(schema.actions) + [""], object)
    return labels[values.astype(np.int64)]
  return values.astype(np.int64) * schema_lib.DAY_IN_UNITS[schema.columns.timestamp_unit]


def _array(column) -> pa.Array:
  return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _numbers(column) -> np.ndarray:
  return _array(column).to_numpy(zero_copy_only=False)


def log_parse_spec(schema: schema_lib.Schema, spec: Mapping[str, object]) -> Dict[str, object]:
  """A `tf.io.parse_example` spec of record fields, keyed and typed as the logs store them."""
  mapping = schema.columns
  stored = {}
  for field, feature in spec.items():
    if field == schema_lib.TARGET_ACTION and mapping.target_names:
      feature = tf.io.FixedLenFeature([], tf.string)
    stored[mapping.log_name(field)] = feature
  return stored


def target_table(schema: schema_lib.Schema) -> tf.lookup.StaticHashTable:
  """Action name -> its int64 index in `schema.actions`; any other name -> -1 ("Other")."""
  return tf.lookup.StaticHashTable(
    tf.lookup.KeyValueTensorInitializer(
      tf.constant(list(schema.actions)), tf.range(len(schema.actions), dtype=tf.int64)
    ),
    default_value=schema_lib.OTHER_TARGET,
  )


def records_from_parsed(
  parsed: Mapping[str, tf.Tensor],
  schema: schema_lib.Schema,
  targets: Optional[tf.lookup.StaticHashTable] = None,
) -> Dict[str, tf.Tensor]:
  """Record-field tensors from tensors parsed with `log_parse_spec` (module docstring).

  Args:
    parsed: `{log column: (n,) tensor}` (`(n, ...)` or ragged for the multi-valued features).
    schema: The logs' schema.
    targets: `target_table(schema)`, built once by callers that translate many batches; None
      builds one here when the target column holds action names.

  Returns:
    `{field: tensor}`, in the order of `parsed`; the target as int64 indices, the day as int64
    days floor(ts / 1 day).
  """
  mapping = schema.columns
  fields = {column: field for field, column in mapping.fields}
  records = {}
  for name, tensor in parsed.items():
    field = fields.get(name, name)
    if field == schema_lib.TARGET_ACTION and mapping.target_names:
      tensor = (targets if targets is not None else target_table(schema)).lookup(tensor)
    elif field == schema_lib.DAY and mapping.timestamp_unit:
      tensor = tf.math.floordiv(tensor, schema_lib.DAY_IN_UNITS[mapping.timestamp_unit])
    records[field] = tensor
  return records


class LogParser:
  """Serialized TFRecord logs of a schema -> `{field: tensor}` of record fields.

  Parses with the log columns (`log_parse_spec`) and translates (`records_from_parsed`); the
  action-name lookup is built once, here, so a `tf.data` map captures it instead of building
  one per batch. Under the identity mapping it is `tf.io.parse_example` with `spec`.

  Args:
    schema: The logs' schema (None: the identity mapping).
    spec: The record fields to parse, `{field: tf.io.FixedLenFeature or RaggedFeature}`.

  Attributes:
    spec: What is parsed, keyed and typed as the logs store it (`log_parse_spec`).
  """

  def __init__(self, schema: Optional[schema_lib.Schema], spec: Mapping[str, object]):
    self._schema = schema if schema is not None and is_mapped(schema) else None
    self.spec = log_parse_spec(self._schema, spec) if self._schema else dict(spec)
    mapped_targets = self._schema is not None and self._schema.columns.target_names
    self._targets = target_table(self._schema) if mapped_targets else None

  def __call__(self, serialized: tf.Tensor) -> Dict[str, tf.Tensor]:
    """(n,) serialized `tf.train.Example`s -> `{field: (n,) tensor}` (ragged for lists)."""
    parsed = tf.io.parse_example(serialized, self.spec)
    if self._schema is None:
      return parsed
    return records_from_parsed(parsed, self._schema, self._targets)
