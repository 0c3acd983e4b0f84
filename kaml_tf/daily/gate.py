"""The promotion gate: the candidate may be slightly worse than production, never more."""

import dataclasses
import math
from typing import List, Mapping, Optional


@dataclasses.dataclass(frozen=True)
class Decision:
  """Whether to promote, and why (one reason per comparison)."""

  promote: bool
  reasons: List[str]


def decide(
  candidate: Mapping[str, float],
  production: Optional[Mapping[str, float]],
  auc_tolerance: float,
  logloss_tolerance: float,
) -> Decision:
  """Compares overall per-target AUC and LogLoss of the candidate and production.

  Args:
    candidate: {"auc", "logloss"} of the candidate on the evaluation day.
    production: The same of production, or None when nothing serves yet.
    auc_tolerance: How far below production's AUC the candidate's may be.
    logloss_tolerance: How far above production's LogLoss the candidate's may be.

  Returns:
    Promote when there is no production, or neither metric is worse beyond its tolerance.
    An undefined (NaN) candidate metric blocks; an undefined production one does not.
  """
  if production is None:
    return Decision(True, ["no production model yet"])
  reasons, promote = [], True
  checks = (
    ("auc", production["auc"] - candidate["auc"], auc_tolerance, "lower"),
    ("logloss", candidate["logloss"] - production["logloss"], logloss_tolerance, "higher"),
  )
  for name, worse_by, tolerance, direction in checks:
    if math.isnan(candidate[name]):
      promote = False
      reasons.append(f"candidate {name} is undefined")
    elif math.isnan(worse_by) or worse_by <= tolerance:
      reasons.append(
        f"{name} {candidate[name]:.4f} vs production {production[name]:.4f}: within "
        f"tolerance {tolerance}"
      )
    else:
      promote = False
      reasons.append(
        f"{name} {candidate[name]:.4f} is {worse_by:.4f} {direction} than production's "
        f"{production[name]:.4f} (tolerance {tolerance})"
      )
  return Decision(promote, reasons)
