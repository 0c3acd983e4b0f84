"""Offline evaluation metrics of the KAML paper (section 4.1.4, eq. 14), in numpy only.

* `auc`: exact ROC AUC from ranks (Mann-Whitney U), tied scores sharing their average rank,
  O(n log n).
* `logloss`: mean binary cross-entropy with probabilities clipped to [eps, 1 - eps].
* `per_target_metrics`: the paper's protocol: each sample is evaluated once, on the label of
  its target action; samples whose target is "Other" (-1) are skipped and counted.
* `all_action_metrics`: every action on every sample against the complete labels (the Oracle
  view, available for simulated data).
* `rela_impr`: RelaImpr = (AUC - 0.5) / (AUC_base - 0.5) - 1, per action and overall.

Undefined values are NaN, never an exception: the AUC of a set without positives or without
negatives, the logloss of an empty set, and RelaImpr against a base AUC of exactly 0.5.
Python's `json` writes and reads them as `NaN`.
"""

import json
import math
from typing import Any, Dict, Mapping, Sequence

import numpy as np

# Probabilities are clipped to [LOGLOSS_EPS, 1 - LOGLOSS_EPS] so a confident mistake costs
# -ln(1e-7) ~ 16.1 instead of infinity (the same epsilon as Keras' BCE).
LOGLOSS_EPS = 1e-7
OTHER_TARGET = -1  # kaml_tf.schema.OTHER_TARGET; repeated so this module needs no TensorFlow.

Metrics = Dict[str, Any]


def _binary_labels(labels: Any, what: str) -> np.ndarray:
  labels = np.asarray(labels)
  bad = np.flatnonzero((labels != 0) & (labels != 1))
  if bad.size:
    i = np.unravel_index(bad[0], labels.shape)
    raise ValueError(f"{what} must be 0 or 1, got {labels[i]!r} at index {tuple(map(int, i))}")
  return labels.astype(np.int64)


def _finite(values: Any, what: str) -> np.ndarray:
  values = np.asarray(values, dtype=np.float64)
  bad = np.flatnonzero(~np.isfinite(values))
  if bad.size:
    i = np.unravel_index(bad[0], values.shape)
    raise ValueError(f"{what} must be finite, got {values[i]!r} at index {tuple(map(int, i))}")
  return values


def _same_1d(labels: np.ndarray, values: np.ndarray, what: str) -> None:
  if labels.ndim != 1 or labels.shape != values.shape:
    raise ValueError(
      f"labels and {what} must be 1-D of equal length, got shapes {labels.shape} and {values.shape}"
    )


def midranks(values: np.ndarray) -> np.ndarray:
  """1-based ranks of `values` (n,), tied values given the average of the ranks they span."""
  order = np.argsort(values, kind="mergesort")
  sorted_values = values[order]
  # Tie groups are runs of equal sorted values; 1-based ranks start+1..end average to
  # (start + end + 1) / 2.
  starts = np.concatenate(([0], np.flatnonzero(np.diff(sorted_values)) + 1))
  ends = np.concatenate((starts[1:], [values.size]))
  ranks = np.empty(values.size, dtype=np.float64)
  ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
  return ranks


def auc(labels: Any, scores: Any) -> float:
  """Exact ROC AUC with ties averaged.

  AUC = (sum of the positives' ranks - P (P + 1) / 2) / (P * Q) for P positives and Q
  negatives, with tied scores given the average of the ranks they span, which counts a tied
  (positive, negative) pair as one half.

  Args:
    labels: (n,) 0/1 labels.
    scores: (n,) finite scores (probabilities or logits; only their order matters).

  Returns:
    The AUC in [0, 1], or NaN when the labels hold no positive or no negative.
  """
  labels = _binary_labels(labels, "labels")
  scores = _finite(scores, "scores")
  _same_1d(labels, scores, "scores")
  positives = int(labels.sum())
  negatives = labels.size - positives
  if positives == 0 or negatives == 0:
    return float("nan")
  rank_sum = midranks(scores)[labels == 1].sum()
  return float((rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives))


