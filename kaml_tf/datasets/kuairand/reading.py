"""Reading and checking the KuaiRand inputs: the interaction log and the user features.

Every error is a `ConversionError` naming the file and, where there is one, the column and the
first bad row as people count it (data row 1 is line 2, after the header). How the columns
become features is described in `conversion` ("Features", "Days").
"""

import dataclasses
import datetime
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kaml_tf.datasets.incomplete.table import read_delimited
from kaml_tf.datasets.incomplete.table import require_columns
from kaml_tf.datasets.incomplete.table import row_text
from kaml_tf.datasets.kuairand.config import DEFAULT_ACTIONS
from kaml_tf.datasets.kuairand.config import FEEDBACK_COLUMNS
from kaml_tf.datasets.kuairand.config import ConversionError

USER_ID = "user_id"
VIDEO_ID = "video_id"
DATE = "date"
HOURMIN = "hourmin"
TIME_MS = "time_ms"
LOG_KEY_COLUMNS = (USER_ID, VIDEO_ID, DATE, HOURMIN, TIME_MS)
# Dense play-time columns of the log, measured after the exposure.
PLAY_TIME_COLUMNS = ("play_time_ms", "duration_ms", "comment_stay_time")
# Numeric user features (dense); every other column of the user file but user_id is categorical.
USER_NUMERIC_COLUMNS = ("follow_user_num", "fans_user_num", "friend_user_num", "register_days")
MISSING_INDEX = 0
HOURS_PER_DAY = 24
_INTEGER_PATTERN = r"^\s*-?[0-9]+\s*$"


def _int_column(table: pa.Table, name: str, path: str) -> np.ndarray:
  """Parses a column read as text into int64, naming the first bad row.

  Returns:
    (rows,) int64.
  """
  column = table[name]
  ok = pc.fill_null(pc.match_substring_regex(column, _INTEGER_PATTERN), False)
  ok = ok.to_numpy(zero_copy_only=False)
  if not ok.all():
    i = int(np.flatnonzero(~ok)[0])
    raise ConversionError(
      f"{path}: column {name!r}, {row_text(i)}: expected an integer, got {column[i].as_py()!r}"
    )
  try:
    return pc.cast(pc.utf8_trim_whitespace(column), pa.int64()).to_numpy()
  except pa.ArrowException as e:
    raise ConversionError(f"{path}: column {name!r}: {e}") from None


def _check_rows(bad: np.ndarray, values: np.ndarray, path: str, name: str, what: str) -> None:
  """Raises naming the first row where `bad` (rows,) bool is set."""
  if bad.any():
    i = int(np.flatnonzero(bad)[0])
    raise ConversionError(
      f"{path}: column {name!r}, {row_text(i)}: {what}, got "
      f"{values[i]} ({int(bad.sum())} bad row(s) in all)"
    )


