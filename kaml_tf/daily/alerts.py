"""Alerts of the day report: what a person should look at even when the day finished.

The gate compares candidate and production on the same day, so a day whose labels are broken
(an upstream job that shuffled or dropped conversions) makes both look bad and the comparison
says nothing. What does show it is production's own AUC: the model served since the previous
run day, scored on the newest complete day, far below what it scored when it was last
evaluated. `auc_drop` raises that alert; it changes no decision.
"""

from typing import Any, Dict, List, Mapping, Optional


def served_auc(report: Mapping[str, Any]) -> Optional[float]:
  """AUC, on its evaluation day, of the model a finished day left in production (or None)."""
  evaluation = report["evaluation"]
  served = evaluation["candidate"] if report["promoted"] else evaluation["production"]
  return None if served is None else served["auc"]


def auc_drop(
  previous: Optional[Mapping[str, Any]],
  production: Optional[Dict[str, Any]],
  eval_day: int,
  threshold: float,
) -> List[str]:
  """The alert when production's AUC fell by more than `threshold` since its last evaluation.

  Args:
    previous: The day report of the latest earlier finished run day, or None.
    production: {"auc", ...} of production on `eval_day` (None: nothing serves yet).
    eval_day: The day production was just scored on.
    threshold: The drop that alerts; 0 turns the alert off.

  Returns:
    One message, or none.
  """
  if not threshold or previous is None or production is None:
    return []
  before, now = served_auc(previous), production["auc"]
  if before is None or now is None or before - now <= threshold:
    return []
  return [
    f"production's AUC fell from {before:.4f} (day {previous['plan']['eval_day']}) to "
    f"{now:.4f} on day {eval_day}, more than {threshold}: check day {eval_day}'s logs and "
    "labels (the gate's comparison on that day means little if they are broken)"
  ]
