"""KuaiRand -> this project's logs, following the paper's public-data protocol.

The paper (sections 4.1.1 and 4.2.2, Table 3) adapts KuaiRand-Pure into "asymmetric multi-label"
data: four feedbacks (is_like, is_follow, is_comment, is_forward) play conversion actions A..D;
every short video plays an ad task whose target action is one of them drawn at random; the
train and test sets are split 8:2 by timestamp; rows whose labels are all zero are
negative-sampled and all dense features are removed. Three experiments follow: Oracle trains
on every label, Vanilla only on the target action's label, and KAML also on two other randomly
drawn feedbacks per video ("approximates the mask strategy in ADM") plus the ranking loss, without
HKE (the targets are drawn at random, so there is no distribution discrepancy to model).

How this module maps that protocol onto the project (every knob is a `ConversionConfig` field
and a flag of `pipelines/kuairand.py`):

* Actions. `actions` names feedback columns of the log (`FEEDBACK_COLUMNS`): by default the
  paper's `like` (the file's `label` column: 1 liked, 0 hated), `follow`, `comment` and
  `forward`; e.g. `click`, `long_view` or `profile_enter` may be picked instead.
* Ad tasks. A video is an ad task: `ad_task_id` is the raw video id. Each video draws a random
  order of the N actions from `SeedSequence(seed, spawn_key=(0, video_id))`, so the draw
  depends on the seed and the video id only (not on the other rows of the file): the first
  action is the video's `target_action`, and the first 1 + `extra_reported_actions` (default
  1 + 2, the paper's KAML run) are the actions the video "reports".
* Labels. `true_label_<action>` is the feedback itself (the complete labels, for Oracle);
  `label_<action>` equals it for an action the video reports and is 0 otherwise (the
  incompleteness: the advertiser did not send that conversion back). So a reported label is
  never 1 where the feedback is 0, and a row's reported set is the same as its video's.
* Experiments. Oracle is the `oracle` mask policy (true labels), Vanilla the `base` policy
  (eq. 6: the target only), KAML the `adm` policy with alpha = 1 for every action on the
  statistics of the train logs (`pipelines.compute_stats`): they count reported conversions per
  video, so a reported action with at least one reported conversion in the window trains on
  all the video's rows, and an unreported one never does (its reported labels are all 0). This
  differs from the paper's wording in one case only: a reported action with no positive in the
  window is not trained for that video (by the paper's protocol it would add only negatives).
  `kaml_tf.data.masks.default_alpha` gives these action names the fallback threshold 2, so the
  KAML run needs an explicit alpha of 1 per action. The report's `adm_alpha1_share` is the share
  of train rows ADM with alpha = 1 would train per action (the paper's Table 1 "With ADM" row).
* Split. Rows are ordered by `time_ms`; the boundary t is the time of the row at position
  round((1 - `test_fraction`) * n) in that order; train holds the rows before t, test the rows
  at or after t, so rows with the same timestamp never straddle the split and every train row
  is older than every test row. The split is made on the input rows, before negative sampling,
  so it does not depend on the sampling rate or the seed.
* Negative sampling. A row is all-zero when every selected action's feedback (true label) is 0.
  In each split exactly round(`negative_keep_rate` * count) of its all-zero rows are kept
  (rounded half up), drawn uniformly without replacement from `SeedSequence(seed,
  spawn_key=(1, split))` (0 train, 1 test); the test split is sampled too unless
  `sample_test_negatives` is False. The default rate is 1 (keep all): in this slice the
  all-zero rows are the hated videos without follow / comment / forward (19 %), the only
  negatives `like` has, so sampling them away would only inflate its positive rate.
* Features. `user_id` and `video_id` (int64 ids 1 + rank of the raw id among the sorted
  distinct ids of the input log, 0 unused), `hour` (the time of day: the log's local
  `hourmin` // 100, 0..23) and the user features joined on `user_id` from the user features
  file: every column but `user_id` and `USER_NUMERIC_COLUMNS` is categorical and becomes an
  int64 id 1 + rank of its value among the sorted distinct values of the whole user file
  (numbers numerically, strings by code point), 0 for a missing value (an empty cell, or a
  user absent from the file when `allow_missing_users`); `USER_NUMERIC_COLUMNS` are dense
  float features log(1 + x) (heavy-tailed counts: fans reach 2 million), normalised with the
  mean and std of the train split's rows, a missing value written as that mean. A log user
  absent from the user file is an error unless `allow_missing_users`. Every sparse feature is
  vocabulary-free with `num_buckets` = its number of ids, so the embedding layer's
  `floormod(id, num_buckets)` is collision-free. The play-time columns (`PLAY_TIME_COLUMNS`)
  are dropped as the paper drops dense features; `play_time_features` keeps them as dense
  log(1 + ms) features, but they are measured after the exposure and leak the labels
  (`comment_stay_time` > 0 almost means a comment).
* Days. `day` is the number of days since the first `date` of the log (its local date), so
  the statistics job's window works: days 0..13 here; with the default split the test rows
  start at 23:39 on day 9 (2022-04-17, local time) and cover days 10..13.

What this data is not. The shared file is not KuaiRand-Pure (the paper's ~9e5 samples) but a
slice of KuaiRand-27K from which its publisher kept only the rows where the user liked or
hated the video, then 15-core filtered users and videos: 41,828 rows, 664 users, 9,359
videos, 2022-04-08..21. Most real traffic (rows with neither a like nor a hate) is absent, so
`like` is 81 % positive instead of a rare event and the other feedbacks are more frequent than
in uniform traffic (follow 0.7 %, comment 3.0 %, forward 0.8 %). Absolute AUC / LogLoss are
not comparable with the paper's Table 3; only the comparison of Oracle, Vanilla and KAML on
the same converted data is. The user features are KuaiRand-Pure's (27,285 users, said to share
ids with 27K, not independently confirmed); the video features cannot be used (their ids do
not match the 27K video ids). KuaiRand is licensed CC BY-SA 4.0 (Gao et al., CIKM 2022);
derived logs keep that license and attribution.

Output (`write_conversion`): `schema.json`, `train-*.tfrecord[.gz]`, `test-*.tfrecord[.gz]`
(rows in time order) and `conversion.json` (resolved config, files and the report: rows in /
out per split, per-action target, reporting and positive rates, negatives sampled), each
written atomically.
"""

