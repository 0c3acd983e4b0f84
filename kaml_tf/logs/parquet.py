"""Parquet logs: the columnar log format, one column per schema field and one row per sample.

Columnar logs cost a fraction of `tf.train.Example` records to read, because nothing is
decoded field by field (measured: docs/results/timings/library.md#parquet-against-tfrecord-reads).
On a trainer whose cores also run the model that difference is training throughput
(`pipelines.benchmark --sections=peer`).

Every reader here goes through `read_batches`, which

* checks the footer first (`check_file`): a missing column or one of another type fails
  with the file and column named, before any row is read. A multi-valued feature is a
  `list<int64>` or `list<string>` (or binary) column; a list column of a single-valued one is
  refused, naming the column;
* yields record batches as numpy columns cast to the schema's dtypes, with the positions of
  null values per field (a null is a missing value; `kaml_tf.logs.validation` reports it
  with its record index, or skips the record under --skip_bad_records). A multi-valued
  column is read as `(n, max_values)` ids padded with the pad value, a null list as the empty
  list; its lists as read (`multivalued.RaggedColumn`, with their null ids) come along for
  `kaml_tf.logs.validation` to check: a null id, a pad id or a list longer than `max_values`
  is a bad record;
* raises `ReadError` with the index of the first unread record when the file cannot be read
  further (a truncated or corrupt row group).

`LogWriter` writes sharded Parquet logs atomically (`pipelines.convert_logs`).
"""

import dataclasses
import io
from typing import Dict, Iterator, List, Mapping, Optional

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import tensorflow as tf

from kaml_tf.logs import multivalued
from kaml_tf.logs import columns as columns_lib
from kaml_tf.logs import records
from kaml_tf import schema as schema_lib

PARQUET_SUFFIX = ".parquet"

Fields = Mapping[str, tf.DType]
# `{name: max_values}` of the multi-valued fields among `Fields` (`multivalued.widths`).
Widths = Mapping[str, int]


def is_parquet(path: str) -> bool:
  """Whether `path` names a Parquet log (by its `.parquet` suffix)."""
  return path.endswith(PARQUET_SUFFIX)


class ReadError(records.LogError):
  """A Parquet log cannot be read from record `first` on (the rows before it were read)."""

  def __init__(self, path: str, first: int, reason: str):
    super().__init__(f"{path}: unreadable from record #{first} on ({reason})")
    self.path = path
    self.first = first
    self.reason = reason


def _accepts(dtype: tf.DType, arrow_type: pa.DataType) -> bool:
  """Whether a column of `arrow_type` holds values of the schema field's `dtype`."""
  if dtype == tf.string:
    return (
      pa.types.is_string(arrow_type)
      or pa.types.is_large_string(arrow_type)
      or pa.types.is_binary(arrow_type)
      or pa.types.is_large_binary(arrow_type)
    )
  if dtype.is_integer:  # booleans are read as 0/1 (labels from CSV files, say)
    return pa.types.is_integer(arrow_type) or pa.types.is_boolean(arrow_type)
  return pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type)


class _TfFile(io.RawIOBase):
  """A seekable binary file of any TF filesystem, as pyarrow reads Python files."""

  def __init__(self, path: str):
    super().__init__()
    self._file = tf.io.gfile.GFile(path, "rb")

  def readable(self) -> bool:
    return True

  def seekable(self) -> bool:
    return True

  def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
    self._file.seek(offset, whence)
    return self._file.tell()

  def tell(self) -> int:
    return self._file.tell()

  def readinto(self, buffer) -> int:
    data = self._file.read(len(buffer))
    buffer[: len(data)] = data
    return len(data)

  def close(self) -> None:
    self._file.close()
    super().close()


def _open(path: str) -> pq.ParquetFile:
  if tf.io.gfile.isdir(path):
    raise records.LogError(
      f"{path}: is a directory; pass the Parquet files inside it (e.g. a glob)"
    )
  # A URL (gs://, hdfs://, ...) is read through TF's filesystems, like the TFRecord logs; a
  # local path directly by pyarrow.
  source = _TfFile(path) if "://" in path else path
  try:
    return pq.ParquetFile(source)
  except (OSError, pa.ArrowException, tf.errors.OpError) as e:
    raise records.LogError(f"{path}: not a readable Parquet file ({e})") from None


def _is_list(arrow_type: pa.DataType) -> bool:
  return pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type)


