"""The simulation's data report: per split, the shares and rates the config aims at.

Written into `simulation.json` (`report`): the actions, the configured target shares, the
expected reporting shares (`expected_reporting_share`) and, per split and over all rows, the
counts of `kaml_tf.datasets.report` (target groups include "other"); with
`report_delay_days`, the share of conversions still pending per action and day
(`delays.PendingCounter`); with `drift_day`, what changed on that day (`drift`).
"""

from typing import Any, Dict, Mapping, Optional

import numpy as np

from kaml_tf import schema as schema_lib
from kaml_tf.datasets import report as report_lib
from kaml_tf.datasets.simulation import delays
from kaml_tf.datasets.simulation import world as world_lib
from kaml_tf.datasets.simulation.config import ACTIONS
from kaml_tf.datasets.simulation.config import GROUP_NAMES
from kaml_tf.datasets.simulation.config import OTHER_GROUP
from kaml_tf.datasets.simulation.config import SimulationConfig


def expected_reporting_share(config: SimulationConfig) -> Dict[str, float]:
  """Per action, the expected share of samples whose ad task reports it (target or not)."""
  shares = config.target_shares
  return {
    a: shares[j]
    + (1 - shares[j]) * (config.report_complete_prob[j] + config.report_partial_prob[j])
    for j, a in enumerate(ACTIONS)
  }


class ReportCounter:
  """Builds the data report of one simulation from its chunks of rows."""

  def __init__(self, config: SimulationConfig, world: world_lib.World):
    self._config = config
    self._world = world
    self._counter = report_lib.SplitCounter(ACTIONS, GROUP_NAMES)
    self._pending = delays.PendingCounter(config) if config.report_delay_days else None

  def add(
    self, split: str, columns: Mapping[str, np.ndarray], pending: Optional[np.ndarray] = None
  ) -> None:
    """Counts a chunk of rows of `split` (columns keyed like the records, each (n,)).

    `pending`: the chunk's pending conversions (`delays.withhold`), with `report_delay_days`.
    """
    if self._pending is not None:
      self._pending.add(columns, pending)
    task = columns[schema_lib.AD_TASK_ID]
    target = columns[schema_lib.TARGET_ACTION]
    self._counter.add(
      split,
      group=np.where(target < 0, OTHER_GROUP, target),
      reporting=self._report_rate(columns)[task] > 0,
      truth=np.stack([columns[schema_lib.TRUE_LABEL_PREFIX + a] for a in ACTIONS], axis=1),
      labels=np.stack([columns[schema_lib.LABEL_PREFIX + a] for a in ACTIONS], axis=1),
    )

  def _report_rate(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """The (K, N) reporting rates of the chunk's day (a chunk holds one day)."""
    rate, drift = self._world.report_rate, self._world.drift
    if drift is None or not len(columns[schema_lib.DAY]):
      return rate
    return drift.report_rate(int(columns[schema_lib.DAY][0]), rate)

  def report(self) -> Dict[str, Any]:
    """The report of the rows counted so far (`report_delay`: only with delays)."""
    report = {
      "actions": list(ACTIONS),
      "configured_target_share": dict(zip(GROUP_NAMES, self._config.target_shares)),
      "expected_reporting_share": expected_reporting_share(self._config),
      "splits": self._counter.report(),
    }
    if self._pending is not None:
      report["report_delay"] = self._pending.report()
    if self._world.drift is not None:
      report["drift"] = self._world.drift.summary(self._world.report_rate)
    return report


def format_report(report: Mapping[str, Any]) -> str:
  """A markdown table of the whole data (`splits.all`) against the configured shares."""
  split = report["splits"][report_lib.ALL]
  percent = report_lib.percent
  rows = []
  for g in GROUP_NAMES:
    cells = [
      g,
      f"{percent(split['target_share'][g])} ({percent(report['configured_target_share'][g])})",
    ]
    if g in ACTIONS:
      cells.append(
        f"{percent(split['reporting_share'][g])} ({percent(report['expected_reporting_share'][g])})"
      )
      cells += report_lib.positive_rate_cells(split, g)
    else:
      cells += ["-"] * 4
    rows.append(cells)
  header = (
    "group",
    "target share (configured)",
    "reporting share (expected)",
    "true rate",
    "reported rate",
    "true rate on target traffic",
  )
  return "\n".join(report_lib.markdown_table(header, rows))