import dataclasses
import datetime
import glob
import json
import math
import os
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from absl import logging
import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from kaml_tf import configs
from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf import atomic

# Action name -> feedback column of the KuaiRand log (0/1 each).
FEEDBACK_COLUMNS: Mapping[str, str] = {
  "like": "label",
  "follow": "is_follow",
  "comment": "is_comment",
  "forward": "is_forward",
  "click": "is_click",
  "long_view": "long_view",
  "profile_enter": "is_profile_enter",
}
# The paper's four feedbacks, actions A..D.
DEFAULT_ACTIONS = ("like", "follow", "comment", "forward")
USER_ID = "user_id"
VIDEO_ID = "video_id"
DATE = "date"
HOURMIN = "hourmin"
TIME_MS = "time_ms"
HOUR = "hour"
LOG_KEY_COLUMNS = (USER_ID, VIDEO_ID, DATE, HOURMIN, TIME_MS)
# Dense play-time columns of the log, measured after the exposure.
PLAY_TIME_COLUMNS = ("play_time_ms", "duration_ms", "comment_stay_time")
# Numeric user features (dense); every other column of the user file but user_id is categorical.
USER_NUMERIC_COLUMNS = ("follow_user_num", "fans_user_num", "friend_user_num", "register_days")
MISSING_INDEX = 0
HOURS_PER_DAY = 24
TRAIN = "train"
TEST = "test"
SPLITS = (TRAIN, TEST)
ALL = "all"
REPORT_FILE = "conversion.json"

