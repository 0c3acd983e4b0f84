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

The loss is split into sufficient statistics (per-action sums and counts) and a reduction, the
`kaml_tf.losses.statistics_loss.StatisticsLoss` base class it shares with the ranking loss, so
that a multi-worker trainer can all-reduce the sums and counts and divide globally.
"""

from typing import Any, Dict, Optional, Tuple

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf.losses import statistics_loss


def masked_bce_statistics(
  labels: tf.Tensor, logits: tf.Tensor, mask: Optional[tf.Tensor]
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
  if mask is None:
    raise ValueError("the masked BCE needs a mask of shape (batch, num_actions), got mask=None")
  labels, logits, mask = statistics_loss.check_inputs(labels, logits, mask)
  # sigmoid_cross_entropy_with_logits is max(s, 0) - s*y + log(1 + exp(-|s|)): no overflow for
  # large |s|. Multiplying by the mask zeroes both the value and the gradient of unmasked cells.
  bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
  return tf.reduce_sum(bce * mask, axis=0), tf.reduce_sum(mask, axis=0)


@tf.keras.utils.register_keras_serializable(package="kaml_tf")
class MaskedBinaryCrossentropy(statistics_loss.StatisticsLoss):
  """Masked dynamic-average BCE (eq. 12) on logits.

  Example:
    loss = MaskedBinaryCrossentropy(weights=(1.0, 2.0))
    value = loss(labels, logits, mask)  # scalar: loss.reduce(*loss.statistics(labels, ...))

  Across replicas, see `kaml_tf.losses.statistics_loss.all_reduce_statistics`.
  """

  def __init__(self, weights: statistics_loss.ActionWeights = None, name: str = "masked_bce"):
    """Creates the loss.

    Args:
      weights: Per-action weights w_k: None (all 1), one number, or one number per action.
      name: Name scope of the ops.

    Raises:
      ValueError: if a weight is negative or not finite.
    """
    super().__init__(statistics_loss.check_action_weights(weights, "weights"), name)

  def statistics(
    self, labels: tf.Tensor, logits: tf.Tensor, mask: Optional[tf.Tensor]
  ) -> Tuple[tf.Tensor, tf.Tensor]:
    """Returns `(sums, counts)`, (N,) float32 each; see `masked_bce_statistics`."""
    with tf.name_scope(self.name):
      return masked_bce_statistics(labels, logits, mask)

  def get_config(self) -> Dict[str, Any]:
    return {"weights": statistics_loss.weights_config(self.action_weights), **super().get_config()}
