"""Platt scaling per action: p_j = sigmoid(a_j * logit_j + b_j), fitted for one checkpoint.

Action j is fitted only on the rows whose target action is j (the traffic whose conversions
head j is evaluated and served on), by maximum likelihood on the head's raw logit. With
(a, b) = (1, 0) the calibrated probability is the model's own sigmoid(logit), and the fit
starts there and is pulled towards it by a tiny ridge, so that separable or degenerate data
still give finite parameters. An action with no rows, no positive or no negative on the
fitting set keeps the identity, one with fewer than `MIN_POSITIVES_FOR_SLOPE` positives gets
its intercept only (a = 1), and `fitted_on` says why. The slope is never negative: a head is
never reversed on the strength of one validation day.

The fitted parameters belong to the weights they were fitted for: `calibration.json` records
the checkpoint's name and the SHA-256 of its `.index` file (which lists every saved tensor
with its CRC32C, so it changes whenever any weight does). `for_checkpoint` applies the file
only to the checkpoint it was fitted for; for any other it logs a warning and returns None,
and the model then scores with its raw probabilities.

`MODEL_DIR/calibration.json`:
  {"checkpoint": "checkpoints/ckpt-3", "checkpoint_sha256": "...",
   "actions": [N names], "a": [N floats], "b": [N floats],
   "fitted_on": {"rows": [N], "positives": [N], "identity_because": [N reasons or null],
                 "slope_fixed_because": [N reasons or null],
                 ...where the rows came from (e.g. "files", "days")}}
"""

import dataclasses
import hashlib
import json
import logging
import math
import os
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import numpy as np
import tensorflow as tf

from kaml_tf import atomic

CALIBRATION_FILE = "calibration.json"
IDENTITY = (1.0, 0.0)
# Weight of 0.5 * ||(a, b) - (1, 0)||^2 added to the mean negative log-likelihood: negligible
# against the likelihood of any real fitting set, yet it keeps the optimum finite when the
# labels are separable by the logit (the likelihood alone then grows without bound in a).
RIDGE = 1e-6
_MAX_NEWTON_STEPS = 100
_STEP_TOLERANCE = 1e-10
# Below this many positives among an action's fitting rows, only the intercept is fitted
# (a = 1): a slope estimated from a handful of positives is noise (one validation day holds
# a few dozen retention-target positives at a million rows), and a noisy slope near 0 would
# flatten, and below 0 reverse, a head's ranking that training learnt from far more data.
MIN_POSITIVES_FOR_SLOPE = 30


class CalibrationError(ValueError):
  """A calibration file is malformed or does not belong to the model; the message names it."""


def sigmoid(x: np.ndarray) -> np.ndarray:
  """1 / (1 + exp(-x)) in float64, without overflow for large |x|."""
  return np.exp(-np.logaddexp(0.0, -np.asarray(x, dtype=np.float64)))


def identity_reason(labels: np.ndarray) -> Optional[str]:
  """Why a fitting set's labels leave nothing to fit (identity kept), or None if they do not."""
  labels = np.asarray(labels)
  if labels.size == 0:
    return "no rows"
  if not labels.any():
    return "no positives"
  if labels.all():
    return "no negatives"
  return None


def _objective(theta: np.ndarray, z: np.ndarray, y: np.ndarray) -> float:
  """Mean negative log-likelihood of y ~ Bernoulli(sigmoid(a z + b)) plus the ridge."""
  s = theta[0] * z + theta[1]
  nll = np.mean(np.logaddexp(0.0, s) - y * s)
  return float(nll + 0.5 * RIDGE * np.sum((theta - IDENTITY) ** 2))