# Spawn keys of the random streams: per video (followed by the video id), per split's sampling.
_VIDEO_STREAM = 0
_NEGATIVE_STREAM = 1
_INTEGER_PATTERN = r"^\s*-?[0-9]+\s*$"


class ConversionError(ValueError):
  """The input files are malformed; the message names the file, row and column."""


def _field(doc: str, default: Any = dataclasses.MISSING) -> Any:
  """A config field whose help text is also the flag's help in `pipelines/kuairand.py`."""
  return dataclasses.field(default=default, metadata={"help": doc})


@dataclasses.dataclass(frozen=True)
class ConversionConfig:
  """Everything the converted logs depend on (see the module docstring)."""

  log_path: str = _field("The KuaiRand log (TSV or CSV with a header, optionally .gz).")
  user_features_path: str = _field("The KuaiRand user features CSV (one row per user_id).")
  seed: int = _field("Seed of the per-video target / reported draws and of the sampling.", 0)
  actions: Tuple[str, ...] = _field(
    "Feedbacks used as conversion actions, in order; known: " + ", ".join(FEEDBACK_COLUMNS) + ".",
    DEFAULT_ACTIONS,
  )
  extra_reported_actions: int = _field(
    "Actions besides its target that each video reports (K; the paper's KAML run: 2).", 2
  )
  negative_keep_rate: float = _field(
    "Fraction of the rows whose feedbacks are all 0 kept in each split (1: keep all).", 1.0
  )
  sample_test_negatives: bool = _field(
    "Apply the negative sampling to the test split as well as to the train split.", True
  )
  play_time_features: bool = _field(
    "Keep play_time_ms, duration_ms and comment_stay_time as dense features (the paper "
    "drops them; they are measured after the exposure and leak the labels).",
    False,
  )
  allow_missing_users: bool = _field(
    "Accept log users absent from the user features (missing category, mean numeric "
    "values) instead of failing.",
    False,
  )
  test_fraction: float = _field("Share of the rows, latest first, in the test split.", 0.2)
  embedding_dim: int = _field("Embedding width written into the schema's sparse features.", 16)

  def __post_init__(self):
    object.__setattr__(self, "actions", tuple(self.actions))
    _validate_config(self)

  @property
  def num_actions(self) -> int:
    return len(self.actions)

  def to_dict(self) -> Dict[str, Any]:
    return configs.to_dict(self)

  @classmethod
  def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> "ConversionConfig":
    return configs.from_dict(cls, data, source)


def _validate_config(c: ConversionConfig) -> None:
  """Raises ValueError starting with the field name and quoting the bad value."""

  def check(ok: bool, name: str, what: str):
    if not ok:
      raise ValueError(f"{name}: {what}, got {getattr(c, name)!r}")

  def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)

  for name in ("log_path", "user_features_path"):
    check(
      isinstance(getattr(c, name), str) and bool(getattr(c, name)), name, "must be a non-empty path"
    )
  check(is_int(c.seed) and c.seed >= 0, "seed", "must be an integer >= 0")
  check(len(c.actions) >= 1, "actions", "needs at least one feedback")
  unknown = [a for a in c.actions if a not in FEEDBACK_COLUMNS]
  check(not unknown, "actions", f"unknown feedback(s) {unknown}; known: {list(FEEDBACK_COLUMNS)}")
  check(len(set(c.actions)) == len(c.actions), "actions", "must not repeat a feedback")
  check(
    is_int(c.extra_reported_actions) and 0 <= c.extra_reported_actions <= len(c.actions) - 1,
    "extra_reported_actions",
    f"must be an integer in [0, {len(c.actions) - 1}] (the actions besides the target)",
  )
  check(
    isinstance(c.negative_keep_rate, (int, float))
    and not isinstance(c.negative_keep_rate, bool)
    and 0 <= c.negative_keep_rate <= 1,
    "negative_keep_rate",
    "must be a number in [0, 1]",
  )
  check(
    isinstance(c.test_fraction, (int, float))
    and not isinstance(c.test_fraction, bool)
    and 0 < c.test_fraction < 1,
    "test_fraction",
    "must be a number in (0, 1)",
  )
  check(
    is_int(c.embedding_dim) and c.embedding_dim >= 1, "embedding_dim", "must be an integer >= 1"
  )
  for name in ("sample_test_negatives", "play_time_features", "allow_missing_users"):
    check(isinstance(getattr(c, name), bool), name, "must be true or false")


