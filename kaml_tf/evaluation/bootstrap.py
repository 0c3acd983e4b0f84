"""Paired bootstrap confidence intervals for differences of per-target metrics.

Two models scored on the same test rows are compared on the same resamples of those rows,
so the interval reflects the test set's sampling noise on the *difference* (much narrower
than the two separate intervals when the models agree on most rows). Rows are resampled
with replacement; each resample recomputes the per-target AUC and LogLoss exactly as
`metrics.per_target_metrics` does (pooled over every evaluated row, and per target action).
The percentile interval is reported with the share of resamples in which B beats A.

`seed_mean_draws` resamples the rows the same way for several configurations at once: each
configuration's seed-averaged AUC and LogLoss on every resample, from which the caller takes
each configuration's own interval and the interval of any function of two configurations
on the same rows (RelaImpr against a baseline).

With several training seeds per model, seed r of A is paired with seed r of B, and every
resample averages the R differences on the same rows: the interval is that of the
seed-averaged difference under test-set noise (the spread across seeds is reported apart,
by the caller, from the per-seed point differences).
"""

from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from kaml_tf.evaluation import metrics as metrics_lib

OVERALL = "overall"


def target_columns(probs: Any, labels: Any, target_action: Any):
  """Each evaluated row's (label, probability, target) on its target action.

  Args:
    probs: (n, N) probabilities.
    labels: (n, N) 0/1 reported labels.
    target_action: (n,) target index, -1 ("Other") dropped.

  Returns:
    (labels (m,), probs (m,), targets (m,)) for the m rows whose target is an action.
  """
  probs, labels, target = np.asarray(probs), np.asarray(labels), np.asarray(target_action)
  rows = np.flatnonzero(target != metrics_lib.OTHER_TARGET)
  columns = target[rows]
  return labels[rows, columns], probs[rows, columns], columns


def target_blocks(targets: np.ndarray, action_names: Sequence[str]) -> List[Tuple[str, np.ndarray]]:
  """The blocks a per-target metric is reported on, as (name, row indices): `OVERALL` (every
  evaluated row), then each action's target rows. targets: (m,) from `target_columns`."""
  blocks = [(OVERALL, np.arange(targets.size))]
  return blocks + [(name, np.flatnonzero(targets == k)) for k, name in enumerate(action_names)]


def _differences(y, p_a, p_b, index):
  """Mean over seed pairs of (AUC, LogLoss) of B minus A on rows `index`.

  p_a, p_b: (R, m) per-seed probabilities on the evaluated rows.
  """
  y = y[index]
  diffs = [
    (
      metrics_lib.auc(y, b[index]) - metrics_lib.auc(y, a[index]),
      metrics_lib.logloss(y, b[index]) - metrics_lib.logloss(y, a[index]),
    )
    for a, b in zip(p_a, p_b)
  ]
  return tuple(np.mean(diffs, axis=0))


def percentile_interval(values: Any, confidence: float = 0.95) -> Tuple[float, float]:
  """The two-sided percentile interval of the finite `values` (NaN, NaN if there are none)."""
  values = np.asarray(values, dtype=np.float64)
  values = values[np.isfinite(values)]
  if not values.size:
    return float("nan"), float("nan")
  tail = (1.0 - confidence) / 2.0
  low, high = np.quantile(values, [tail, 1.0 - tail])
  return float(low), float(high)


def _seed_means(y: np.ndarray, probs: np.ndarray, index: np.ndarray) -> np.ndarray:
  """(C, 2): per configuration, the mean over its seeds of (AUC, LogLoss) on rows `index`.

  probs: (C, R, m) per configuration and seed, the probabilities of the evaluated rows.
  """
  y = y[index]
  return np.array(
    [
      np.mean(
        [(metrics_lib.auc(y, p[index]), metrics_lib.logloss(y, p[index])) for p in seeds], axis=0
      )
      for seeds in probs
    ]
  ).reshape(len(probs), 2)