def fit_platt(logits: Any, labels: Any) -> Tuple[float, float]:
  """Maximum-likelihood (a, b) of labels ~ Bernoulli(sigmoid(a * logit + b)).

  Newton's method in float64 from the identity (1, 0), each step halved until the objective
  does not increase (a full step can overshoot from a far start, e.g. a confident head whose
  logits are several times too large). The objective is convex, so this reaches its minimum.

  Args:
    logits: (n,) finite raw logits of one action's head.
    labels: (n,) 0/1 labels of that action.

  Returns:
    (a, b); the identity (1, 0) when `identity_reason(labels)` is not None.

  Raises:
    ValueError: if the inputs are not 1-D of equal length, a logit is not finite or a label
      is not 0 or 1.
  """
  z = np.asarray(logits, dtype=np.float64)
  y = np.asarray(labels)
  if z.ndim != 1 or z.shape != y.shape:
    raise ValueError(
      f"logits and labels must be 1-D of equal length, got shapes {z.shape} and {y.shape}"
    )
  if not np.isfinite(z).all():
    raise ValueError(f"logits must be finite, got {z[~np.isfinite(z)][0]!r}")
  if not np.isin(y, (0, 1)).all():
    raise ValueError(f"labels must be 0 or 1, got {y[~np.isin(y, (0, 1))][0]!r}")
  if identity_reason(y) is not None:
    return IDENTITY
  y = y.astype(np.float64)
  x = np.stack([z, np.ones_like(z)], axis=1)
  theta = np.array(IDENTITY)
  value = _objective(theta, z, y)
  for _ in range(_MAX_NEWTON_STEPS):
    p = sigmoid(x @ theta)
    gradient = x.T @ (p - y) / z.size + RIDGE * (theta - IDENTITY)
    hessian = (x.T * (p * (1.0 - p))) @ x / z.size + RIDGE * np.eye(2)
    step = np.linalg.solve(hessian, gradient)
    scale = 1.0
    while scale > 1e-12:
      candidate = theta - scale * step
      candidate_value = _objective(candidate, z, y)
      if candidate_value <= value:
        break
      scale *= 0.5
    else:
      break  # No decrease left at float64 precision: at the minimum.
    theta, value = candidate, candidate_value
    if np.max(np.abs(scale * step)) < _STEP_TOLERANCE:
      break
  if theta[0] < 0:
    # The objective is convex, so with the unconstrained optimum at a < 0 the optimum over
    # a >= 0 lies on a = 0: a constant, the target rows' base rate. Calibration must never
    # reverse a head's ranking on the strength of one validation day.
    return 0.0, float(np.log(y.mean() / (1.0 - y.mean())))
  return float(theta[0]), float(theta[1])


def fit_intercept(logits: Any, labels: Any) -> float:
  """Maximum-likelihood b of labels ~ Bernoulli(sigmoid(logit + b)) (slope fixed at 1).

  Newton's method on the convex 1-D objective (with the same ridge towards 0), each step
  halved until the objective does not increase; 0 when `identity_reason(labels)` is not None.

  Args:
    logits: (n,) finite raw logits of one action's head.
    labels: (n,) 0/1 labels of that action.
  """
  z = np.asarray(logits, dtype=np.float64)
  y = np.asarray(labels)
  if identity_reason(y) is not None:
    return 0.0
  y = y.astype(np.float64)
  value = lambda b: _objective(np.array([1.0, b]), z, y)  # noqa: E731
  b, current = 0.0, value(0.0)
  for _ in range(_MAX_NEWTON_STEPS):
    p = sigmoid(z + b)
    step = (np.mean(p - y) + RIDGE * b) / (np.mean(p * (1.0 - p)) + RIDGE)
    scale = 1.0
    while scale > 1e-12 and value(b - scale * step) > current:
      scale *= 0.5
    if scale <= 1e-12:
      break
    b, current = b - scale * step, value(b - scale * step)
    if abs(scale * step) < _STEP_TOLERANCE:
      break
  return float(b)


@dataclasses.dataclass(frozen=True)
class CheckpointRef:
  """Which weights a calibration belongs to.

  Attributes:
    name: The checkpoint's path relative to the model directory ("checkpoints/ckpt-3").
    sha256: SHA-256 (hex) of the checkpoint's `.index` file.
  """

  name: str
  sha256: str

  @classmethod
  def of(cls, model_dir: str, checkpoint: str) -> "CheckpointRef":
    """The reference of `checkpoint` (a path prefix as `tf.train` names it) in `model_dir`."""
    with open(checkpoint + ".index", "rb") as f:
      digest = hashlib.sha256(f.read()).hexdigest()
    name = os.path.relpath(os.path.abspath(checkpoint), os.path.abspath(model_dir))
    return cls(name=name, sha256=digest)