def logloss(labels: Any, probs: Any, eps: float = LOGLOSS_EPS) -> float:
  """Mean binary cross-entropy, probabilities clipped to [eps, 1 - eps].

  Args:
    labels: (n,) 0/1 labels.
    probs: (n,) probabilities in [0, 1].
    eps: Clipping bound, default `LOGLOSS_EPS` = 1e-7.

  Returns:
    -mean(y ln p + (1 - y) ln(1 - p)), or NaN for an empty input.
  """
  labels = _binary_labels(labels, "labels")
  probs = _finite(probs, "probs")
  _same_1d(labels, probs, "probs")
  outside = np.flatnonzero((probs < 0) | (probs > 1))
  if outside.size:
    raise ValueError(
      f"probs must lie in [0, 1], got {probs[outside[0]]!r} at index {int(outside[0])}"
    )
  if not 0 < eps < 0.5:
    raise ValueError(f"eps must lie in (0, 0.5), got {eps!r}")
  if labels.size == 0:
    return float("nan")
  p = np.clip(probs, eps, 1.0 - eps)
  return float(-np.mean(np.where(labels == 1, np.log(p), np.log1p(-p))))


def binary_metrics(labels: Any, probs: Any) -> Metrics:
  """`{"auc", "logloss", "count", "positives"}` of one set of (label, probability) pairs."""
  labels = _binary_labels(labels, "labels")
  return {
    "auc": auc(labels, probs),
    "logloss": logloss(labels, probs),
    "count": int(labels.size),
    "positives": int(labels.sum()),
  }


def _check_matrix(probs: Any, labels: Any, action_names: Sequence[str], labels_name: str):
  probs = np.asarray(probs, dtype=np.float64)
  labels = np.asarray(labels)
  if probs.ndim != 2:
    raise ValueError(f"probs must have shape (n, num_actions), got {probs.shape}")
  if labels.shape != probs.shape:
    raise ValueError(f"{labels_name} shape {labels.shape} does not match probs shape {probs.shape}")
  if len(action_names) != probs.shape[1] or len(set(action_names)) != len(action_names):
    raise ValueError(
      f"action_names must name the {probs.shape[1]} columns once each, got {list(action_names)}"
    )
  return probs, _binary_labels(labels, labels_name)


def per_target_metrics(
  probs: Any, labels: Any, target_action: Any, action_names: Sequence[str]
) -> Metrics:
  """Evaluates every sample once, on its target action (paper 4.1.4).

  Args:
    probs: (n, N) predicted probabilities.
    labels: (n, N) 0/1 reported labels.
    target_action: (n,) int target action index per sample; -1 ("Other") is skipped.
    action_names: The N action names, in column order.

  Returns:
    `{"actions": {name: {"auc", "logloss", "count", "positives"}}, "overall": {same keys},
    "skipped_other": int}`, where "overall" pools every evaluated (sample, target) pair and
    every action appears (NaN AUC / logloss and count 0 when no sample targets it).
  """
  probs, labels = _check_matrix(probs, labels, action_names, "labels")
  target = np.asarray(target_action)
  if target.shape != probs.shape[:1]:
    raise ValueError(f"target_action must have shape ({probs.shape[0]},), got {target.shape}")
  if target.size and not np.issubdtype(target.dtype, np.integer):
    raise ValueError(f"target_action must be integers, got dtype {target.dtype}")
  bad = np.flatnonzero((target < OTHER_TARGET) | (target >= probs.shape[1]))
  if bad.size:
    raise ValueError(
      f"target_action must be -1 or an action index below {probs.shape[1]}, "
      f"got {int(target[bad[0]])} at index {int(bad[0])}"
    )
  evaluated = np.flatnonzero(target != OTHER_TARGET)
  columns = target[evaluated]
  pooled_labels = labels[evaluated, columns]
  pooled_probs = probs[evaluated, columns]
  actions = {
    name: binary_metrics(pooled_labels[columns == k], pooled_probs[columns == k])
    for k, name in enumerate(action_names)
  }
  return {
    "actions": actions,
    "overall": binary_metrics(pooled_labels, pooled_probs),
    "skipped_other": int(target.size - evaluated.size),
  }