def _check_columns(
  path: str, parquet: pq.ParquetFile, fields: Fields, widths: Optional[Widths]
) -> None:
  arrow_schema = parquet.schema_arrow
  widths = widths or {}
  for name, dtype in fields.items():
    index = arrow_schema.get_field_index(name)
    if index < 0:
      raise records.LogError(f"{path}: missing column {name!r} (the schema's records need it)")
    arrow_type = arrow_schema.field(index).type
    if name in widths:
      if not _is_list(arrow_type) or not _accepts(dtype, arrow_type.value_type):
        raise records.LogError(
          f"{path}: column {name!r} has type {arrow_type}, expected list<{dtype.name}> "
          f"(a multi-valued feature, max_values={widths[name]})"
        )
    elif _is_list(arrow_type):
      raise records.LogError(
        f"{path}: column {name!r} is a list column ({arrow_type}) in a schema that says "
        f"single-valued (give the feature max_values > 1 to read lists)"
      )
    elif not _accepts(dtype, arrow_type):
      raise records.LogError(
        f"{path}: column {name!r} has type {arrow_type}, expected {dtype.name}"
      )


def check_file(
  path: str,
  fields: Fields,
  widths: Optional[Widths] = None,
  schema: Optional[schema_lib.Schema] = None,
) -> int:
  """Checks the footer of a Parquet log against the fields; returns its row count.

  With `schema`, the fields are looked for under their log columns (`Schema.columns`).

  Args:
    path: The file.
    fields: The columns and their schema dtypes.
    widths: `{name: max_values}` of the multi-valued fields among them (None: none).
    schema: The schema, when the logs may have column names of their own.

  Raises:
    records.LogError: naming the file (and column) for a directory, an unreadable footer, a
      missing column, a column of another type, or a list column of a single-valued field.
  """
  parquet = _open(path)
  _check_columns(
    path, parquet, columns_lib.log_fields(schema, fields) if schema else fields, widths
  )
  return parquet.metadata.num_rows


@dataclasses.dataclass
class Batch:
  """Consecutive records of one Parquet log.

  Attributes:
    first: Index of the first record in the file.
    columns: `{field: (n,) array}` in the schema's dtypes (int64, float32 or object bytes);
      a null is read as 0 (or b""). A multi-valued field is `(n, max_values)` padded ids
      (a null list is the empty list; a null id reads as the pad value).
    nulls: `{field: sorted positions within the batch}` of the fields that have nulls (a
      null list is not one).
    lists: `{field: its lists as read}` of the multi-valued fields, for the checks.
  """

  first: int
  columns: Dict[str, np.ndarray]
  nulls: Dict[str, np.ndarray]
  lists: Dict[str, multivalued.RaggedColumn] = dataclasses.field(default_factory=dict)

  @property
  def size(self) -> int:
    return len(next(iter(self.columns.values())))


def _to_numpy(column: pa.Array, dtype: tf.DType) -> np.ndarray:
  if dtype == tf.string:
    return np.asarray(column.cast(pa.binary()).fill_null(b"").to_pylist(), dtype=object)
  if column.null_count:
    column = column.fill_null(0)
  return column.to_numpy(zero_copy_only=False).astype(dtype.as_numpy_dtype, copy=False)


def _ragged(column: pa.Array, dtype: tf.DType, width: int) -> multivalued.RaggedColumn:
  """A list column's ids (a null list has none) and lengths, with where its ids are null."""
  flat = column.flatten()  # skips null lists and honours the slice's offset
  lengths = pc.list_value_length(column).fill_null(0).to_numpy(zero_copy_only=False)
  nulls = flat.is_null().to_numpy(zero_copy_only=False) if flat.null_count else None
  pad = multivalued.pad_value(dtype)
  if nulls is not None and dtype != tf.string:
    flat = flat.fill_null(pad)  # strings fill theirs with b"", their pad value
  return multivalued.RaggedColumn(
    _to_numpy(flat, dtype), lengths.astype(np.int64), nulls, width, pad
  )


def _batch(
  first: int, record_batch: pa.RecordBatch, fields: Fields, widths: Optional[Widths]
) -> Batch:
  columns, nulls, lists = {}, {}, {}
  widths = widths or {}
  for name, dtype in fields.items():
    column = record_batch.column(name)
    if name in widths:
      lists[name] = _ragged(column, dtype, widths[name])
      columns[name] = lists[name].padded()
      continue
    if column.null_count:
      nulls[name] = np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))
    columns[name] = _to_numpy(column, dtype)
  return Batch(first, columns, nulls, lists)


