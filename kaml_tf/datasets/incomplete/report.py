"""The protocol's data report: rows per split, groups, positives, the split and the days.

`build_report` gives the report `write_incomplete` puts in `incomplete.json`: `actions`,
`seed`; `input` (file, rows, groups, feature columns); `groups` (count, reported actions per
group, share of groups per target); `split` (by time or at random, the boundary);
`days` (the rule used and the days of each split); `negative_sampling`; `positives` (per split,
per action, the count of true and of reported positives); and `splits`, the counts of
`kaml_tf.datasets.report` per split and over all rows, each with its input rows (`rows_in`),
the train split also with `adm_alpha1_share`. `splits_report`, `sampling_report` and
`adm_share` serve the KuaiRand conversion's report too.
"""

from typing import Any, Dict, Mapping, Optional, Sequence

import numpy as np

from kaml_tf.datasets import output
from kaml_tf.datasets import report as report_lib
from kaml_tf.datasets.incomplete import draws
from kaml_tf.datasets.incomplete import split as split_lib

TRAIN, TEST, ALL = output.TRAIN, output.TEST, report_lib.ALL


def build_report(
  config: Any,
  feature_columns: Sequence[str],
  labels: draws.Labels,
  split: split_lib.Split,
  day: np.ndarray,
  days_rule: str,
) -> Dict[str, Any]:
  """The report of one conversion (see the module docstring).

  Args:
    config: The `IncompleteConfig`.
    feature_columns: The feature columns of the input.
    labels: The rows' labels.
    split: The split.
    day: (n,) int64 day of every input row.
    days_rule: How the days were made, in words.
  """
  actions = config.labels
  split_of_row = split.split_of_row()
  return {
    "actions": list(actions),
    "seed": config.seed,
    "input": {
      "path": config.input_path,
      "rows": int(split_of_row.size),
      "groups": int(labels.groups.size),
      "feature_columns": list(feature_columns),
    },
    "groups": group_report(actions, labels, 1 + config.reported_extra),
    "split": {
      "by": "time" if config.time else "random",
      "test_fraction": config.test_fraction,
      "boundary": split.boundary,
    },
    "days": {
      "rule": days_rule,
      **{f"{name}_days": _span(day[split.source_rows[name]]) for name in output.SPLITS},
    },
    "negative_sampling": sampling_report(config.negative_keep_rate, True, split),
    "positives": positives(actions, labels, split),
    "splits": splits_report(actions, labels, split),
  }


def _span(days: np.ndarray) -> Optional[list]:
  return [int(days.min()), int(days.max())] if days.size else None


def group_report(actions: Sequence[str], labels: draws.Labels, reported: int) -> Dict[str, Any]:
  """The groups: count, reported actions per group, share of groups per target action."""
  return {
    "count": int(labels.groups.size),
    "reported_actions_per_group": reported,
    "target_share": {
      a: report_lib.ratio(np.sum(labels.group_target == j), labels.groups.size)
      for j, a in enumerate(actions)
    },
  }


def positives(
  actions: Sequence[str], labels: draws.Labels, split: split_lib.Split
) -> Dict[str, Dict[str, Dict[str, int]]]:
  """Per split: action -> {"true": complete positives, "reported": reported positives}."""
  out = {}
  for name, rows in split.source_rows.items():
    true, reported = labels.truth[rows].sum(axis=0), labels.labels[rows].sum(axis=0)
    out[name] = {
      a: {"true": int(true[j]), "reported": int(reported[j])} for j, a in enumerate(actions)
    }
  return out


def sampling_report(keep_rate: float, sample_test: bool, split: split_lib.Split) -> Dict[str, Any]:
  """The negative sampling: the rate, and per split the all-zero rows kept and dropped."""
  split_of_row = split.split_of_row()
  out: Dict[str, Any] = {"keep_rate": keep_rate}
  for name in output.SPLITS:
    zero = split.all_zero & (split_of_row == name)
    out[name] = {
      "sampled": name == TRAIN or sample_test,
      "all_zero_rows": int(np.sum(zero)),
      "kept": int(np.sum(zero & split.keep)),
      "dropped": int(np.sum(zero & ~split.keep)),
    }
  return out


def splits_report(
  actions: Sequence[str], labels: draws.Labels, split: split_lib.Split
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
    actions, labels.group_row[train], labels.target[train], labels.labels[train], labels.groups.size
  )
  return splits


def adm_share(
  actions: Sequence[str],
  group_row: np.ndarray,
  target: np.ndarray,
  labels: np.ndarray,
  num_groups: int,
) -> Dict[str, Optional[float]]:
  """Share of rows ADM with alpha = 1 trains per action, counting over these rows' window.

  A row trains action j when j is its target or its group has >= 1 reported conversion of j
  among the rows (eq. 8 with the statistics of the whole train split).

  Args:
    actions: The N action names.
    group_row: (rows,) int64 group index of each row, in [0, num_groups).
    target: (rows,) int64 target action of each row.
    labels: (rows, N) 0/1 reported labels.
    num_groups: G.
  """
  counts = np.zeros((num_groups, len(actions)), np.int64)
  np.add.at(counts, group_row, labels)
  on_target = target[:, None] == np.arange(len(actions))[None, :]
  trained = on_target | (counts[group_row] >= 1)
  return {a: report_lib.ratio(trained[:, j].sum(), target.size) for j, a in enumerate(actions)}


def format_report(report: Mapping[str, Any]) -> str:
  """A markdown summary: rows per split, the days, and per action positives and shares."""
  splits, positive = report["splits"], report["positives"]
  percent = report_lib.percent
  header = (
    "action",
    "target share (groups)",
    "true positives train / test",
    "reported positives train / test",
    "ADM (alpha 1) share, train",
  )
  rows = [
    [
      a,
      percent(report["groups"]["target_share"][a]),
      f"{positive[TRAIN][a]['true']} / {positive[TEST][a]['true']}",
      f"{positive[TRAIN][a]['reported']} / {positive[TEST][a]['reported']}",
      percent(splits[TRAIN]["adm_alpha1_share"][a]),
    ]
    for a in report["actions"]
  ]
  summary = (
    f"rows: train {splits[TRAIN]['rows']} of {splits[TRAIN]['rows_in']}, test "
    f"{splits[TEST]['rows']} of {splits[TEST]['rows_in']}; {report['groups']['count']} groups; "
    f"split by {report['split']['by']}, seed {report['seed']}\ndays: {report['days']['rule']}"
  )
  return "\n".join([summary, ""] + report_lib.markdown_table(header, rows))
