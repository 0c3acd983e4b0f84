"""The conversion's data report: what was read, split, sampled and written.

Written into `conversion.json` (`report`): the actions and their feedback columns; `input`
(rows, users, videos, dates, all-zero rows); `user_features` (the join); `split` (the
boundary); `negative_sampling` (per split: all-zero rows kept and dropped); `videos` (targets
drawn); and `splits`, the counts of `kaml_tf.datasets.report` per split and over all rows, each
with its input rows (`rows_in`), the train split also with `adm_alpha1_share`.
"""

import datetime
from typing import Any, Dict, Mapping, Optional, Sequence

import numpy as np

from kaml_tf.datasets import output
from kaml_tf.datasets import report as report_lib
from kaml_tf.datasets.kuairand import features as features_lib
from kaml_tf.datasets.kuairand import protocol
from kaml_tf.datasets.kuairand import reading
from kaml_tf.datasets.kuairand.config import FEEDBACK_COLUMNS
from kaml_tf.datasets.kuairand.config import ConversionConfig

TRAIN, TEST, ALL = output.TRAIN, output.TEST, report_lib.ALL


def build_report(
  config: ConversionConfig,
  log: Mapping[str, np.ndarray],
  users: reading.UserFeatures,
  labels: protocol.Labels,
  split: protocol.Split,
  features: features_lib.Features,
) -> Dict[str, Any]:
  """The report of one conversion, from its steps' results (see the module docstring)."""
  return {
    "actions": list(config.actions),
    "feedback_columns": {a: FEEDBACK_COLUMNS[a] for a in config.actions},
    "input": _input_report(log, labels, split, features),
    "user_features": _user_report(log, users, features),
    "split": {
      "test_fraction": config.test_fraction,
      "boundary_time_ms": split.boundary_time_ms,
      "train_last_time_ms": int(log[reading.TIME_MS][~split.is_test].max()),
      "test_first_time_ms": int(log[reading.TIME_MS][split.is_test].min()),
    },
    "negative_sampling": _sampling_report(config, split),
    "videos": {
      "count": int(labels.videos.size),
      "reported_actions_per_video": 1 + config.extra_reported_actions,
      "target_share": {
        a: report_lib.ratio(np.sum(labels.video_target == j), labels.videos.size)
        for j, a in enumerate(config.actions)
      },
    },
    "splits": _splits_report(config.actions, labels, split),
  }


def _input_report(
  log: Mapping[str, np.ndarray],
  labels: protocol.Labels,
  split: protocol.Split,
  features: features_lib.Features,
) -> Dict[str, Any]:
  days = int(features.day.max()) + 1
  return {
    "log_rows": int(log[reading.USER_ID].size),
    "users": features.num_users,
    "videos": int(labels.videos.size),
    "first_date": features.first_date.isoformat(),
    "last_date": (features.first_date + datetime.timedelta(days=days - 1)).isoformat(),
    "days": days,
    "all_zero_rows": int(split.all_zero.sum()),
  }


def _user_report(
  log: Mapping[str, np.ndarray], users: reading.UserFeatures, features: features_lib.Features
) -> Dict[str, Any]:
  missing = features.missing_user
  return {
    "users": int(users.user_ids.size),
    "categorical": list(users.categorical),
    "numeric": list(users.numeric),
    "missing_users": int(np.unique(log[reading.USER_ID][missing]).size),
    "missing_user_rows": int(missing.sum()),
    "empty_numeric_values_on_log_rows": {
      name: int(np.isnan(values[~missing]).sum()) for name, values in features.user_numeric.items()
    },
  }


def _sampling_report(config: ConversionConfig, split: protocol.Split) -> Dict[str, Any]:
  split_of_row = split.split_of_row()
  out: Dict[str, Any] = {"keep_rate": config.negative_keep_rate}
  for name in output.SPLITS:
    zero = split.all_zero & (split_of_row == name)
    out[name] = {
      "sampled": name == TRAIN or config.sample_test_negatives,
      "all_zero_rows": int(np.sum(zero)),
      "kept": int(np.sum(zero & split.keep)),
      "dropped": int(np.sum(zero & ~split.keep)),
    }
  return out


def _splits_report(
  actions: Sequence[str], labels: protocol.Labels, split: protocol.Split
) -> Dict[str, Dict[str, Any]]:
  """Per split and over all rows: the shared counts of the output rows, and the input rows."""
  counter = report_lib.SplitCounter(actions, actions)
  for name, rows in split.source_rows.items():
    counter.add(
      name,
      group=labels.target[rows],
      reporting=labels.reported[rows],
      truth=labels.truth[rows],
      labels=labels.labels[rows],
    )
  splits = counter.report()
  split_of_row = split.split_of_row()
  for name in output.SPLITS:
    splits[name]["rows_in"] = int(np.sum(split_of_row == name))
  splits[ALL]["rows_in"] = int(split_of_row.size)
  train = split.source_rows[TRAIN]
  splits[TRAIN]["adm_alpha1_share"] = adm_share(
    actions, labels.video_row[train], labels.target[train], labels.labels[train], labels.videos.size
  )
  return splits


def adm_share(
  actions: Sequence[str],
  video_row: np.ndarray,
  target: np.ndarray,
  labels: np.ndarray,
  num_videos: int,
) -> Dict[str, Optional[float]]:
  """Share of rows ADM with alpha = 1 trains per action, counting over these rows' window.

  A row trains action j when j is its target or its video has >= 1 reported conversion of j
  among the rows (eq. 8 with the statistics of the whole train split).

  Args:
    actions: The N action names.
    video_row: (rows,) int64 video index of each row, in [0, num_videos).
    target: (rows,) int64 target action of each row.
    labels: (rows, N) 0/1 reported labels.
    num_videos: V.
  """
  counts = np.zeros((num_videos, len(actions)), np.int64)
  np.add.at(counts, video_row, labels)
  on_target = target[:, None] == np.arange(len(actions))[None, :]
  trained = on_target | (counts[video_row] >= 1)
  return {a: report_lib.ratio(trained[:, j].sum(), target.size) for j, a in enumerate(actions)}


def format_report(report: Mapping[str, Any]) -> str:
  """A markdown summary: rows per split and, per action, shares and positive rates."""
  splits = report["splits"]
  sampling = report["negative_sampling"]
  percent = report_lib.percent
  everything = splits[ALL]
  rows = [
    [
      a,
      percent(everything["target_share"][a]),
      percent(everything["reporting_share"][a]),
      *report_lib.positive_rate_cells(everything, a),
      percent(splits[TRAIN]["adm_alpha1_share"][a]),
    ]
    for a in report["actions"]
  ]
  header = (
    "action",
    "target share",
    "reporting share",
    "true rate",
    "reported rate",
    "true rate on target traffic",
    "ADM (alpha 1) share, train",
  )
  summary = (
    f"rows: train {splits[TRAIN]['rows']} of {splits[TRAIN]['rows_in']}, test "
    f"{splits[TEST]['rows']} of {splits[TEST]['rows_in']} (all-zero rows kept: train "
    f"{sampling[TRAIN]['kept']} of {sampling[TRAIN]['all_zero_rows']}, test "
    f"{sampling[TEST]['kept']} of {sampling[TEST]['all_zero_rows']})"
  )
  return "\n".join([summary, ""] + report_lib.markdown_table(header, rows))