# --------------------------------------------------------------------------------------------
# Reading the inputs.
# --------------------------------------------------------------------------------------------


def _row_text(index: int) -> str:
  """Names data row `index` (0-based) as people count it: 1-based, and its line (header 1)."""
  return f"data row {index + 1} (line {index + 2})"


def _read_table(path: str, what: str, string_columns: Sequence[str] = ()) -> pa.Table:
  """Reads a delimited file with a header; tab-separated if its header line holds a tab."""
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


def _require_columns(table: pa.Table, names: Sequence[str], path: str, why: str) -> None:
  missing = [n for n in names if n not in table.column_names]
  if missing:
    raise ConversionError(
      f"{path}: missing column(s) {missing} ({why}); the file has {table.column_names}"
    )


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
      f"{path}: column {name!r}, {_row_text(i)}: expected an integer, got {column[i].as_py()!r}"
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
      f"{path}: column {name!r}, {_row_text(i)}: {what}, got "
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
  table = _read_table(path, "KuaiRand log", string_columns=needed)
  _require_columns(table, needed, path, "the conversion reads them")
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
  _dates_to_days(columns[DATE], path)
  return columns


def _parse_date(value: int) -> Optional[datetime.date]:
  try:
    return datetime.date(value // 10000, value // 100 % 100, value % 100)
  except ValueError:
    return None


def _dates_to_days(dates: np.ndarray, path: str) -> Tuple[np.ndarray, datetime.date]:
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
  table = _read_table(path, "user features")
  _require_columns(
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
      f"({_row_text(int(rows[0]))} and {_row_text(int(rows[1]))}); "
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
        f"{path}: column {name!r}, {_row_text(i)} (user_id "
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
      f"{users.path}: no row for user_id {log_user_ids[i]} of {log_path} {_row_text(i)}; "
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


# --------------------------------------------------------------------------------------------
# The protocol: per-video draws, the time split and the negative sampling.
# --------------------------------------------------------------------------------------------


def draw_reporting(
  video_ids: np.ndarray, num_actions: int, extra_reported: int, seed: int
) -> Tuple[np.ndarray, np.ndarray]:
  """Each video's target action and reported actions, from its own random stream.

  Video v takes a uniformly random order of the actions from `SeedSequence(seed,
  spawn_key=(0, v))`: the first is its target, the first 1 + `extra_reported` are reported.

  Args:
    video_ids: (videos,) int64 raw video ids (>= 0).
    num_actions: N.
    extra_reported: K, reported actions besides the target, in [0, N - 1].
    seed: The conversion seed.

  Returns:
    (target: (videos,) int64 in [0, N), reported: (videos, N) bool with 1 + K set per row,
    the target among them).
  """
  if not 0 <= extra_reported < num_actions:
    raise ValueError(f"extra_reported must be in [0, {num_actions - 1}], got {extra_reported}")
  target = np.zeros(len(video_ids), np.int64)
  reported = np.zeros((len(video_ids), num_actions), bool)
  for i, video in enumerate(np.asarray(video_ids).tolist()):
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_VIDEO_STREAM, video)))
    order = rng.permutation(num_actions)
    target[i] = order[0]
    reported[i, order[: 1 + extra_reported]] = True
  return target, reported


