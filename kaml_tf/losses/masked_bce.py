"""Masked dynamic-average binary cross-entropy (KAML eq. 12) and its sufficient statistics.

For every action k the BCE is summed over the samples whose mask is 1 and divided by the
number of such samples in the batch; the per-action averages are then summed over actions,
optionally weighted:

    L_BCE = sum_k w_k * (sum_i mask_ik * BCE(y_ik, s_ik)) / (sum_i mask_ik)

The mask may also hold weights in [0, 1] (soft ADM, `kaml_tf.losses.soft_adm`): the sum is then
weighted and the count is the sum of the weights.

ADM makes the number of masked samples per action vary from batch to batch (and be 0 for
rare actions), so dividing by the batch's own count keeps each action's scale stable; an
action without masked samples contributes 0, never NaN.

The loss is split into sufficient statistics (per-action sums and counts) and a reduction,
so that a multi-worker trainer can all-reduce the sums and counts and divide globally. The
same reduction (`dynamic_average`) serves the ranking loss, whose statistics have the same
form.
"""

import math
import numbers
from typing import Any, Dict, Sequence, Tuple, Union

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

# Per-action weights: None (all 1), one number for every action, or one number per action.
ActionWeights = Union[None, float, Sequence[float]]


def check_action_weights(value: ActionWeights, what: str) -> Union[None, float, Tuple[float, ...]]:
  """Validates per-action loss weights and returns them as float / tuple of floats / None.

  Args:
    value: None (every action weighs 1), a number applied to every action, or one number
      per action.
    what: The hyper-parameter's name, quoted in error messages.

  Returns:
    None, a float, or a tuple of floats.

  Raises:
    ValueError: if a weight is not a finite non-negative number, or the sequence is empty.
  """
  if value is None:
    return None
  if _is_number(value):
    return _check_weight(value, what, value)
  if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
    raise ValueError(f"{what} must be None, a number or a sequence of numbers, got {value!r}")
  if not value:
    raise ValueError(f"{what} must not be empty, got {value!r}")
  return tuple(_check_weight(v, what, value) for v in value)


def _is_number(value: Any) -> bool:
  return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_weight(v: Any, what: str, whole: Any) -> float:
  if not _is_number(v) or not math.isfinite(v) or v < 0:
    raise ValueError(f"{what} must be finite non-negative numbers, got {whole!r}")
  return float(v)


def check_inputs(
  labels: tf.Tensor, logits: tf.Tensor, mask: tf.Tensor
) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """Converts `labels, logits, mask` to float32 and checks they are (batch, N) alike.

  Logits are cast to float32 too, so that a mixed-precision model still gets a float32 loss.

  Raises:
    ValueError: naming the argument whose static shape is not rank 2 or does not match.
  """
  labels = tf.cast(labels, tf.float32)
  logits = tf.cast(logits, tf.float32)
  mask = tf.cast(mask, tf.float32)
  for name, t in (("labels", labels), ("logits", logits), ("mask", mask)):
    if t.shape.rank is not None and t.shape.rank != 2:
      raise ValueError(f"{name} must have shape (batch, num_actions), got shape {t.shape}")
  for name, t in (("labels", labels), ("mask", mask)):
    if not t.shape.is_compatible_with(logits.shape):
      raise ValueError(f"{name} shape {t.shape} does not match logits shape {logits.shape}")
  return labels, logits, mask


def masked_bce_statistics(
  labels: tf.Tensor, logits: tf.Tensor, mask: tf.Tensor
) -> Tuple[tf.Tensor, tf.Tensor]:
  """Sufficient statistics of the masked BCE.

  Args:
    labels: (batch, N) float32 0/1 reported labels.
    logits: (batch, N) float32 logits.
    mask: (batch, N) float32 0/1; 1 where the sample trains action k (ADM or base mask). Soft
      ADM passes cell weights in [0, 1] instead (`kaml_tf.losses.soft_adm.cell_weights`).

  Returns:
    `(sums, counts)`, both (N,) float32: the mask-weighted BCE sum of each action, and the sum
    of the mask (the number of masked samples for a 0/1 mask) of each action.
  """
  labels, logits, mask = check_inputs(labels, logits, mask)
  # sigmoid_cross_entropy_with_logits is max(s, 0) - s*y + log(1 + exp(-|s|)): no overflow for
  # large |s|. Multiplying by the mask zeroes both the value and the gradient of unmasked cells.
  bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
  return tf.reduce_sum(bce * mask, axis=0), tf.reduce_sum(mask, axis=0)


