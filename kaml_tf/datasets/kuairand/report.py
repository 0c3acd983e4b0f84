"""The conversion's data report: what was read, split, sampled and written.

Written into `conversion.json` (`report`): the actions and their feedback columns; `input`
(rows, users, videos, dates, all-zero rows); `user_features` (the join); `split` (the
boundary); `negative_sampling` (per split: all-zero rows kept and dropped); `videos` (targets
drawn); and `splits`, the counts of `kaml_tf.datasets.report` per split and over all rows, each
with its input rows (`rows_in`), the train split also with `adm_alpha1_share`.
"""

import datetime
from typing import Any, Dict, Mapping

import numpy as np

from kaml_tf.datasets import output
from kaml_tf.datasets import report as report_lib
from kaml_tf.datasets.incomplete import draws
from kaml_tf.datasets.incomplete import report as incomplete_report
from kaml_tf.datasets.incomplete import split as split_lib
from kaml_tf.datasets.kuairand import features as features_lib
from kaml_tf.datasets.kuairand import reading
from kaml_tf.datasets.kuairand.config import FEEDBACK_COLUMNS
from kaml_tf.datasets.kuairand.config import ConversionConfig

TRAIN, TEST, ALL = output.TRAIN, output.TEST, report_lib.ALL


def build_report(
  config: ConversionConfig,
  log: Mapping[str, np.ndarray],
  users: reading.UserFeatures,
  labels: draws.Labels,
  split: split_lib.Split,
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
      "boundary_time_ms": split.boundary,
      "train_last_time_ms": int(log[reading.TIME_MS][~split.is_test].max()),
      "test_first_time_ms": int(log[reading.TIME_MS][split.is_test].min()),
    },
    "negative_sampling": incomplete_report.sampling_report(
      config.negative_keep_rate, config.sample_test_negatives, split
    ),
    "videos": _video_report(config, labels),
    "splits": incomplete_report.splits_report(config.actions, labels, split),
  }


def _video_report(config: ConversionConfig, labels: draws.Labels) -> Dict[str, Any]:
  groups = incomplete_report.group_report(config.actions, labels, 1 + config.extra_reported_actions)
  return {
    "count": groups["count"],
    "reported_actions_per_video": groups["reported_actions_per_group"],
    "target_share": groups["target_share"],
  }


def _input_report(
  log: Mapping[str, np.ndarray],
  labels: draws.Labels,
  split: split_lib.Split,
  features: features_lib.Features,
) -> Dict[str, Any]:
  days = int(features.day.max()) + 1
  return {
    "log_rows": int(log[reading.USER_ID].size),
    "users": features.num_users,
    "videos": int(labels.groups.size),
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