@dataclasses.dataclass(frozen=True)
class Calibration:
  """Per-action Platt parameters fitted for one checkpoint.

  Attributes:
    actions: The N action names, in the model's column order.
    a: (N,) slopes.
    b: (N,) intercepts.
    checkpoint: The checkpoint the parameters were fitted for.
    fitted_on: Per-action "rows", "positives" and "identity_because" (a reason, or None when
      fitted) lists, plus where the rows came from.
  """

  actions: Tuple[str, ...]
  a: Tuple[float, ...]
  b: Tuple[float, ...]
  checkpoint: CheckpointRef
  fitted_on: Mapping[str, Any]

  def apply(self, logits: Any) -> np.ndarray:
    """Calibrated probabilities (n, N) float64, sigmoid(a_j * logits[:, j] + b_j).

    Args:
      logits: (n, N) raw logits, column j the head of action j.
    """
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[1] != len(self.actions):
      raise ValueError(f"logits must have shape (n, {len(self.actions)}), got {logits.shape}")
    return sigmoid(logits * np.asarray(self.a) + np.asarray(self.b))

  def calibrated_logits(self, logits: tf.Tensor) -> tf.Tensor:
    """a_j * logits[:, j] + b_j in TensorFlow, (batch, N) -> (batch, N), logits' dtype.

    The parameters enter the graph as constants, so a SavedModel traced through this holds
    them in its graph.
    """
    a = tf.constant(self.a, dtype=logits.dtype, name="calibration_a")
    b = tf.constant(self.b, dtype=logits.dtype, name="calibration_b")
    return logits * a + b

  def summary(self) -> Dict[str, Any]:
    """`{"checkpoint", "a": {action: a}, "b": {action: b}}`, for metrics.json."""
    return {
      "checkpoint": self.checkpoint.name,
      "a": dict(zip(self.actions, self.a)),
      "b": dict(zip(self.actions, self.b)),
    }

  def to_dict(self) -> Dict[str, Any]:
    """The `calibration.json` object (see the module docstring)."""
    return {
      "checkpoint": self.checkpoint.name,
      "checkpoint_sha256": self.checkpoint.sha256,
      "actions": list(self.actions),
      "a": list(self.a),
      "b": list(self.b),
      "fitted_on": dict(self.fitted_on),
    }

  def write(self, path: str) -> None:
    """Writes the JSON to `path` atomically."""
    atomic.write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

  def save(self, model_dir: str) -> str:
    """Writes `MODEL_DIR/calibration.json` atomically; returns its path."""
    path = calibration_path(model_dir)
    self.write(path)
    return path


def calibration_path(model_dir: str) -> str:
  return os.path.join(model_dir, CALIBRATION_FILE)


def fit(
  predictions,
  actions: Sequence[str],
  checkpoint: CheckpointRef,
  source: Optional[Mapping[str, Any]] = None,
  min_positives_for_slope: int = MIN_POSITIVES_FOR_SLOPE,
) -> Calibration:
  """Fits every action on its own target traffic.

  Args:
    predictions: `kaml_tf.evaluation.evaluator.Predictions` (or anything with `logits`
      (n, N) raw logits, `labels` (n, N) 0/1 labels and `target_action` (n,) indices, -1 for
      "Other"). Action j is fitted on the rows whose target is j only, with the raw logit of
      head j: the rows it is evaluated on and served for.
    actions: The N action names.
    checkpoint: The checkpoint the logits come from.
    source: Where the rows came from, recorded in `fitted_on` (e.g. files and days).
    min_positives_for_slope: Actions with fewer positives get their intercept only (a = 1).

  Returns:
    The calibration; an action whose rows leave nothing to fit keeps (1, 0), with the reason
    in `fitted_on["identity_because"]` (also logged).
  """
  logits = np.asarray(predictions.logits)
  labels = np.asarray(predictions.labels)
  target = np.asarray(predictions.target_action)
  if (
    logits.ndim != 2
    or logits.shape[1] != len(actions)
    or labels.shape != logits.shape
    or (target.shape != logits.shape[:1])
  ):
    raise ValueError(
      f"predictions must hold logits and labels of shape (n, {len(actions)}) "
      f"and target_action of shape (n,); got {logits.shape}, {labels.shape} and "
      f"{target.shape}"
    )
  a, b, rows, positives, reasons, fixed = [], [], [], [], [], []
  for j, name in enumerate(actions):
    own = target == j
    y = labels[own, j]
    reason = identity_reason(y)
    few = reason is None and int(y.sum()) < min_positives_for_slope
    if few:
      slope, intercept = 1.0, fit_intercept(logits[own, j], y)
      logging.info(
        "calibration of %s: %d positives among its %d target rows (< %d): intercept only, a = 1",
        name,
        int(y.sum()),
        y.size,
        min_positives_for_slope,
      )
    else:
      slope, intercept = fit_platt(logits[own, j], y)
    fixed.append(f"{int(y.sum())} positives < {min_positives_for_slope}" if few else None)
    if reason is not None:
      logging.warning(
        "calibration of %s: %s among its %d target rows; keeping (a, b) = (1, 0)",
        name,
        reason,
        y.size,
      )
    elif slope == 0:
      # Only a head that ranks its own traffic worse than chance would get a slope < 0.
      logging.warning(
        "calibration of %s: the head ranks its %d validation target rows worse "
        "than chance; calibrated to their base rate (a = 0) instead of reversing "
        "it",
        name,
        y.size,
      )
    a.append(slope)
    b.append(intercept)
    rows.append(int(y.size))
    positives.append(int(y.sum()))
    reasons.append(reason)
  fitted_on = {
    "rows": rows,
    "positives": positives,
    "identity_because": reasons,
    "slope_fixed_because": fixed,
  }
  fitted_on.update(source or {})
  return Calibration(
    actions=tuple(actions), a=tuple(a), b=tuple(b), checkpoint=checkpoint, fitted_on=fitted_on
  )