def split_by_time(time_ms: np.ndarray, test_fraction: float) -> Tuple[np.ndarray, int]:
  """The train / test split by timestamp (see "Split" in the module docstring).

  Args:
    time_ms: (rows,) int64 timestamps.
    test_fraction: Target share of test rows, in (0, 1).

  Returns:
    (is_test: (rows,) bool, the boundary t: test rows are those with time >= t).

  Raises:
    ConversionError: if a split would be empty (too few rows, or all at one timestamp).
  """
  n = time_ms.size
  cut = int(math.floor((1 - test_fraction) * n + 0.5))
  if cut >= n:
    raise ConversionError(f"test_fraction {test_fraction} of {n} row(s) leaves no test rows")
  boundary = int(np.sort(time_ms, kind="stable")[cut])
  is_test = time_ms >= boundary
  if is_test.all():
    raise ConversionError(
      f"no row is older than the split boundary time_ms {boundary}; the train split would be empty"
    )
  return is_test, boundary


def sample_negatives(
  all_zero: np.ndarray, keep_rate: float, rng: np.random.Generator
) -> np.ndarray:
  """Keeps every row with a positive and round(keep_rate * count) of the all-zero rows.

  Args:
    all_zero: (rows,) bool, rows whose labels are all 0.
    keep_rate: Fraction of them kept, in [0, 1]; the count is rounded half up.
    rng: Source of the uniform draw without replacement.

  Returns:
    (rows,) bool, the rows kept.
  """
  candidates = np.flatnonzero(all_zero)
  count = int(math.floor(keep_rate * candidates.size + 0.5))
  keep = ~all_zero
  keep[candidates[rng.choice(candidates.size, size=count, replace=False)]] = True
  return keep


def _moments(values: np.ndarray) -> Tuple[float, float]:
  """(mean, std) of the non-NaN values; std 1 when undefined or 0 (a constant feature)."""
  known = values[~np.isnan(values)]
  if known.size == 0:
    return 0.0, 1.0
  mean, std = float(known.mean()), float(known.std())
  return mean, std if std > 0 else 1.0


# --------------------------------------------------------------------------------------------
# The conversion.
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ConvertedLog:
  """The conversion's result in memory.

  Attributes:
    schema: The logs' schema (`has_true_labels=True`).
    splits: `TRAIN` / `TEST` -> record columns keyed like `schema.record_dtypes()`, each
      (rows,) in time order.
    source_rows: `TRAIN` / `TEST` -> (rows,) int64 index of each record's input log row.
    report: The data report (see `write_conversion`).
  """

  schema: schema_lib.Schema
  splits: Dict[str, Dict[str, np.ndarray]]
  source_rows: Dict[str, np.ndarray]
  report: Dict[str, Any]


def _ratio(numerator, denominator) -> Optional[float]:
  return float(numerator) / float(denominator) if denominator else None


