"""Bootstrap 95% intervals over the test rows for an experiment's tables.

Every run's test predictions are kept next to its metrics (`PREDICTIONS_FILE`). For each
block of the per-target evaluation (as served, and raw when the runs are calibrated), the
test rows are resampled and every configuration is scored on the same resamples, averaged
over its seeds (`kaml_tf.evaluation.bootstrap.seed_mean_draws`). This gives each
configuration's interval of its seed-averaged AUC and LogLoss (test-set noise; the seed
spread is the table's ± std), and the interval of RelaImpr (eq. 14) of each `kaml` or
`plugin` configuration against the column's best baseline, computed on the same resamples.
It needs every run on the same test rows, so suites whose seeds have test splits of their
own (kuairand) get none.

`NORMAL` draws the same quantities from their normal approximation instead
(`kaml_tf.evaluation.influence`: the per-row influences, DeLong's covariance for the AUCs):
one pass over the rows instead of a rescoring per resample, for test splits of millions of
rows where 1,000 resamples of every configuration would take hours.
"""

from typing import Any, Dict, List, Mapping, Sequence

import numpy as np

from experiments import report as report_lib
from experiments import suites as suites_lib
from kaml_tf import atomic
from kaml_tf.evaluation import bootstrap
from kaml_tf.evaluation import influence
from kaml_tf.evaluation import metrics as metrics_lib

PREDICTIONS_FILE = "predictions.npz"
CONFIDENCE = 0.95
# Which saved probabilities each block of the report is scored on.
PROBABILITIES = {report_lib.PER_TARGET: "served", report_lib.RAW: "raw"}
_METRIC_INDEX = {"auc": 0, "logloss": 1}
BOOTSTRAP = "bootstrap"
NORMAL = "normal"
# How each method draws the seed-averaged metrics of every configuration on shared rows.
_DRAWS = {BOOTSTRAP: bootstrap.seed_mean_draws, NORMAL: influence.seed_mean_draws}
METHODS = tuple(_DRAWS)


def save_predictions(path: str, labels, target_action, served, raw) -> None:
  """Writes a run's test predictions (atomically): labels and targets (n, N) / (n,),
  served and raw probabilities (n, N)."""
  with atomic.atomic_path(path) as tmp:
    with open(tmp, "wb") as f:
      np.savez_compressed(
        f,
        labels=np.asarray(labels, np.int8),
        target_action=np.asarray(target_action, np.int64),
        served=np.asarray(served, np.float32),
        raw=np.asarray(raw, np.float32),
      )


def load_predictions(path: str) -> Dict[str, np.ndarray]:
  with np.load(path) as data:
    return {k: data[k] for k in data.files}


def _interval_cell(values: np.ndarray, point: float) -> Dict[str, Any]:
  low, high = bootstrap.percentile_interval(values, CONFIDENCE)
  return {"value": _defined(point), "low": _defined(low), "high": _defined(high)}


def _defined(value: float):
  return None if value is None or np.isnan(value) else float(value)


def block_intervals(
  results: Mapping[str, Any],
  block: str,
  predictions: Mapping[str, Sequence[Mapping[str, np.ndarray]]],
  num_resamples: int,
  seed: int = 0,
  method: str = BOOTSTRAP,
) -> Dict[str, Any]:
  """The intervals of one block.

  Args:
    results: The results dict (`report.build_results`), for roles and best baselines.
    block: `report.PER_TARGET` or `report.RAW`.
    predictions: Per configuration, its runs' `load_predictions` dicts (same test rows).
    num_resamples: Bootstrap resamples (or normal draws).
    seed: Seed of the resampling.
    method: One of `METHODS`.

  Returns:
    `{"configurations": {name: {column: {"auc" | "logloss": {"value", "low", "high"}}}},
    "rela_impr": {name: {column: {"value", "low", "high", "baseline"}}}}` with columns the
    actions and `report.ALL_COLUMN`; undefined values are None.
  """
  names = list(predictions)
  first = predictions[names[0]][0]
  draws = _DRAWS[method](
    first["labels"],
    first["target_action"],
    [[run[PROBABILITIES[block]] for run in predictions[n]] for n in names],
    results["actions"],
    num_resamples,
    seed,
  )
  column_of = {report_lib.ALL_COLUMN: bootstrap.OVERALL}
  columns = list(results["actions"]) + [report_lib.ALL_COLUMN]
  out: Dict[str, Any] = {"configurations": {}, "rela_impr": {}}
  for i, name in enumerate(names):
    out["configurations"][name] = {
      c: {
        m: _interval_cell(
          draws[column_of.get(c, c)]["draws"][:, i, k], draws[column_of.get(c, c)]["point"][i, k]
        )
        for m, k in _METRIC_INDEX.items()
      }
      for c in columns
    }
  configurations = results["configurations"]
  for name in names:
    if configurations[name]["role"] not in suites_lib.COMPARED:
      continue
    row = report_lib.rela_impr_row(configurations, block, columns, name) or {}
    out["rela_impr"][name] = {}
    for c, entry in row.items():
      baseline = entry["baseline"]
      if baseline not in names:
        continue
      d = draws[column_of.get(c, c)]
      i, j = names.index(name), names.index(baseline)
      values = _rela_impr(d["draws"][:, i, 0], d["draws"][:, j, 0])
      point = _rela_impr(d["point"][i : i + 1, 0], d["point"][j : j + 1, 0])
      cell = _interval_cell(values, point[0] if point.size else np.nan)
      out["rela_impr"][name][c] = dict(cell, baseline=baseline)
  return out


def _rela_impr(ours: np.ndarray, base: np.ndarray) -> np.ndarray:
  return np.array([metrics_lib.rela_impr(a, b) for a, b in zip(ours, base)], dtype=np.float64)


def intervals(
  results: Mapping[str, Any],
  predictions: Mapping[str, Sequence[Mapping[str, np.ndarray]]],
  num_resamples: int,
  seed: int = 0,
  method: str = BOOTSTRAP,
) -> Dict[str, Any]:
  """`{block: block_intervals(...)}` for the blocks of `PROBABILITIES` the results hold."""
  blocks: List[str] = [b for b in results["blocks"] if b in PROBABILITIES]
  return {b: block_intervals(results, b, predictions, num_resamples, seed, method) for b in blocks}
