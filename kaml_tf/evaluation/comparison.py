"""Compares configurations on one test set: per-seed metrics, seed spread, paired intervals.

A configuration is one or more trained runs (one per seed). Each run's test predictions are
scored with the paper's per-target metrics (`metrics.per_target_metrics`), both as served
(calibrated when the run was calibrated) and raw (sigmoid of the logits). Every configuration
other than the reference gets the paired bootstrap interval (`bootstrap.paired_differences`)
of its difference to the reference, seed r paired with seed r.
"""

import dataclasses
import math
from typing import Any, Dict, List, Mapping, Sequence

import numpy as np

from kaml_tf.evaluation import bootstrap
from kaml_tf.evaluation import metrics as metrics_lib

SERVED = "served"
RAW = "raw"
VIEWS = (SERVED, RAW)
METRICS = ("auc", "logloss")


@dataclasses.dataclass
class Configuration:
  """The runs of one configuration on the test rows.

  Attributes:
    name: Row label.
    model_dirs: One model directory per seed.
    served: Per run, (n, N) probabilities as served (calibrated if the run is).
    raw: Per run, (n, N) sigmoid(logits).
    calibrated: Per run, whether a calibration was applied.
  """

  name: str
  model_dirs: List[str]
  served: List[np.ndarray]
  raw: List[np.ndarray]
  calibrated: List[bool]


def _spread(values: Sequence[float]) -> Dict[str, Any]:
  values = [v for v in values if not math.isnan(v)]
  if not values:
    return {"mean": float("nan"), "std": float("nan"), "runs": 0}
  return {
    "mean": float(np.mean(values)),
    "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
    "runs": len(values),
  }


def _metrics(probs: Sequence[np.ndarray], labels, target, actions) -> Dict[str, Any]:
  per_run = [metrics_lib.per_target_metrics(p, labels, target, actions) for p in probs]
  out = {}
  for block in list(actions) + ["overall"]:
    pick = (
      (lambda m, b=block: m["overall"])
      if block == "overall"
      else (lambda m, b=block: m["actions"][b])
    )
    out[block] = {metric: _spread([pick(m)[metric] for m in per_run]) for metric in METRICS}
    out[block]["count"] = pick(per_run[0])["count"]
    out[block]["positives"] = pick(per_run[0])["positives"]
  return out


def compare(
  labels: np.ndarray,
  target_action: np.ndarray,
  configurations: Sequence[Configuration],
  reference: str,
  actions: Sequence[str],
  num_resamples: int = 1000,
  seed: int = 0,
) -> Dict[str, Any]:
  """Metrics of every configuration and its paired intervals against `reference`.

  Args:
    labels: (n, N) reported test labels.
    target_action: (n,) test targets.
    configurations: The configurations, each with the same number of runs as the reference.
    reference: Name of the configuration the others are compared to.
    actions: The N action names.
    num_resamples: Bootstrap resamples.
    seed: Bootstrap seed.

  Returns:
    `{"actions", "reference", "resamples", "configurations": {name: {"model_dirs",
    "calibrated", "served" | "raw": {block: {"auc" | "logloss": {"mean", "std", "runs"},
    "count", "positives"}}, "versus_reference": {"served" | "raw": {block: {metric:
    interval}}}}}}`.
  """
  by_name = {c.name: c for c in configurations}
  if reference not in by_name:
    raise ValueError(f"reference {reference!r} is not one of {sorted(by_name)}")
  ref = by_name[reference]
  out: Dict[str, Any] = {
    "actions": list(actions),
    "reference": reference,
    "resamples": num_resamples,
    "configurations": {},
  }
  for config in configurations:
    entry = {"model_dirs": config.model_dirs, "calibrated": config.calibrated}
    for view in VIEWS:
      entry[view] = _metrics(getattr(config, view), labels, target_action, actions)
    if config.name != reference:
      entry["versus_reference"] = {
        view: bootstrap.paired_differences(
          labels,
          target_action,
          getattr(ref, view),
          getattr(config, view),
          actions,
          num_resamples,
          seed,
        )
        for view in VIEWS
      }
    out["configurations"][config.name] = entry
  return out


def _mean_std(cell: Mapping[str, Any]) -> str:
  if cell["runs"] == 0:
    return "-"
  return f"{cell['mean']:.4f} ± {cell['std']:.4f}" if cell["runs"] > 1 else f"{cell['mean']:.4f}"


def _interval(cell: Mapping[str, Any]) -> str:
  if math.isnan(cell["difference"]):
    return "-"
  return f"{cell['difference']:+.4f} [{cell['low']:+.4f}, {cell['high']:+.4f}]"


def format_markdown(result: Mapping[str, Any], view: str = SERVED) -> str:
  """Tables of AUC and LogLoss (mean ± std over seeds) and of the differences (95% CI)."""
  blocks = list(result["actions"]) + ["overall"]
  header = "| configuration | " + " | ".join(blocks) + " |"
  rule = "|---" * (len(blocks) + 1) + "|"
  lines = []
  for metric in METRICS:
    lines += [f"**{metric} ({view})**", "", header, rule]
    for name, entry in result["configurations"].items():
      cells = [_mean_std(entry[view][b][metric]) for b in blocks]
      lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
  for metric in METRICS:
    lines += [
      f"**{metric} difference to {result['reference']} ({view}; paired bootstrap, "
      f"{result['resamples']} resamples, 95% interval)**",
      "",
      header,
      rule,
    ]
    for name, entry in result["configurations"].items():
      if "versus_reference" in entry:
        cells = [_interval(entry["versus_reference"][view][b][metric]) for b in blocks]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
  return "\n".join(lines)