def seed_mean_draws(
  labels: Any,
  target_action: Any,
  probs: Sequence[Sequence[Any]],
  action_names: Sequence[str],
  num_resamples: int = 1000,
  seed: int = 0,
) -> Dict[str, Dict[str, np.ndarray]]:
  """Seed-averaged metrics of several configurations on the same bootstrap resamples.

  Args:
    labels: (n, N) reported labels of the test rows.
    target_action: (n,) target per row (-1 rows are not evaluated).
    probs: Per configuration C, its R (n, N) probability arrays, one per seed (R may differ
      between configurations).
    action_names: The N action names.
    num_resamples: Bootstrap resamples B (each redraws the rows of every block).
    seed: Seed of the resampling.

  Returns:
    `{"overall" | action: {"point": (C, 2), "draws": (B, C, 2)}}`: (AUC, LogLoss) averaged
    over each configuration's seeds, on the full rows and on each resample (NaN where
    undefined, e.g. an action without positives in a resample).
  """
  y, _, targets = target_columns(probs[0][0], labels, target_action)
  columns = [
    np.stack([target_columns(p, labels, target_action)[1] for p in seeds]) for seeds in probs
  ]
  rng = np.random.default_rng(seed)
  out = {}
  for name, rows in target_blocks(targets, action_names):
    draws = [
      _seed_means(y, columns, rows[rng.integers(0, rows.size, rows.size)])
      for _ in range(num_resamples if rows.size else 0)
    ]
    out[name] = {
      "point": _seed_means(y, columns, rows),
      "draws": np.array(draws).reshape(-1, len(columns), 2),
    }
  return out


def _interval(values: np.ndarray, point: float, confidence: float, better) -> Dict[str, Any]:
  values = values[np.isfinite(values)]
  low, high = percentile_interval(values, confidence)
  return {
    "difference": point,
    "low": low,
    "high": high,
    "b_better_share": float(np.mean(better(values))) if values.size else float("nan"),
  }


def _summarize(
  y, p_a, p_b, rows: np.ndarray, rng: np.random.Generator, num_resamples: int, confidence: float
):
  point = _differences(y, p_a, p_b, rows)
  # One resample at a time: a (resamples, rows) index matrix would take gigabytes.
  draws = np.array(
    [
      _differences(y, p_a, p_b, rows[rng.integers(0, rows.size, rows.size)])
      for _ in range(num_resamples if rows.size else 0)
    ]
  ).reshape(-1, 2)
  return {
    "auc": _interval(draws[:, 0], point[0], confidence, lambda d: d > 0),
    "logloss": _interval(draws[:, 1], point[1], confidence, lambda d: d < 0),
  }


def _per_seed(probs: Any) -> List[np.ndarray]:
  """(n, N) or a sequence of R such arrays, as a list of R arrays."""
  if isinstance(probs, np.ndarray) and probs.ndim == 2:
    return [probs]
  return [np.asarray(p) for p in probs]


def paired_differences(
  labels: Any,
  target_action: Any,
  probs_a: Any,
  probs_b: Any,
  action_names: Sequence[str],
  num_resamples: int = 1000,
  seed: int = 0,
  confidence: float = 0.95,
) -> Dict[str, Dict[str, Any]]:
  """Bootstrap intervals of metric(B) - metric(A), pooled and per target action.

  Args:
    labels: (n, N) reported labels of the test rows.
    target_action: (n,) target per row (-1 rows are not evaluated, as in the paper).
    probs_a: (n, N) model A's probabilities (the reference), or a sequence of R of them,
      one per training seed.
    probs_b: (n, N) model B's probabilities, or R of them paired with A's by position.
    action_names: The N action names.
    num_resamples: Bootstrap resamples (each one redraws the rows of every action).
    seed: Seed of the resampling.
    confidence: Two-sided coverage of the percentile interval.

  Returns:
    `{"overall" | action: {"auc" | "logloss": {"difference", "low", "high",
    "b_better_share"}}}`: B - A at the full test set, the interval, and the share of
    resamples in which B is better (higher AUC, lower LogLoss). Undefined AUCs (an action
    without test positives in a resample) are left out of that action's resamples.
  """
  if not 0 < confidence < 1:
    raise ValueError(f"confidence must be in (0, 1), got {confidence}")
  seeds_a, seeds_b = _per_seed(probs_a), _per_seed(probs_b)
  if len(seeds_a) != len(seeds_b):
    raise ValueError(f"paired seeds: A has {len(seeds_a)} runs, B has {len(seeds_b)}")
  y, _, targets = target_columns(seeds_a[0], labels, target_action)
  p_a = np.stack([target_columns(p, labels, target_action)[1] for p in seeds_a])
  p_b = np.stack([target_columns(p, labels, target_action)[1] for p in seeds_b])
  rng = np.random.default_rng(seed)
  # In block order: the resamples draw from one generator, overall first.
  return {
    name: _summarize(y, p_a, p_b, rows, rng, num_resamples, confidence)
    for name, rows in target_blocks(targets, action_names)
  }