def all_action_metrics(probs: Any, true_labels: Any, action_names: Sequence[str]) -> Metrics:
  """Evaluates every action on every sample against the complete labels (Oracle view).

  Args:
    probs: (n, N) predicted probabilities.
    true_labels: (n, N) 0/1 complete labels.
    action_names: The N action names, in column order.

  Returns:
    `{"actions": {name: {"auc", "logloss", "count", "positives"}}, "overall": {same keys}}`,
    "overall" pooling all n x N (sample, action) pairs.
  """
  probs, labels = _check_matrix(probs, true_labels, action_names, "true_labels")
  actions = {name: binary_metrics(labels[:, k], probs[:, k]) for k, name in enumerate(action_names)}
  return {"actions": actions, "overall": binary_metrics(labels.ravel(), probs.ravel())}


def rela_impr(auc_value: float, auc_base: float) -> float:
  """RelaImpr (eq. 14): (auc - 0.5) / (auc_base - 0.5) - 1; NaN if auc_base is 0.5 or NaN."""
  if math.isnan(auc_value) or math.isnan(auc_base) or auc_base == 0.5:
    return float("nan")
  return (auc_value - 0.5) / (auc_base - 0.5) - 1.0


def _is_block(value: Any) -> bool:
  return isinstance(value, Mapping) and "actions" in value and "overall" in value


def _block_rela_impr(block: Mapping[str, Any], base: Mapping[str, Any], where: str) -> Metrics:
  names, base_names = list(block["actions"]), list(base["actions"])
  if sorted(names) != sorted(base_names):
    raise ValueError(f"{where}: the two metrics have different actions: {names} vs {base_names}")
  return {
    "actions": {n: rela_impr(block["actions"][n]["auc"], base["actions"][n]["auc"]) for n in names},
    "overall": rela_impr(block["overall"]["auc"], base["overall"]["auc"]),
  }


def rela_impr_between(metrics: Mapping[str, Any], base_metrics: Mapping[str, Any]) -> Metrics:
  """RelaImpr of `metrics` over `base_metrics`, per action and overall.

  A metrics block is a dict with "actions" and "overall", as returned by `per_target_metrics`
  or `all_action_metrics`. The inputs may be a block, a dict of blocks, or a block with more
  blocks nested under other keys: metrics.json is the per-target block with the Oracle block
  under "oracle".

  Args:
    metrics: The evaluated model's metrics.
    base_metrics: The baseline's metrics, of the same form.

  Returns:
    `{"actions": {name: float}, "overall": float}` when both inputs are blocks, plus the same
    under every key holding a block in both inputs (e.g. "oracle").

  Raises:
    ValueError: if the actions differ, or the two inputs share no metrics block.
  """
  result: Metrics = {}
  if _is_block(metrics) and _is_block(base_metrics):
    result.update(_block_rela_impr(metrics, base_metrics, "top-level block"))
  for key, value in metrics.items():
    if key not in ("actions", "overall") and _is_block(value) and _is_block(base_metrics.get(key)):
      result[key] = _block_rela_impr(value, base_metrics[key], key)
  if not result:
    raise ValueError(
      f"no metrics block (a dict with 'actions' and 'overall') in both inputs; "
      f"keys are {sorted(metrics)} and {sorted(base_metrics)}"
    )
  return result


def _load_json(path: str) -> Mapping[str, Any]:
  with open(path, encoding="utf-8") as f:
    try:
      data = json.load(f)
    except json.JSONDecodeError as e:
      raise ValueError(f"{path}: not valid JSON ({e})") from None
  if not isinstance(data, Mapping):
    raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
  return data


def rela_impr_files(path: str, base_path: str) -> Metrics:
  """`rela_impr_between` on two metrics.json files; errors name both files."""
  try:
    return rela_impr_between(_load_json(path), _load_json(base_path))
  except ValueError as e:
    if str(e).startswith((f"{path}:", f"{base_path}:")):
      raise
    raise ValueError(f"{path} vs {base_path}: {e}") from None
