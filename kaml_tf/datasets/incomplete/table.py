"""Reading the input table (Parquet, or CSV / TSV with a header) and checking its columns.

Every error is a `ConversionError` naming the file, the column and, where there is one, the
first bad row as people count it (data row 1 is line 2 of a CSV, after the header). Checked:
the named columns exist; a label column holds 0 or 1 on every row (integers, booleans, or
numbers / strings equal to 0 or 1); the group column has no null and holds integers or
strings (an empty string is a null too); the time column has no null; no other column takes a name the protocol writes
(`ad_task_id`, `target_action`, `day`, `label_*`, `true_label_*`).
"""

import dataclasses
import os
from typing import Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from kaml_tf import schema as schema_lib
from kaml_tf.datasets.incomplete.errors import ConversionError

PARQUET_SUFFIX = ".parquet"


def row_text(index: int) -> str:
  """Names data row `index` (0-based) as people count it: 1-based, and its line (header 1)."""
  return f"data row {index + 1} (line {index + 2})"


def read_delimited(path: str, what: str, string_columns: Sequence[str] = ()) -> pa.Table:
  """Reads a delimited file with a header (`.gz` allowed); tab-separated if its header line
  holds a tab, comma-separated otherwise.

  Args:
    path: The file.
    what: What the file is, for errors ("KuaiRand log").
    string_columns: Columns read as text whatever they look like.
  """
  if not os.path.isfile(path):
    raise ConversionError(f"{path}: {what} file not found")
  try:
    with pa.input_stream(path, compression="detect") as stream:
      header = stream.read(1 << 16).split(b"\n", 1)[0]
    delimiter = "\t" if b"\t" in header else ","
    return pa_csv.read_csv(
      path,
      parse_options=pa_csv.ParseOptions(delimiter=delimiter),
      convert_options=pa_csv.ConvertOptions(column_types={c: pa.string() for c in string_columns}),
    )
  except (pa.ArrowException, OSError) as e:
    raise ConversionError(f"{path}: not a readable {what} file ({e})") from None


def read_table(path: str) -> pa.Table:
  """Reads a Parquet file (by its `.parquet` suffix) or a delimited file with a header."""
  if not path.endswith(PARQUET_SUFFIX):
    return read_delimited(path, "table")
  if not os.path.isfile(path):
    raise ConversionError(f"{path}: table file not found")
  try:
    return pq.read_table(path)
  except (pa.ArrowException, OSError) as e:
    raise ConversionError(f"{path}: not a readable Parquet file ({e})") from None


def require_columns(table: pa.Table, names: Sequence[str], path: str, why: str) -> None:
  """Raises naming the columns of `names` the table lacks, and the columns it has."""
  missing = [n for n in names if n not in table.column_names]
  if missing:
    raise ConversionError(
      f"{path}: missing column(s) {missing} ({why}); the file has {table.column_names}"
    )


@dataclasses.dataclass(frozen=True)
class InputTable:
  """The checked input rows.

  Attributes:
    path: The file read.
    truth: (n, N) int64 0/1 complete labels, in the order of the label columns.
    groups: (n,) the group column: int64, or str objects.
    time: (n,) the time column as read, or None.
    features: The other columns, in file order (n rows).
  """

  path: str
  truth: np.ndarray
  groups: np.ndarray
  time: Optional[pa.ChunkedArray]
  features: pa.Table


def check_table(
  table: pa.Table, path: str, labels: Sequence[str], group: str, time: Optional[str]
) -> InputTable:
  """Checks `table` (see the module docstring) and takes its columns apart.

  Args:
    table: The input table.
    path: Its file, for errors.
    labels: The N label columns.
    group: The group column.
    time: The time column, or None.

  Raises:
    ConversionError: naming the file and the column (and the first bad row).
  """
  named = list(labels) + [group] + ([time] if time else [])
  require_columns(table, named, path, "the labels, group and time the protocol reads")
  if table.num_rows == 0:
    raise ConversionError(f"{path}: the table has no rows")
  features = table.drop_columns(named)
  for name in features.column_names:
    if _is_written(name):
      raise ConversionError(
        f"{path}: column {name!r} has the name of a field the protocol writes; rename it"
      )
  truth = np.stack([_label_values(table[name], path, name) for name in labels], axis=1)
  if time:
    _no_nulls(table[time], path, time, "time")
  return InputTable(
    path=path,
    truth=truth,
    groups=_group_values(table[group], path, group),
    time=table[time] if time else None,
    features=features,
  )


def _is_written(name: str) -> bool:
  return name in (schema_lib.KEY_FIELDS + (schema_lib.HKE_INDICATOR,)) or name.startswith(
    (schema_lib.LABEL_PREFIX, schema_lib.TRUE_LABEL_PREFIX)
  )


def _first(bad: np.ndarray) -> int:
  return int(np.flatnonzero(bad)[0])


def _no_nulls(column: pa.ChunkedArray, path: str, name: str, role: str) -> None:
  if column.null_count:
    i = _first(~column.is_valid().to_numpy(zero_copy_only=False))
    raise ConversionError(
      f"{path}: {role} column {name!r}, {row_text(i)}: empty value "
      f"({column.null_count} empty row(s) in all)"
    )


def _label_values(column: pa.ChunkedArray, path: str, name: str) -> np.ndarray:
  """(n,) int64 0/1 of a label column; raises naming the first value that is not 0 or 1."""
  _no_nulls(column, path, name, "label")
  kind = column.type
  if pa.types.is_boolean(kind) or pa.types.is_integer(kind) or pa.types.is_floating(kind):
    values = pc.cast(column, pa.float64()).to_numpy()
    bad = (values != 0) & (values != 1)
  else:
    values = pc.cast(column, pa.string()).to_numpy(zero_copy_only=False)
    bad = ~pc.is_in(pc.cast(column, pa.string()), pa.array(["0", "1"])).to_numpy(
      zero_copy_only=False
    )
  if bad.any():
    i = _first(bad)
    raise ConversionError(
      f"{path}: label column {name!r}, {row_text(i)}: expected 0 or 1, got {values[i]!r} "
      f"({int(bad.sum())} bad row(s) in all)"
    )
  return values.astype(np.float64).astype(np.int64)


def _group_values(column: pa.ChunkedArray, path: str, name: str) -> np.ndarray:
  """(n,) int64 or str values of the group column; raises on nulls or another type."""
  _no_nulls(column, path, name, "group")
  kind = column.type
  if pa.types.is_dictionary(kind):
    column, kind = pc.cast(column, kind.value_type), kind.value_type
  if pa.types.is_integer(kind):
    return column.to_numpy().astype(np.int64)
  if pa.types.is_string(kind) or pa.types.is_large_string(kind):
    values = np.asarray(column.to_pylist(), dtype=object)
    empty = values == ""  # An empty CSV cell of a text column is read as "", not as null.
    if empty.any():
      raise ConversionError(
        f"{path}: group column {name!r}, {row_text(_first(empty))}: empty value "
        f"({int(empty.sum())} empty row(s) in all)"
      )
    return values
  raise ConversionError(
    f"{path}: group column {name!r} has type {kind}; expected integers or strings"
  )