def read_batches(
  path: str,
  fields: Fields,
  batch_size: int,
  limit: Optional[int] = None,
  widths: Optional[Widths] = None,
  schema: Optional[schema_lib.Schema] = None,
) -> Iterator[Batch]:
  """Reads a Parquet log as `Batch`es of at most `batch_size` records, in record order.

  Args:
    path: The file.
    fields: The columns to read and their schema dtypes.
    batch_size: Records per batch (pyarrow splits batches at row-group ends too).
    limit: Read only the first `limit` records (None: all).
    widths: `{name: max_values}` of the multi-valued fields (list columns; None: none).
    schema: Logs with column names of their own (`Schema.columns`): read the fields' log
      columns and translate them (`columns.to_records`).

  Raises:
    records.LogError: from `check_file`.
    ReadError: when a row group cannot be read; it names the first record not read.
  """
  parquet = _open(path)
  stored = columns_lib.log_fields(schema, fields) if schema else fields
  _check_columns(path, parquet, stored, widths)
  first = 0
  batches = parquet.iter_batches(batch_size=batch_size, columns=list(stored))
  while limit is None or first < limit:
    try:
      record_batch = next(batches)
    except StopIteration:
      return
    except (OSError, pa.ArrowException) as e:
      raise ReadError(path, first, str(e)) from None
    if limit is not None and first + record_batch.num_rows > limit:
      record_batch = record_batch.slice(0, limit - first)
    records_batch = columns_lib.to_records(record_batch, schema) if schema else record_batch
    yield _batch(first, records_batch, fields, widths)
    first += record_batch.num_rows


def shard_paths(prefix: str, num_shards: int) -> List[str]:
  return [f"{prefix}-{i:05d}-of-{num_shards:05d}{PARQUET_SUFFIX}" for i in range(num_shards)]


def _arrow_type(dtype: tf.DType, multivalued_field: bool = False) -> pa.DataType:
  scalar = {tf.int64: pa.int64(), tf.float32: pa.float32(), tf.string: pa.binary()}[dtype]
  return pa.list_(scalar) if multivalued_field else scalar


def _arrow_array(name: str, values: np.ndarray, dtype: tf.DType, multivalued_field: bool):
  """The Arrow array of a column; a (n, max_values) padded one becomes lists of its ids."""
  if multivalued_field:
    lengths = multivalued.prefix_lengths(values, multivalued.pad_value(dtype), name)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    ids = _arrow_array(name, multivalued.flat_prefix(values, lengths), dtype, False)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), ids)
  if dtype == tf.string:
    return pa.array(list(values), pa.binary())
  return pa.array(np.asarray(values).astype(dtype.as_numpy_dtype, copy=False), _arrow_type(dtype))


class TableEncoder:
  """Column batches -> Arrow tables of the Parquet log layout (what `LogWriter` writes).

  A multi-valued feature's `(n, max_values)` padded column becomes a list column of each
  row's ids before the padding; logs with column names of their own (`Schema.columns`) get
  them.

  Attributes:
    arrow_schema: The tables' schema.
  """

  def __init__(self, schema: schema_lib.Schema, include_true_labels: Optional[bool] = None):
    self._dtypes = schema.record_dtypes(include_true_labels)
    self._widths = multivalued.widths(schema)
    self._record_schema = pa.schema(
      [(k, _arrow_type(d, k in self._widths)) for k, d in self._dtypes.items()]
    )
    self._schema = schema if columns_lib.is_mapped(schema) else None
    self.arrow_schema = self._log_table(self._record_schema.empty_table()).schema

  def _log_table(self, table: pa.Table) -> pa.Table:
    return columns_lib.to_logs(table, self._schema) if self._schema else table

  def __call__(self, columns: Mapping[str, np.ndarray]) -> pa.Table:
    """The table of `{field: (n,) or (n, max_values) array}` (every record field needed)."""
    missing = sorted(set(self._dtypes) - set(columns))
    if missing:
      raise ValueError(f"columns lack the record fields {missing}")
    records.check_list_columns({k: columns[k] for k in self._dtypes}, self._widths)
    arrays = [_arrow_array(k, columns[k], d, k in self._widths) for k, d in self._dtypes.items()]
    return self._log_table(pa.Table.from_arrays(arrays, schema=self._record_schema))


class LogWriter(records.ShardedWriter):
  """Writes column batches round-robin over Parquet shards; atomic on `close()`.

  The Parquet counterpart of `kaml_tf.logs.records.LogWriter` (same shard names and row order):
  each `write` becomes one row group of one shard. A multi-valued feature's `(n, max_values)`
  padded column is written as a list column of each row's ids before the padding.

  Usage:
    with LogWriter(schema, "/data/train", num_shards=4) as w:
      w.write(columns)
    w.paths  # the final shard files
  """

  def __init__(
    self,
    schema: schema_lib.Schema,
    prefix: str,
    num_shards: int = 1,
    include_true_labels: Optional[bool] = None,
  ):
    if num_shards < 1:
      raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    self._encode = TableEncoder(schema, include_true_labels)
    super().__init__(shard_paths(prefix, num_shards))

  def _open(self, tmp: str):
    return pq.ParquetWriter(tmp, self._encode.arrow_schema)

  def _append(self, writer, columns: Mapping[str, np.ndarray]) -> int:
    table = self._encode(columns)
    if table.num_rows:  # an empty write would leave an empty row group
      writer.write_table(table)
    return table.num_rows
