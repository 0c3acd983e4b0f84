"""RLU pairwise ranking loss (KAML eq. 11) and its sufficient statistics.

For each action k, every pair (i, j) of the batch with a reported positive y_ik = 1 and a
zero y_jk = 0 contributes -log sigmoid(s_ik - s_jk) = softplus(-(s_ik - s_jk)). A zero may be
a true negative or an unreported conversion, but either way it converts less surely than a
reported positive, so the pair's order is certain even where the BCE label is not. Pairs
are averaged per action and weighted by beta_k:

    L_rank = sum_k beta_k * (sum over valid pairs of action k) / (number of valid pairs of k)

By default all samples of the batch take part, masked or not: the unlabelled samples are the
signal RLU adds. `masked_pairs_only=True` restricts both i and j to samples with mask 1 for
action k (ablation).

Memory and time are O(P x B) for P reported positives in a batch of B: per action, the
positives' scores are compared with that action's zeros only (one (P_k, Z_k) block, every
entry a valid pair), never a B x B x N tensor, so the paper's batch of 5000 with a few percent
positives costs a few million pair terms.
"""

from typing import Any, Dict, Optional, Tuple

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf.losses import statistics_loss


def ranking_statistics(
  labels: tf.Tensor,
  logits: tf.Tensor,
  mask: Optional[tf.Tensor] = None,
  masked_pairs_only: bool = False,
) -> Tuple[tf.Tensor, tf.Tensor]:
  """Sufficient statistics of the pairwise ranking loss.

  Args:
    labels: (batch, N) float32 reported labels; 1 is a positive, 0 a zero (other values take
      part in no pair).
    logits: (batch, N) float32 logits s.
    mask: (batch, N) float32 0/1 training mask; only read when `masked_pairs_only` (may be
      None otherwise).
    masked_pairs_only: Keep only pairs whose two samples both have mask 1 for the action.

  Returns:
    `(sums, counts)`, both (N,) float32: per action, the sum of softplus(-(s_i - s_j)) over the
    valid pairs and the number of valid pairs.
  """
  if mask is None:
    if masked_pairs_only:
      raise ValueError("masked_pairs_only=True needs a mask, got mask=None")
    mask = tf.ones_like(logits)
  labels, logits, mask = statistics_loss.check_inputs(labels, logits, mask)
  if logits.shape[1] is None:
    raise ValueError(f"the number of actions must be static, got logits of shape {logits.shape}")

  is_positive = tf.equal(labels, 1.0)
  is_zero = tf.equal(labels, 0.0)
  if masked_pairs_only:
    in_mask = mask > 0.0
    is_positive = tf.logical_and(is_positive, in_mask)
    is_zero = tf.logical_and(is_zero, in_mask)
  # Action-major columns, so each action's scores are one contiguous row.
  scores, is_positive, is_zero = (tf.transpose(t) for t in (logits, is_positive, is_zero))
  sums, counts = [], []
  for k in range(logits.shape[1]):
    # Compacting both sides first means the (P_k, Z_k) block holds valid pairs only: no mask
    # to multiply, and no (P, B) gather of a whole column per positive.
    positive_scores = tf.boolean_mask(scores[k], is_positive[k])  # (P_k,)
    zero_scores = tf.boolean_mask(scores[k], is_zero[k])  # (Z_k,)
    sums.append(pairwise_softplus_sum(positive_scores, zero_scores))
    counts.append(
      tf.cast(tf.size(positive_scores), tf.float32) * tf.cast(tf.size(zero_scores), tf.float32)
    )
  return tf.stack(sums), tf.stack(counts)


@tf.custom_gradient
def pairwise_softplus_sum(positive_scores: tf.Tensor, zero_scores: tf.Tensor):
  """`sum_{p, z} softplus(zero_scores[z] - positive_scores[p])`, i.e. -log sigmoid(s_p - s_z).

  The gradient is written out because autodiff would broadcast the upstream scalar to a
  (P, Z) tensor, multiply it into SoftplusGrad and negate one side's reduction; here the
  (P, Z) sigmoid is reduced along each axis directly: faster forward and backward, with the
  same values and gradients
  (measured: docs/results/timings/library.md#ranking-loss-written-out-gradient).

  Args:
    positive_scores: (P,) float32 logits of the positives.
    zero_scores: (Z,) float32 logits of the zeros.

  Returns:
    A float32 scalar (0 when P or Z is 0), and its gradient function.
  """
  differences = zero_scores[tf.newaxis, :] - positive_scores[:, tf.newaxis]  # (P, Z)
  # softplus is stable for large |d|: no overflow, as -log sigmoid(-d) would have.
  total = tf.reduce_sum(tf.math.softplus(differences))

  def gradient(upstream):
    weights = tf.math.sigmoid(differences)  # d softplus(d) / dd
    return (-upstream * tf.reduce_sum(weights, axis=1), upstream * tf.reduce_sum(weights, axis=0))

  return total, gradient


@tf.keras.utils.register_keras_serializable(package="kaml_tf")
class PairwiseRankingLoss(statistics_loss.StatisticsLoss):
  """RLU pairwise ranking loss (eq. 11) on logits, averaged over valid pairs per action.

  Example:
    loss = PairwiseRankingLoss(betas=(1.0, 0.5))
    value = loss(labels, logits)  # scalar: loss.reduce(*loss.statistics(labels, logits))

  Across replicas, see `kaml_tf.losses.statistics_loss.all_reduce_statistics`.
  """

  def __init__(
    self,
    betas: statistics_loss.ActionWeights = None,
    masked_pairs_only: bool = False,
    name: str = "rlu_rank",
  ):
    """Creates the loss.

    Args:
      betas: Per-action weights beta_k: None (all 1), one number, or one number per action.
      masked_pairs_only: Restrict pairs to samples with mask 1 for the action (ablation); by
        default every sample of the batch takes part.
      name: Name scope of the ops.

    Raises:
      ValueError: if a beta is negative or not finite, or `masked_pairs_only` is not a bool.
    """
    super().__init__(statistics_loss.check_action_weights(betas, "betas"), name)
    if not isinstance(masked_pairs_only, bool):
      raise ValueError(f"masked_pairs_only must be a bool, got {masked_pairs_only!r}")
    self.masked_pairs_only = masked_pairs_only

  def statistics(
    self, labels: tf.Tensor, logits: tf.Tensor, mask: Optional[tf.Tensor] = None
  ) -> Tuple[tf.Tensor, tf.Tensor]:
    """Returns `(sums, counts)`, (N,) float32 each; see `ranking_statistics`."""
    with tf.name_scope(self.name):
      return ranking_statistics(labels, logits, mask, self.masked_pairs_only)

  def get_config(self) -> Dict[str, Any]:
    return {
      "betas": statistics_loss.weights_config(self.action_weights),
      "masked_pairs_only": self.masked_pairs_only,
      **super().get_config(),
    }