def _number_list(data: Mapping[str, Any], key: str, n: int, path: str) -> Tuple[float, ...]:
  values = data[key]
  if (
    not isinstance(values, list)
    or len(values) != n
    or any(
      isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in values
    )
  ):
    raise CalibrationError(
      f"{path}: {key!r} must be a list of {n} finite numbers (one per action), got {values!r}"
    )
  return tuple(float(v) for v in values)


def load(path: str, actions: Sequence[str]) -> Calibration:
  """Reads a calibration file and checks it against the model's actions.

  Args:
    path: The `calibration.json`.
    actions: The model's N action names (its schema's), in column order.

  Raises:
    CalibrationError: naming `path`, if it is not valid JSON of the documented form, or its
      actions are not the model's.
  """
  with open(path, encoding="utf-8") as f:
    try:
      data = json.load(f)
    except json.JSONDecodeError as e:
      raise CalibrationError(f"{path}: not valid JSON ({e})") from None
  keys = ("checkpoint", "checkpoint_sha256", "actions", "a", "b", "fitted_on")
  missing = [k for k in keys if not isinstance(data, dict) or k not in data]
  if missing:
    raise CalibrationError(f"{path}: not a calibration file, it lacks {missing}")
  if data["actions"] != list(actions):
    raise CalibrationError(
      f"{path}: calibrated actions {data['actions']} are not the model's "
      f"actions {list(actions)}; it belongs to another model"
    )
  return Calibration(
    actions=tuple(actions),
    a=_number_list(data, "a", len(actions), path),
    b=_number_list(data, "b", len(actions), path),
    checkpoint=CheckpointRef(str(data["checkpoint"]), str(data["checkpoint_sha256"])),
    fitted_on=data["fitted_on"],
  )


def for_checkpoint(
  model_dir: str, actions: Sequence[str], checkpoint: str
) -> Optional[Calibration]:
  """The calibration of `model_dir` if it was fitted for `checkpoint`, else None.

  Args:
    model_dir: The model directory.
    actions: The model's action names.
    checkpoint: The checkpoint the model was restored from (path prefix).

  Returns:
    None when there is no `calibration.json`, or (with a warning) when it was fitted for
    other weights, e.g. before training resumed: scoring then uses the raw probabilities.

  Raises:
    CalibrationError: if the file is malformed or belongs to another model's actions.
  """
  path = calibration_path(model_dir)
  if not os.path.exists(path):
    return None
  calibration = load(path, actions)
  loaded = CheckpointRef.of(model_dir, checkpoint)
  if calibration.checkpoint.sha256 != loaded.sha256:
    logging.warning(
      "%s was fitted for checkpoint %s (index sha256 %s), not for the restored %s (%s): "
      "IGNORED, scores are the raw, uncalibrated probabilities. Refit it with "
      "`python -m pipelines.train ... --calibrate`",
      path,
      calibration.checkpoint.name,
      calibration.checkpoint.sha256[:12],
      loaded.name,
      loaded.sha256[:12],
    )
    return None
  return calibration
