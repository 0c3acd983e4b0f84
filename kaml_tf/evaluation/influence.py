"""Normal-approximation intervals of per-target metrics from their per-row influences.

Row resampling (`bootstrap.seed_mean_draws`) rescores every configuration and seed on every
resample: at the millions of test rows that give each rare action 300 positives, 1,000
resamples of a dozen configurations take hours. The same intervals follow, to first order,
from one pass over the rows. Each metric is a smooth function of the rows, so

  metric(resample) - metric(rows) ~= sum_i (c_i - 1) phi_i,

with c_i how often row i is drawn and phi_i its influence:
- AUC (DeLong et al. 1988, the U-statistic's structural components): for a positive i,
  phi_i = (V10_i - AUC) / P with V10_i its share of negatives scored below it (ties half);
  for a negative j, phi_j = (V01_j - AUC) / Q with V01_j its share of positives above it.
- LogLoss (a mean): phi_i = (loss_i - LogLoss) / m.
A seed average is linear in its seeds' metrics, so its influence is the mean of theirs.
Under row resampling the vector of metrics is then close to normal with covariance
Phi^T Phi (Phi: rows x metrics), the plug-in (1/P, 1/Q) form of DeLong's covariance, which
is what the bootstrap estimates. `seed_mean_draws` samples that normal and returns the same
structure as the bootstrap's, so intervals of any function of several configurations
(RelaImpr against a baseline) are read off the same draws.
"""

from typing import Any, Dict, Sequence, Tuple

import numpy as np

from kaml_tf.evaluation import bootstrap
from kaml_tf.evaluation import metrics as metrics_lib


def auc_influence(labels: np.ndarray, scores: np.ndarray) -> Tuple[float, np.ndarray]:
  """(AUC, phi (m,)): the AUC of the rows and each row's influence on it (module docstring);
  (NaN, zeros) without both classes."""
  y = np.asarray(labels) == 1
  scores = np.asarray(scores, dtype=np.float64)
  positives, negatives = int(y.sum()), int((~y).sum())
  if positives == 0 or negatives == 0:
    return float("nan"), np.zeros(y.size)
  ranks = metrics_lib.midranks(scores)
  phi = np.empty(y.size, dtype=np.float64)
  # Rank among all rows minus rank among its own class = rows of the other class below it.
  below = ranks[y] - metrics_lib.midranks(scores[y])
  above = positives - (ranks[~y] - metrics_lib.midranks(scores[~y]))  # positives above a negative
  auc = below.sum() / (positives * negatives)
  phi[y] = (below / negatives - auc) / positives
  phi[~y] = (above / positives - auc) / negatives
  return float(auc), phi


def logloss_influence(labels: np.ndarray, probs: np.ndarray) -> Tuple[float, np.ndarray]:
  """(LogLoss, phi (m,)) of the rows (probabilities clipped as `metrics.logloss` does)."""
  y = np.asarray(labels) == 1
  if not y.size:
    return float("nan"), np.zeros(0)
  p = np.clip(np.asarray(probs, np.float64), metrics_lib.LOGLOSS_EPS, 1 - metrics_lib.LOGLOSS_EPS)
  loss = -np.where(y, np.log(p), np.log1p(-p))
  mean = float(loss.mean())
  return mean, (loss - mean) / y.size


def _block(y: np.ndarray, columns: Sequence[Sequence[np.ndarray]]):
  """(point (C, 2), influences (m, 2C)) of the seed-averaged (AUC, LogLoss) per
  configuration on one block's rows."""
  point = np.zeros((len(columns), 2))
  phi = np.zeros((y.size, 2 * len(columns)))
  for c, seeds in enumerate(columns):
    for p in seeds:
      for k, influence in enumerate((auc_influence, logloss_influence)):
        value, row_phi = influence(y, p)
        point[c, k] += value / len(seeds)
        phi[:, 2 * c + k] += row_phi / len(seeds)
  return point, phi


def seed_mean_draws(
  labels: Any,
  target_action: Any,
  probs: Sequence[Sequence[Any]],
  action_names: Sequence[str],
  num_draws: int = 1000,
  seed: int = 0,
) -> Dict[str, Dict[str, np.ndarray]]:
  """`bootstrap.seed_mean_draws`'s result, each block's draws from the normal approximation.

  Args:
    labels: (n, N) reported labels of the test rows.
    target_action: (n,) target per row (-1 rows are not evaluated).
    probs: Per configuration C, its R (n, N) probability arrays, one per seed.
    action_names: The N action names.
    num_draws: Draws B per block.
    seed: Seed of the draws.

  Returns:
    `{"overall" | action: {"point": (C, 2), "draws": (B, C, 2), "covariance": (2C, 2C)}}`:
    the exact seed-averaged (AUC, LogLoss) on every evaluated row, and draws of them under
    row resampling to first order (NaN where the AUC is undefined).
  """
  y, _, targets = bootstrap.target_columns(probs[0][0], labels, target_action)
  columns = [[bootstrap.target_columns(p, labels, target_action)[1] for p in s] for s in probs]
  return target_draws(y, targets, columns, action_names, num_draws, seed)


def target_draws(
  y: np.ndarray,
  targets: np.ndarray,
  columns: Sequence[Sequence[np.ndarray]],
  action_names: Sequence[str],
  num_draws: int = 1000,
  seed: int = 0,
) -> Dict[str, Dict[str, np.ndarray]]:
  """`seed_mean_draws` on the evaluated rows' target columns (`bootstrap.target_columns`):
  labels y (m,), targets (m,) and, per configuration, its seeds' probabilities (m,)."""
  rng = np.random.default_rng(seed)
  out = {}
  for name, rows in bootstrap.target_blocks(targets, action_names):
    point, phi = _block(y[rows], [[p[rows] for p in seeds] for seeds in columns])
    covariance = phi.T @ phi
    defined = np.isfinite(point.ravel())
    flat = np.full((num_draws, point.size), np.nan)
    if defined.any() and num_draws:
      # eigh tolerates the singular covariance of two identical configurations.
      flat[:, defined] = rng.multivariate_normal(
        point.ravel()[defined], covariance[np.ix_(defined, defined)], num_draws, method="eigh"
      )
    out[name] = {
      "point": point,
      "draws": flat.reshape(num_draws, len(columns), 2),
      "covariance": covariance,
    }
  return out
