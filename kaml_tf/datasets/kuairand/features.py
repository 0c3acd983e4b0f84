"""The features of the converted rows: sparse ids, dense values, days, and the schema.

See "Features" and "Days" in `conversion`: `user_id` and `video_id` become 1 + the rank of the
raw id, `hour` the log's hour of day, the user file's categorical columns ids of their sorted
values (0 missing) and its numeric columns (and, if asked, the play times) dense log(1 + x)
values normalised with the train split's moments.
"""

import dataclasses
import datetime
from typing import Dict, Mapping, Sequence, Tuple

import numpy as np

from kaml_tf import schema as schema_lib
from kaml_tf.datasets.kuairand import reading

HOUR = "hour"


@dataclasses.dataclass(frozen=True)
class Features:
  """The features of the n input log rows.

  Attributes:
    ids: Sparse feature -> (n,) int64 ids, in schema order.
    num_buckets: Sparse feature -> its number of ids.
    dense: Dense feature -> (n,) float64 log(1 + x), NaN where the value is missing.
    day: (n,) int64 days since `first_date`.
    first_date: The earliest date of the log.
    num_users: Distinct users of the log.
    missing_user: (n,) bool, the rows whose user is absent from the user features.
    user_numeric: Numeric user column -> (n,) float64 raw value, NaN where missing.
  """

  ids: Dict[str, np.ndarray]
  num_buckets: Dict[str, int]
  dense: Dict[str, np.ndarray]
  day: np.ndarray
  first_date: datetime.date
  num_users: int
  missing_user: np.ndarray
  user_numeric: Dict[str, np.ndarray]


def build_features(
  log: Mapping[str, np.ndarray],
  users: reading.UserFeatures,
  log_path: str,
  play_time_features: bool = False,
  allow_missing_users: bool = False,
) -> Features:
  """The features of every log row (`reading.read_log` columns) joined with its user's.

  Raises:
    ConversionError: for a log user absent from `users`, unless `allow_missing_users`.
  """
  user_values, user_row = np.unique(log[reading.USER_ID], return_inverse=True)
  video_values, video_row = np.unique(log[reading.VIDEO_ID], return_inverse=True)
  day, first_date = reading.dates_to_days(log[reading.DATE], log_path)
  categorical, numeric, missing_user = reading.join_users(
    users, log[reading.USER_ID], log_path, allow_missing_users
  )
  dense = {name: np.log1p(values) for name, values in numeric.items()}
  if play_time_features:
    dense.update(
      {name: np.log1p(log[name].astype(np.float64)) for name in reading.PLAY_TIME_COLUMNS}
    )
  ids = {
    reading.USER_ID: user_row.reshape(-1).astype(np.int64) + 1,
    reading.VIDEO_ID: video_row.reshape(-1).astype(np.int64) + 1,
    HOUR: log[reading.HOURMIN] // 100,
  }
  ids.update(categorical)
  buckets = {
    reading.USER_ID: user_values.size + 1,
    reading.VIDEO_ID: video_values.size + 1,
    HOUR: reading.HOURS_PER_DAY,
  }
  buckets.update(users.num_buckets)
  return Features(
    ids=ids,
    num_buckets=buckets,
    dense=dense,
    day=day,
    first_date=first_date,
    num_users=int(user_values.size),
    missing_user=missing_user,
    user_numeric=numeric,
  )


def moments(values: np.ndarray) -> Tuple[float, float]:
  """(mean, std) of the non-NaN values; std 1 when undefined or 0 (a constant feature)."""
  known = values[~np.isnan(values)]
  if known.size == 0:
    return 0.0, 1.0
  mean, std = float(known.mean()), float(known.std())
  return mean, std if std > 0 else 1.0


def dense_moments(features: Features, train_rows: np.ndarray) -> Dict[str, Tuple[float, float]]:
  """(mean, std) of every dense feature over the train split's rows (`train_rows`, (rows,))."""
  return {name: moments(values[train_rows]) for name, values in features.dense.items()}


def build_schema(
  actions: Sequence[str],
  features: Features,
  dense_moments: Mapping[str, Tuple[float, float]],
  embedding_dim: int,
) -> schema_lib.Schema:
  """The logs' schema: vocabulary-free sparse ids, normalised dense features, true labels."""
  return schema_lib.Schema(
    actions=tuple(actions),
    sparse_features=tuple(
      schema_lib.SparseFeature(
        name=name,
        dtype="int64",
        num_buckets=features.num_buckets[name],
        embedding_dim=embedding_dim,
      )
      for name in features.ids
    ),
    dense_features=tuple(
      schema_lib.DenseFeature(name=name, mean=mean, std=std)
      for name, (mean, std) in dense_moments.items()
    ),
    has_true_labels=True,
  )


def feature_columns(
  features: Features, rows: np.ndarray, dense_moments: Mapping[str, Tuple[float, float]]
) -> Dict[str, np.ndarray]:
  """The feature columns of `rows` ((rows,) indices): ids, then float32 dense values.

  A missing dense value is written as the train mean, so it normalises to 0.
  """
  columns = {name: values[rows] for name, values in features.ids.items()}
  for name, values in features.dense.items():
    columns[name] = np.where(np.isnan(values[rows]), dense_moments[name][0], values[rows]).astype(
      np.float32
    )
  return columns
