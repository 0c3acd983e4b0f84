"""Logs of any supported format read into one `pyarrow.Table`, for schema inference.

Formats, by file name: `*.parquet` (Parquet), `*.csv` / `*.csv.gz` (CSV with a header row,
types inferred by `pyarrow.csv`), anything else TFRecord of `tf.train.Example` (`.gz`:
GZIP). Files are read in sorted order (`records.list_files`); with `max_rows` reading stops
once that many rows are read, so the table holds the first `max_rows` rows in that order (a
prefix, not a random sample: `LogTable.to_dict` says so for the report).

A TFRecord key becomes one column: int64 / float32 / binary by its value kind. When every
record holds at most one value it is a scalar column (an absent key or an empty list is null);
when some record holds more, it is a list column (an absent key is the empty list, as
`tf.io.RaggedFeature` parses it). A key whose kind varies between records is an error naming
the file, record and key.
"""

import dataclasses
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import tensorflow as tf

from kaml_tf.logs import parquet as parquet_logs
from kaml_tf.logs import records

CSV_SUFFIXES = (".csv", ".csv.gz")
_KIND_TYPES = {"int64_list": pa.int64(), "float_list": pa.float32(), "bytes_list": pa.binary()}


def is_csv(path: str) -> bool:
  """Whether `path` names a CSV log (`.csv`, or `.csv.gz`)."""
  return path.endswith(CSV_SUFFIXES)


def log_format(path: str) -> str:
  """ "parquet", "csv" or "tfrecord", by the file name."""
  if parquet_logs.is_parquet(path):
    return "parquet"
  return "csv" if is_csv(path) else "tfrecord"


@dataclasses.dataclass(frozen=True)
class LogTable:
  """Logs read into memory.

  Attributes:
    table: The rows read, one column per log column (`pa.Table`).
    files: The files read from, in order (fewer than matched when `max_rows` stopped early).
    max_rows: The row cap reading used, or None.
    truncated: Whether the cap stopped reading before the end of the logs.
  """

  table: pa.Table
  files: Sequence[str]
  max_rows: Optional[int] = None
  truncated: bool = False

  def to_dict(self) -> Dict[str, Any]:
    """What was read, for a report."""
    return {
      "files": list(self.files),
      "rows": self.table.num_rows,
      "max_rows": self.max_rows,
      "truncated": self.truncated,
      "rows_used": (
        f"the first {self.table.num_rows} rows of the files in sorted order"
        if self.truncated
        else "every row"
      ),
    }


def read_table(files: Union[str, Sequence[str]], max_rows: Optional[int] = None) -> LogTable:
  """Reads logs into one table.

  Args:
    files: A glob, comma-separated globs or a list of paths.
    max_rows: Stop after this many rows (None: read everything).

  Returns:
    A `LogTable`; files whose columns differ in type are merged by `pa.concat_tables`'s
    permissive promotion (a column absent from a file is null there).

  Raises:
    FileNotFoundError: when a pattern matches nothing.
    records.LogError: naming the file for an unreadable file or a malformed record.
  """
  if max_rows is not None and max_rows < 1:
    raise ValueError(f"max_rows must be >= 1, got {max_rows}")
  tables: List[pa.Table] = []
  read: List[str] = []
  rows, truncated = 0, False
  paths = records.list_files(files)
  for path in paths:
    left = None if max_rows is None else max_rows - rows
    if left is not None and left <= 0:
      break
    table, cut = _read_file(path, left)
    tables.append(table)
    read.append(path)
    rows += table.num_rows
    truncated = cut
  truncated = truncated or len(read) < len(paths)
  try:
    merged = pa.concat_tables(tables, promote_options="permissive")
  except pa.ArrowException as e:
    raise records.LogError(f"{files}: the files' columns do not agree ({e})") from None
  return LogTable(merged, tuple(read), max_rows, truncated)


def _read_file(path: str, limit: Optional[int]) -> Tuple[pa.Table, bool]:
  """The file's first `limit` rows (all when None), and whether rows were left unread."""
  kind = log_format(path)
  if kind == "parquet":
    table, cut = _read_parquet(path, limit)
  elif kind == "csv":
    table, cut = _read_csv(path), False
  else:
    # One record more than the cap tells whether the file goes on.
    table, cut = _read_tfrecord(path, limit), False
  if limit is not None and table.num_rows > limit:
    table, cut = table.slice(0, limit), True
  return table, cut


def _read_parquet(path: str, limit: Optional[int]) -> Tuple[pa.Table, bool]:
  try:
    parquet = pq.ParquetFile(path)
    if limit is None:
      return parquet.read(), False
    batches, rows = [], 0
    for batch in parquet.iter_batches():
      batches.append(batch)
      rows += batch.num_rows
      if rows >= limit:
        break
    table = pa.Table.from_batches(batches, schema=parquet.schema_arrow)
    return table, parquet.metadata.num_rows > min(rows, limit)
  except (OSError, pa.ArrowException) as e:
    raise records.LogError(f"{path}: not a readable Parquet file ({e})") from None


def _read_csv(path: str) -> pa.Table:
  try:
    return pa_csv.read_csv(path)
  except (OSError, pa.ArrowException) as e:
    raise records.LogError(f"{path}: not a readable CSV file with a header row ({e})") from None


def _read_tfrecord(path: str, limit: Optional[int]) -> pa.Table:
  """`tf.train.Example` records as columns (module docstring); `limit` + 1 records at most."""
  dataset = tf.data.TFRecordDataset(path, compression_type=records.compression_of(path))
  if limit is not None:
    dataset = dataset.take(limit + 1)
  values: Dict[str, List[Any]] = {}
  kinds: Dict[str, str] = {}
  n = 0
  try:
    for n, serialized in enumerate(dataset.as_numpy_iterator(), start=1):
      _add_example(path, n - 1, serialized, values, kinds)
  except tf.errors.OpError as e:
    raise records.LogError(f"{path}: unreadable from record #{n} on ({e.message})") from None
  columns = {}
  for key, column in values.items():
    column.extend([None] * (n - len(column)))
    columns[key] = _arrow_column(column, _KIND_TYPES[kinds[key]])
  return pa.table(columns) if columns else pa.table({})


def _add_example(path, index, serialized, values, kinds) -> None:
  try:
    example = tf.train.Example.FromString(serialized)
  except Exception as e:  # noqa: BLE001  (protobuf's DecodeError has no stable import path)
    raise records.LogError(f"{path}: record #{index} is not a tf.train.Example ({e})") from None
  for key, feature in example.features.feature.items():
    kind = feature.WhichOneof("kind")
    if kind is None:
      continue
    if kinds.setdefault(key, kind) != kind:
      raise records.LogError(
        f"{path}: record #{index}, key {key!r}: {kind} where earlier records hold {kinds[key]}"
      )
    column = values.setdefault(key, [])
    column.extend([None] * (index - len(column)))
    column.append(list(getattr(feature, kind).value))


def _arrow_column(column: List[Optional[List[Any]]], value_type: pa.DataType) -> pa.Array:
  if any(v is not None and len(v) > 1 for v in column):
    return pa.array([[] if v is None else v for v in column], pa.list_(value_type))
  return pa.array([v[0] if v else None for v in column], value_type)
