"""The part of the data report both datasets share: per split, shares and positive rates.

A split's report holds, over its rows: `rows`; `target_share` per target group (the share of
rows whose ad task targets it); per action, `reporting_share` (rows whose ad task reports the
action), `true_positive_rate` and `reported_positive_rate` (the complete and the reported
labels), and `target_traffic_true_positive_rate` (the true rate on the rows targeting the
action). A rate over no rows is None.
"""

from typing import Any, Dict, List, Optional, Sequence

import numpy as np

ALL = "all"  # The report of every row, whatever its split.
ROWS = "rows"
TARGET_SHARE = "target_share"
REPORTING_SHARE = "reporting_share"
TRUE_POSITIVE_RATE = "true_positive_rate"
REPORTED_POSITIVE_RATE = "reported_positive_rate"
TARGET_TRAFFIC_TRUE_POSITIVE_RATE = "target_traffic_true_positive_rate"
# The per-action positive rates, in the order the markdown tables show them.
POSITIVE_RATES = (
  TRUE_POSITIVE_RATE,
  REPORTED_POSITIVE_RATE,
  TARGET_TRAFFIC_TRUE_POSITIVE_RATE,
)


def ratio(numerator, denominator) -> Optional[float]:
  """`numerator / denominator` as a float; None when the denominator is 0 (nothing to rate)."""
  return float(numerator) / float(denominator) if denominator else None


def percent(x: Optional[float]) -> str:
  """A share as a percentage with two decimals ("12.50%"); "-" for None."""
  return "-" if x is None else f"{100 * x:.2f}%"


class SplitCounter:
  """Accumulates, per split and over all splits, the counts behind the split reports.

  Rows may come in any number of batches (chunks of a split, or a whole split at once): the
  report depends only on the sums.

  Args:
    actions: The N action names.
    groups: The G >= N target group names: group j < N targets action j; any further group
      (the simulation's "other") targets none of them.
  """

  def __init__(self, actions: Sequence[str], groups: Sequence[str]):
    if tuple(groups[: len(actions)]) != tuple(actions):
      raise ValueError(f"groups must start with the actions {list(actions)}, got {list(groups)}")
    self._actions = tuple(actions)
    self._groups = tuple(groups)
    self._counts: Dict[str, Dict[str, np.ndarray]] = {}

  def add(
    self,
    split: str,
    group: np.ndarray,
    reporting: np.ndarray,
    truth: np.ndarray,
    labels: np.ndarray,
  ) -> None:
    """Counts a batch of rows of `split` (and of `ALL`).

    Args:
      split: The split the rows belong to.
      group: (n,) int target group of each row, in [0, G).
      reporting: (n, N) bool, whether the row's ad task reports each action.
      truth: (n, N) 0/1 complete labels.
      labels: (n, N) 0/1 reported labels.
    """
    num_actions = len(self._actions)
    on_target = group[:, None] == np.arange(num_actions)[None, :]
    batch = {
      "rows": np.array(group.size),
      "target": np.bincount(group, minlength=len(self._groups)),
      "reporting": np.sum(reporting, axis=0),
      "true": np.sum(truth, axis=0),
      "reported": np.sum(labels, axis=0),
      "target_true": np.sum(truth * on_target, axis=0),
    }
    for key in (split, ALL):
      counts = self._counts.setdefault(key, {k: np.zeros_like(v) for k, v in batch.items()})
      for k, v in batch.items():
        counts[k] = counts[k] + v

  def report(self) -> Dict[str, Dict[str, Any]]:
    """Split name (and `ALL`) -> its report (see the module docstring)."""
    return {split: self._split_report(counts) for split, counts in self._counts.items()}

  def _split_report(self, counts: Dict[str, np.ndarray]) -> Dict[str, Any]:
    rows = int(counts["rows"])

    def per_action(key: str) -> Dict[str, Optional[float]]:
      return {a: ratio(counts[key][j], rows) for j, a in enumerate(self._actions)}

    return {
      ROWS: rows,
      TARGET_SHARE: {g: ratio(counts["target"][i], rows) for i, g in enumerate(self._groups)},
      REPORTING_SHARE: per_action("reporting"),
      TRUE_POSITIVE_RATE: per_action("true"),
      REPORTED_POSITIVE_RATE: per_action("reported"),
      TARGET_TRAFFIC_TRUE_POSITIVE_RATE: {
        a: ratio(counts["target_true"][j], counts["target"][j]) for j, a in enumerate(self._actions)
      },
    }


def positive_rate_cells(split: Dict[str, Any], action: str) -> List[str]:
  """The `POSITIVE_RATES` of `action` in a split's report, as percentages."""
  return [percent(split[key][action]) for key in POSITIVE_RATES]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> List[str]:
  """The lines of a markdown table: the header, its rule, then one line per row."""
  lines = [_markdown_row(header), "|" + "---|" * len(header)]
  return lines + [_markdown_row(cells) for cells in rows]


def _markdown_row(cells: Sequence[str]) -> str:
  return "| " + " | ".join(cells) + " |"