def read_log(
  path: str, actions: Sequence[str] = DEFAULT_ACTIONS, play_time_features: bool = False
) -> Dict[str, np.ndarray]:
  """Reads and checks the KuaiRand log columns the conversion needs.

  Args:
    path: The log: TSV or CSV with a header line (`.gz` allowed).
    actions: Action names (keys of `FEEDBACK_COLUMNS`) whose feedback columns are read.
    play_time_features: Whether to read `PLAY_TIME_COLUMNS` as well.

  Returns:
    Column name (the file's) -> (rows,) int64, for `LOG_KEY_COLUMNS`, the actions' feedback
    columns and, if asked, the play-time columns.

  Raises:
    ConversionError: naming the file, column and first bad row, when a column is missing, a
      value is not an integer, a feedback is not 0/1, an id is negative, `hourmin` is not a
      time of day HHMM or `date` is not a date YYYYMMDD.
  """
  feedback = [FEEDBACK_COLUMNS[a] for a in actions]
  dense = list(PLAY_TIME_COLUMNS) if play_time_features else []
  needed = list(LOG_KEY_COLUMNS) + feedback + dense
  table = read_delimited(path, "KuaiRand log", string_columns=needed)
  require_columns(table, needed, path, "the conversion reads them")
  if table.num_rows == 0:
    raise ConversionError(f"{path}: the log has no rows")
  columns = {name: _int_column(table, name, path) for name in needed}
  for name in (USER_ID, VIDEO_ID):
    _check_rows(columns[name] < 0, columns[name], path, name, "ids must be >= 0")
  for name in feedback:
    v = columns[name]
    _check_rows((v != 0) & (v != 1), v, path, name, "a feedback must be 0 or 1")
  for name in dense:
    _check_rows(columns[name] < 0, columns[name], path, name, "a duration must be >= 0")
  hm = columns[HOURMIN]
  _check_rows(
    (hm < 0) | (hm // 100 >= HOURS_PER_DAY) | (hm % 100 >= 60),
    hm,
    path,
    HOURMIN,
    "expected a time of day HHMM",
  )
  dates_to_days(columns[DATE], path)
  return columns


def _parse_date(value: int) -> Optional[datetime.date]:
  try:
    return datetime.date(value // 10000, value // 100 % 100, value % 100)
  except ValueError:
    return None


def dates_to_days(dates: np.ndarray, path: str) -> Tuple[np.ndarray, datetime.date]:
  """Days since the earliest date of `dates` (int YYYYMMDD, (rows,)).

  Returns:
    ((rows,) int64 day indices, the earliest date).
  """
  distinct, inverse = np.unique(dates, return_inverse=True)
  parsed = [_parse_date(int(d)) for d in distinct]
  bad = np.array([p is None for p in parsed])[inverse]
  _check_rows(bad, dates, path, DATE, "expected a date YYYYMMDD")
  first = min(parsed)
  offsets = np.array([(p - first).days for p in parsed], np.int64)
  return offsets[inverse], first


@dataclasses.dataclass(frozen=True)
class UserFeatures:
  """The user features file, with categorical values already turned into ids.

  Attributes:
    path: The file read.
    user_ids: (users,) int64 raw user ids, in file order.
    categorical: Column -> (users,) int64 ids: 1 + rank of the value among the column's
      sorted distinct values, `MISSING_INDEX` for an empty cell; in file column order.
    num_buckets: Column -> number of ids of a categorical column (distinct values + 1).
    numeric: Column -> (users,) float64 raw values of `USER_NUMERIC_COLUMNS`, NaN when empty.
  """

  path: str
  user_ids: np.ndarray
  categorical: Dict[str, np.ndarray]
  num_buckets: Dict[str, int]
  numeric: Dict[str, np.ndarray]


def category_ids(column: pa.ChunkedArray) -> Tuple[np.ndarray, int]:
  """Stable ids of a categorical column: sorted distinct values, nulls apart.

  Args:
    column: (rows,) values of any sortable type; nulls allowed.

  Returns:
    ((rows,) int64 ids, num_buckets): id 1 + rank of the value among the sorted distinct
    non-null values (numbers numerically, strings by code point), `MISSING_INDEX` (0) for
    null; num_buckets = distinct values + 1.
  """
  valid = column.is_valid().to_numpy(zero_copy_only=False)
  values = column.drop_null().to_numpy(zero_copy_only=False)
  vocabulary, inverse = np.unique(values, return_inverse=True)
  ids = np.full(len(column), MISSING_INDEX, np.int64)
  ids[valid] = inverse.reshape(-1) + 1
  return ids, len(vocabulary) + 1


def read_user_features(path: str) -> UserFeatures:
  """Reads the KuaiRand user features (CSV with a header, one row per `user_id`).

  Raises:
    ConversionError: naming the file (and the row or user) when `user_id` or a numeric
      column is missing, `user_id` is not an integer column without gaps, a user appears
      twice, or a numeric value is not a number >= 0.
  """
  table = read_delimited(path, "user features")
  require_columns(
    table, (USER_ID,) + USER_NUMERIC_COLUMNS, path, "the user id and the numeric user features"
  )
  ids_column = table[USER_ID]
  if not pa.types.is_integer(ids_column.type) or ids_column.null_count:
    raise ConversionError(
      f"{path}: column {USER_ID!r} must hold an integer on every row, got "
      f"type {ids_column.type} with {ids_column.null_count} empty cell(s)"
    )
  user_ids = ids_column.to_numpy().astype(np.int64)
  distinct, counts = np.unique(user_ids, return_counts=True)
  if (counts > 1).any():
    dup = int(np.flatnonzero(counts > 1)[0])
    rows = np.flatnonzero(user_ids == distinct[dup])
    raise ConversionError(
      f"{path}: user_id {distinct[dup]} appears on {len(rows)} rows "
      f"({row_text(int(rows[0]))} and {row_text(int(rows[1]))}); "
      "expected one row per user"
    )
  numeric = {}
  for name in USER_NUMERIC_COLUMNS:
    column = table[name]
    if not (
      pa.types.is_integer(column.type)
      or pa.types.is_floating(column.type)
      or pa.types.is_null(column.type)
    ):
      raise ConversionError(
        f"{path}: numeric column {name!r} has type {column.type}, expected numbers"
      )
    values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
    values = np.where(column.is_valid().to_numpy(zero_copy_only=False), values, np.nan)
    bad = ~(np.isnan(values) | (values >= 0))
    if bad.any():
      i = int(np.flatnonzero(bad)[0])
      raise ConversionError(
        f"{path}: column {name!r}, {row_text(i)} (user_id "
        f"{user_ids[i]}): expected a count >= 0, got {values[i]}"
      )
    numeric[name] = values
  categorical, buckets = {}, {}
  for name in table.column_names:
    if name == USER_ID or name in USER_NUMERIC_COLUMNS:
      continue
    categorical[name], buckets[name] = category_ids(table[name])
  return UserFeatures(
    path=path, user_ids=user_ids, categorical=categorical, num_buckets=buckets, numeric=numeric
  )


def join_users(
  users: UserFeatures, log_user_ids: np.ndarray, log_path: str, allow_missing: bool = False
) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray], np.ndarray]:
  """Looks up every log row's user in the user features.

  Args:
    users: The user features.
    log_user_ids: (rows,) raw user ids of the log.
    log_path: The log's path, for error messages.
    allow_missing: Whether a user absent from the features is accepted (missing category ids,
      NaN numeric values) rather than an error.

  Returns:
    (categorical: column -> (rows,) int64 ids, numeric: column -> (rows,) float64 (NaN if
    unknown), missing: (rows,) bool, the rows whose user is absent).

  Raises:
    ConversionError: naming both files, the first missing user and its first log row, unless
      `allow_missing`.
  """
  order = np.argsort(users.user_ids, kind="stable")
  sorted_ids = users.user_ids[order]
  if sorted_ids.size:
    pos = np.minimum(np.searchsorted(sorted_ids, log_user_ids), sorted_ids.size - 1)
    found = sorted_ids[pos] == log_user_ids
  else:
    pos = np.zeros(log_user_ids.shape, np.int64)
    found = np.zeros(log_user_ids.shape, bool)
  missing = ~found
  if missing.any() and not allow_missing:
    i = int(np.flatnonzero(missing)[0])
    absent = np.unique(log_user_ids[missing])
    raise ConversionError(
      f"{users.path}: no row for user_id {log_user_ids[i]} of {log_path} {row_text(i)}; "
      f"{absent.size} user(s) on {int(missing.sum())} log row(s) are missing (first: "
      f"{absent[:5].tolist()}); allow missing users to give them the missing category and "
      "the mean numeric values"
    )
  row = order[pos]
  categorical = {
    name: np.where(found, ids[row], MISSING_INDEX) for name, ids in users.categorical.items()
  }
  numeric = {name: np.where(found, values[row], np.nan) for name, values in users.numeric.items()}
  return categorical, numeric, missing