def convert(config: ConversionConfig) -> ConvertedLog:
  """Converts the KuaiRand log of `config` in memory (see the module docstring).

  Raises:
    ConversionError: for malformed inputs (naming file, row and column), a log user missing
      from the user features (unless `allow_missing_users`), or an empty split.
  """
  log = read_log(config.log_path, config.actions, config.play_time_features)
  users = read_user_features(config.user_features_path)
  actions = config.actions
  n = log[USER_ID].size
  truth = np.stack([log[FEEDBACK_COLUMNS[a]] for a in actions], axis=1)  # (n, N)

  videos, video_row = np.unique(log[VIDEO_ID], return_inverse=True)
  video_row = video_row.reshape(-1)
  video_target, video_reported = draw_reporting(
    videos, config.num_actions, config.extra_reported_actions, config.seed
  )
  target = video_target[video_row]
  reported = video_reported[video_row]
  labels = truth * reported

  is_test, boundary = split_by_time(log[TIME_MS], config.test_fraction)
  all_zero = truth.sum(axis=1) == 0
  keep = np.ones(n, bool)
  for s, split in enumerate(SPLITS):
    if split == TEST and not config.sample_test_negatives:
      continue
    rows = np.flatnonzero(is_test == (split == TEST))
    rng = np.random.default_rng(
      np.random.SeedSequence(config.seed, spawn_key=(_NEGATIVE_STREAM, s))
    )
    keep[rows] = sample_negatives(all_zero[rows], config.negative_keep_rate, rng)

  user_values, user_row = np.unique(log[USER_ID], return_inverse=True)
  day, first_date = _dates_to_days(log[DATE], config.log_path)
  categorical, numeric, missing_user = join_users(
    users, log[USER_ID], config.log_path, config.allow_missing_users
  )
  dense = {name: np.log1p(values) for name, values in numeric.items()}
  if config.play_time_features:
    dense.update({name: np.log1p(log[name].astype(np.float64)) for name in PLAY_TIME_COLUMNS})
  ids = {
    USER_ID: user_row.reshape(-1).astype(np.int64) + 1,
    VIDEO_ID: video_row.astype(np.int64) + 1,
    HOUR: log[HOURMIN] // 100,
  }
  ids.update(categorical)
  buckets = {USER_ID: user_values.size + 1, VIDEO_ID: videos.size + 1, HOUR: HOURS_PER_DAY}
  buckets.update(users.num_buckets)

  order = np.argsort(log[TIME_MS], kind="stable")
  source_rows = {
    split: order[(is_test[order] == (split == TEST)) & keep[order]] for split in SPLITS
  }
  moments = {name: _moments(values[source_rows[TRAIN]]) for name, values in dense.items()}
  schema = schema_lib.Schema(
    actions=actions,
    sparse_features=tuple(
      schema_lib.SparseFeature(
        name=name, dtype="int64", num_buckets=buckets[name], embedding_dim=config.embedding_dim
      )
      for name in ids
    ),
    dense_features=tuple(
      schema_lib.DenseFeature(name=name, mean=mean, std=std)
      for name, (mean, std) in moments.items()
    ),
    has_true_labels=True,
  )

  splits = {}
  for split, rows in source_rows.items():
    columns = {
      schema_lib.AD_TASK_ID: log[VIDEO_ID][rows],
      schema_lib.TARGET_ACTION: target[rows],
      schema_lib.DAY: day[rows],
    }
    columns.update({name: values[rows] for name, values in ids.items()})
    for name, values in dense.items():
      # A missing value is written as the train mean, so it normalises to 0.
      columns[name] = np.where(np.isnan(values[rows]), moments[name][0], values[rows]).astype(
        np.float32
      )
    for j, action in enumerate(actions):
      columns[schema_lib.LABEL_PREFIX + action] = labels[rows, j]
    for j, action in enumerate(actions):
      columns[schema_lib.TRUE_LABEL_PREFIX + action] = truth[rows, j]
    splits[split] = columns

  split_of_row = np.where(is_test, TEST, TRAIN)
  report = {
    "actions": list(actions),
    "feedback_columns": {a: FEEDBACK_COLUMNS[a] for a in actions},
    "input": {
      "log_rows": n,
      "users": int(user_values.size),
      "videos": int(videos.size),
      "first_date": first_date.isoformat(),
      "last_date": (first_date + datetime.timedelta(days=int(day.max()))).isoformat(),
      "days": int(day.max()) + 1,
      "all_zero_rows": int(all_zero.sum()),
    },
    "user_features": {
      "users": int(users.user_ids.size),
      "categorical": list(users.categorical),
      "numeric": list(users.numeric),
      "missing_users": int(np.unique(log[USER_ID][missing_user]).size),
      "missing_user_rows": int(missing_user.sum()),
      "empty_numeric_values_on_log_rows": {
        name: int(np.isnan(values[~missing_user]).sum()) for name, values in numeric.items()
      },
    },
    "split": {
      "test_fraction": config.test_fraction,
      "boundary_time_ms": boundary,
      "train_last_time_ms": int(log[TIME_MS][~is_test].max()),
      "test_first_time_ms": int(log[TIME_MS][is_test].min()),
    },
    "negative_sampling": {
      "keep_rate": config.negative_keep_rate,
      **{
        split: {
          "sampled": split == TRAIN or config.sample_test_negatives,
          "all_zero_rows": int(np.sum(all_zero & (split_of_row == split))),
          "kept": int(np.sum(all_zero & keep & (split_of_row == split))),
          "dropped": int(np.sum(all_zero & ~keep & (split_of_row == split))),
        }
        for split in SPLITS
      },
    },
    "videos": {
      "count": int(videos.size),
      "reported_actions_per_video": 1 + config.extra_reported_actions,
      "target_share": {
        a: _ratio(np.sum(video_target == j), videos.size) for j, a in enumerate(actions)
      },
    },
    "splits": {},
  }
  all_rows = np.concatenate([source_rows[TRAIN], source_rows[TEST]])
  for split, rows in ((TRAIN, source_rows[TRAIN]), (TEST, source_rows[TEST]), (ALL, all_rows)):
    rows_in = n if split == ALL else int(np.sum(split_of_row == split))
    report["splits"][split] = _split_report(
      actions, rows_in, target[rows], reported[rows], truth[rows], labels[rows]
    )
  report["splits"][TRAIN]["adm_alpha1_share"] = _adm_share(
    actions,
    video_row[source_rows[TRAIN]],
    target[source_rows[TRAIN]],
    labels[source_rows[TRAIN]],
    videos.size,
  )
  return ConvertedLog(schema=schema, splits=splits, source_rows=source_rows, report=report)