def dynamic_average(sums: tf.Tensor, counts: tf.Tensor, weights: ActionWeights = None) -> tf.Tensor:
  """Reduces per-action statistics to `sum_k w_k * sums_k / counts_k`, with 0 where count is 0.

  The result is linear in `sums`: with the *global* counts, per-replica values computed from
  local sums add up to the global loss, so per-replica gradients can simply be summed.

  Args:
    sums: (N,) float32 per-action loss sums.
    counts: (N,) float32 per-action counts (samples or pairs).
    weights: None (all 1), one number, or N numbers (already validated).

  Returns:
    A float32 scalar.

  Raises:
    ValueError: if the number of weights does not match N.
  """
  sums = tf.convert_to_tensor(sums, tf.float32)
  counts = tf.convert_to_tensor(counts, tf.float32)
  per_action = tf.math.divide_no_nan(sums, counts)
  if weights is None:
    return tf.reduce_sum(per_action)
  if isinstance(weights, tuple):
    n = per_action.shape[0]
    if n is not None and n != len(weights):
      raise ValueError(f"got {len(weights)} per-action weights {list(weights)} for {n} actions")
  return tf.reduce_sum(per_action * tf.constant(weights, tf.float32))


@tf.keras.utils.register_keras_serializable(package="kaml_tf")
class MaskedBinaryCrossentropy:
  """Masked dynamic-average BCE (eq. 12) on logits.

  Not a `tf.keras.losses.Loss`: Keras' `(y_true, y_pred, sample_weight)` contract would apply
  the mask as an element weight and average over the whole batch (eq. 7), whereas eq. 12
  divides each action by its own masked count, and a distributed trainer needs the per-action
  statistics rather than a reduced scalar.

  Example:
    loss = MaskedBinaryCrossentropy(weights=(1.0, 2.0))
    value = loss(labels, logits, mask)            # scalar
    sums, counts = loss.statistics(labels, logits, mask)
    value = loss.reduce(all_reduce(sums), all_reduce(counts))   # global average
  """

  def __init__(self, weights: ActionWeights = None, name: str = "masked_bce"):
    """Creates the loss.

    Args:
      weights: Per-action weights w_k: None (all 1), one number, or one number per action.
      name: Name scope of the ops.

    Raises:
      ValueError: if a weight is negative or not finite.
    """
    self.weights = check_action_weights(weights, "weights")
    self.name = name

  def statistics(
    self, labels: tf.Tensor, logits: tf.Tensor, mask: tf.Tensor
  ) -> Tuple[tf.Tensor, tf.Tensor]:
    """Returns `(sums, counts)`, (N,) float32 each; see `masked_bce_statistics`."""
    with tf.name_scope(self.name):
      return masked_bce_statistics(labels, logits, mask)

  def reduce(self, sums: tf.Tensor, counts: tf.Tensor) -> tf.Tensor:
    """Weighted dynamic average of (possibly globally all-reduced) statistics; a scalar."""
    with tf.name_scope(self.name):
      return dynamic_average(sums, counts, self.weights)

  def __call__(self, labels: tf.Tensor, logits: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """The batch loss: a float32 scalar (labels, logits, mask are (batch, N))."""
    return self.reduce(*self.statistics(labels, logits, mask))

  def get_config(self) -> Dict[str, Any]:
    weights = list(self.weights) if isinstance(self.weights, tuple) else self.weights
    return {"weights": weights, "name": self.name}

  @classmethod
  def from_config(cls, config: Dict[str, Any]) -> "MaskedBinaryCrossentropy":
    return cls(**config)