def _split_report(
  actions: Sequence[str],
  rows_in: int,
  target: np.ndarray,
  reported: np.ndarray,
  truth: np.ndarray,
  labels: np.ndarray,
) -> Dict[str, Any]:
  """Per-action shares and rates of one split's output rows; None for an empty split."""
  rows = target.size
  on_target = target[:, None] == np.arange(len(actions))[None, :]
  return {
    "rows_in": rows_in,
    "rows": rows,
    "target_share": {a: _ratio(on_target[:, j].sum(), rows) for j, a in enumerate(actions)},
    "reporting_share": {a: _ratio(reported[:, j].sum(), rows) for j, a in enumerate(actions)},
    "true_positive_rate": {a: _ratio(truth[:, j].sum(), rows) for j, a in enumerate(actions)},
    "reported_positive_rate": {a: _ratio(labels[:, j].sum(), rows) for j, a in enumerate(actions)},
    "target_traffic_true_positive_rate": {
      a: _ratio(np.sum(truth[:, j] * on_target[:, j]), on_target[:, j].sum())
      for j, a in enumerate(actions)
    },
  }


def _adm_share(
  actions: Sequence[str],
  video_row: np.ndarray,
  target: np.ndarray,
  labels: np.ndarray,
  num_videos: int,
) -> Dict[str, Optional[float]]:
  """Share of rows ADM with alpha = 1 trains per action, counting over these rows' window.

  A row trains action j when j is its target or its video has >= 1 reported conversion of j
  among the rows (eq. 8 with the statistics of the whole train split).
  """
  counts = np.zeros((num_videos, len(actions)), np.int64)
  np.add.at(counts, video_row, labels)
  on_target = target[:, None] == np.arange(len(actions))[None, :]
  trained = on_target | (counts[video_row] >= 1)
  return {a: _ratio(trained[:, j].sum(), target.size) for j, a in enumerate(actions)}


def _percent(x: Optional[float]) -> str:
  return "-" if x is None else f"{100 * x:.2f}%"


def format_report(report: Mapping[str, Any]) -> str:
  """A markdown summary: rows per split and, per action, shares and positive rates."""
  splits = report["splits"]
  sampling = report["negative_sampling"]
  lines = [
    f"rows: train {splits[TRAIN]['rows']} of {splits[TRAIN]['rows_in']}, test "
    f"{splits[TEST]['rows']} of {splits[TEST]['rows_in']} (all-zero rows kept: train "
    f"{sampling[TRAIN]['kept']} of {sampling[TRAIN]['all_zero_rows']}, test "
    f"{sampling[TEST]['kept']} of {sampling[TEST]['all_zero_rows']})",
    "",
    "| action | target share | reporting share | true rate | reported rate | "
    "true rate on target traffic | ADM (alpha 1) share, train |",
    "|---|---|---|---|---|---|---|",
  ]
  everything = splits[ALL]
  for a in report["actions"]:
    cells = [
      a,
      _percent(everything["target_share"][a]),
      _percent(everything["reporting_share"][a]),
      _percent(everything["true_positive_rate"][a]),
      _percent(everything["reported_positive_rate"][a]),
      _percent(everything["target_traffic_true_positive_rate"][a]),
      _percent(splits[TRAIN]["adm_alpha1_share"][a]),
    ]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def write_conversion(
  config: ConversionConfig, output_dir: str, num_shards: int = 1, compression: str = ""
) -> Dict[str, Any]:
  """Converts and writes `schema.json`, train / test shards and `conversion.json`.

  Files: `<output_dir>/train-<shard>-of-<shards>.tfrecord[.gz]`, `test-...` (each split's rows in
  time order, spread over the shards in contiguous blocks), then `schema.json` and
  `conversion.json`, each written atomically.

  Args:
    config: The conversion.
    output_dir: Destination folder (created if missing).
    num_shards: Shards per split.
    compression: "" or "GZIP".

  Returns:
    The content of `conversion.json`: `config` (resolved), `output` (shard count,
    compression, schema fingerprint, file names) and `report` (rows in / out per split,
    per-action target, reporting and positive rates, negative sampling counts, the user join).

  Raises:
    ConversionError: for bad inputs (see `convert`).
    FileExistsError: if `output_dir` holds log shards this run would not overwrite.
  """
  if num_shards < 1:
    raise ValueError(f"num_shards must be >= 1, got {num_shards}")
  if compression not in ("", "GZIP"):
    raise ValueError(f"compression must be '' or 'GZIP', got {compression!r}")
  start_time = time.time()
  prefixes = {split: os.path.join(output_dir, split) for split in SPLITS}
  planned = {
    p for prefix in prefixes.values() for p in records.shard_paths(prefix, num_shards, compression)
  }
  stale = sorted(
    p
    for prefix in prefixes.values()
    for p in glob.glob(prefix + "-*.tfrecord*")
    if p not in planned
  )
  if stale:
    raise FileExistsError(
      f"{output_dir} already holds log shards of another run "
      f"({', '.join(os.path.basename(p) for p in stale)}); remove them or "
      "choose another output folder"
    )
  converted = convert(config)
  os.makedirs(output_dir, exist_ok=True)
  files: Dict[str, List[str]] = {}
  for split, columns in converted.splits.items():
    rows = len(columns[schema_lib.DAY])
    # One contiguous block of rows per shard (the writer rotates over shards per batch).
    files[split] = records.write_logs(
      converted.schema,
      prefixes[split],
      columns,
      num_shards=num_shards,
      compression=compression,
      batch_rows=max(1, math.ceil(rows / num_shards)),
    )
  # The schema and the report land after the shards: a crashed run leaves no new schema
  # next to old shards.
  converted.schema.save(schema_lib.schema_path(output_dir))
  summary = {
    "config": config.to_dict(),
    "output": {
      "num_shards": num_shards,
      "compression": compression.lower() or "none",
      "schema_fingerprint": converted.schema.fingerprint(),
      "train_files": [os.path.basename(p) for p in files[TRAIN]],
      "test_files": [os.path.basename(p) for p in files[TEST]],
    },
    "report": converted.report,
  }
  atomic.write_text(
    os.path.join(output_dir, REPORT_FILE), json.dumps(summary, indent=2, sort_keys=True) + "\n"
  )
  logging.info(
    "converted %s into %s in %.1f s\n%s",
    config.log_path,
    output_dir,
    time.time() - start_time,
    format_report(converted.report),
  )
  return summary
