"""The joint KAML objective (eq. 13): gamma * BCE + (1 - gamma) * ranking + regularization.

`regularization` is the sum of the model's label-free losses (`sum(model.losses)`, e.g. TAML's
self-distillation term); the model registers them with `add_loss` and the trainer passes
their sum in, so this module never needs the model.

Every term is reported separately, and the objective can be computed either from one batch
(`__call__`) or from sufficient statistics all-reduced across workers (`from_statistics`).
With gamma = 1 (the base model's plain masked BCE) the ranking loss is not computed at all.

Soft ADM (`extended_weight`, see `kaml_tf.losses.soft_adm`): an extended cell (mask 1, not the
row's target) weighs w_k in the BCE, and in the ranking loss when `masked_pairs_only`; the
loss builds the cell weights from the targets `mask` and `is_target`.
"""

import math
import numbers
from typing import Any, Dict, Optional

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf.losses import masked_bce
from kaml_tf.losses import ranking
from kaml_tf.losses import soft_adm
from kaml_tf.losses import statistics_loss

# Keys of the statistics dict; each value is (N,) float32 and is all-reduced with SUM.
BCE_SUM = "bce_sum"
BCE_COUNT = "bce_count"
RANK_SUM = "rank_sum"
RANK_COUNT = "rank_count"
STATISTICS_KEYS = (BCE_SUM, BCE_COUNT, RANK_SUM, RANK_COUNT)
# The counts (divisors) among them: global on every replica (`statistics_loss`).
COUNT_KEYS = (BCE_COUNT, RANK_COUNT)

# Keys of the returned dict of scalars.
TERMS = ("bce", "rank", "regularization", "total")


@tf.keras.utils.register_keras_serializable(package="kaml_tf")
class KamlLoss:
  """gamma * masked dynamic-average BCE + (1 - gamma) * RLU ranking loss + regularization.

  With `extended_weight`, the BCE is soft ADM's: sum_k (sum_i c_ik BCE_ik) / (sum_i c_ik) with
  c_ik = mask_ik * (t_ik + (1 - t_ik) * w_k) (`kaml_tf.losses.soft_adm`).

  Example (one worker):
    loss = KamlLoss(gamma=0.8)
    terms = loss(labels, logits, mask, regularization=tf.add_n(model.losses))
    terms["total"]   # the training objective; terms["bce"], terms["rank"] for logging

  Example (many replicas): `statistics_loss.all_reduce_statistics(statistics, COUNT_KEYS)`
  gives each replica its share to differentiate (local sums, global counts) and the global
  statistics to log; `from_statistics` reduces either (see `statistics_loss` for why).
  """

  def __init__(
    self,
    gamma: float,
    bce_weights: statistics_loss.ActionWeights = None,
    betas: statistics_loss.ActionWeights = None,
    masked_pairs_only: bool = False,
    name: str = "kaml_loss",
    extended_weight: statistics_loss.ActionWeights = None,
  ):
    """Creates the joint loss.

    Args:
      gamma: Weight of the BCE in [0, 1]; the ranking loss gets 1 - gamma. 1 disables RLU.
      bce_weights: Per-action BCE weights w_k (None, a number, or one per action).
      betas: Per-action ranking weights beta_k (None, a number, or one per action).
      masked_pairs_only: Restrict ranking pairs to masked samples (ablation).
      name: Name scope of the ops.
      extended_weight: Soft ADM: the weight w_k in [0, 1] of an extended cell (None = 1, ADM
        as is; one number for all actions, or one per action). Needs `is_target` in
        `statistics` unless every weight is 1.

    Raises:
      ValueError: if gamma is not a number in [0, 1], or a weight is invalid.
    """
    if (
      not isinstance(gamma, numbers.Real)
      or isinstance(gamma, bool)
      or not math.isfinite(gamma)
      or not 0.0 <= gamma <= 1.0
    ):
      raise ValueError(f"gamma must be a number in [0, 1], got {gamma!r}")
    self.gamma = float(gamma)
    self.name = name
    self.bce = masked_bce.MaskedBinaryCrossentropy(weights=bce_weights, name="masked_bce")
    self.rank = ranking.PairwiseRankingLoss(
      betas=betas, masked_pairs_only=masked_pairs_only, name="rlu_rank"
    )
    self.extended_weight = soft_adm.check_extended_weight(extended_weight)

  @property
  def uses_ranking(self) -> bool:
    """False when gamma == 1: the ranking loss is then never computed."""
    return self.gamma < 1.0

  @property
  def soft(self) -> bool:
    """True when some extended cell weighs less than 1 (soft ADM)."""
    return not soft_adm.is_hard(self.extended_weight)

  def statistics(
    self,
    labels: tf.Tensor,
    logits: tf.Tensor,
    mask: tf.Tensor,
    is_target: Optional[tf.Tensor] = None,
  ) -> Dict[str, tf.Tensor]:
    """Per-action sufficient statistics of both losses.

    Args:
      labels: (batch, N) float32 reported labels.
      logits: (batch, N) float32 logits.
      mask: (batch, N) float32 0/1 training mask.
      is_target: (batch, N) float32 0/1 one_hot(target action); needed (and only read) when
        `extended_weight` has a weight below 1.

    Returns:
      Dict with keys `STATISTICS_KEYS`, each (N,) float32. The ranking entries are zeros when
      gamma == 1, so the structure to all-reduce is the same for every gamma. Under soft ADM
      the counts are sums of cell (or pair) weights.

    Raises:
      ValueError: if `extended_weight` is soft and `is_target` is None.
    """
    if self.soft and is_target is None:
      raise ValueError(
        f"extended_weight={self.extended_weight!r} needs is_target (the "
        "targets' one_hot of each row's target action) to tell extended cells "
        "from target cells"
      )
    with tf.name_scope(self.name):
      weights = soft_adm.cell_weights(mask, is_target, self.extended_weight) if self.soft else mask
      bce_sum, bce_count = self.bce.statistics(labels, logits, weights)
      if self.uses_ranking:
        rank_sum, rank_count = self._rank_statistics(labels, logits, mask, is_target)
      else:
        rank_sum = rank_count = tf.zeros_like(bce_sum)
      return {BCE_SUM: bce_sum, BCE_COUNT: bce_count, RANK_SUM: rank_sum, RANK_COUNT: rank_count}

  def _rank_statistics(self, labels, logits, mask, is_target):
    """Ranking statistics; pairs of extended cells weigh w_k when they come from the mask.

    Soft masked pairs cost a second pass over the base pairs (a subset of the ADM pairs).
    """
    adm = self.rank.statistics(labels, logits, mask)
    # Default pairs ignore the mask, and so the extended weight (see soft_adm's docstring).
    if not (self.soft and self.rank.masked_pairs_only):
      return adm
    base = self.rank.statistics(labels, logits, soft_adm.base_cells(mask, is_target))
    return soft_adm.interpolate(adm, base, self.extended_weight)

  def from_statistics(
    self, statistics: Dict[str, tf.Tensor], regularization: Optional[tf.Tensor] = None
  ) -> Dict[str, tf.Tensor]:
    """The objective from (possibly globally all-reduced) statistics.

    Args:
      statistics: Dict with keys `STATISTICS_KEYS`, each (N,) float32.
      regularization: Optional float scalar, the sum of the model's label-free losses.

    Returns:
      Dict of float32 scalars with keys `TERMS`: "bce" and "rank" unweighted by gamma,
      "regularization" (0 when None) and "total" = gamma*bce + (1-gamma)*rank + regularization.
    """
    missing = [k for k in STATISTICS_KEYS if k not in statistics]
    if missing:
      raise ValueError(
        f"statistics lack {missing}; expected keys {list(STATISTICS_KEYS)}, "
        f"got {sorted(statistics)}"
      )
    with tf.name_scope(self.name):
      bce = self.bce.reduce(statistics[BCE_SUM], statistics[BCE_COUNT])
      if self.uses_ranking:
        rank = self.rank.reduce(statistics[RANK_SUM], statistics[RANK_COUNT])
      else:
        rank = tf.constant(0.0, tf.float32)
      if regularization is None:
        regularization = tf.constant(0.0, tf.float32)
      regularization = tf.cast(regularization, tf.float32)
      if regularization.shape.rank not in (None, 0):
        raise ValueError(f"regularization must be a scalar, got shape {regularization.shape}")
      total = self.gamma * bce + regularization
      if self.uses_ranking:
        total += (1.0 - self.gamma) * rank
      return {"bce": bce, "rank": rank, "regularization": regularization, "total": total}

  def __call__(
    self,
    labels: tf.Tensor,
    logits: tf.Tensor,
    mask: tf.Tensor,
    regularization: Optional[tf.Tensor] = None,
    is_target: Optional[tf.Tensor] = None,
  ) -> Dict[str, tf.Tensor]:
    """The objective on one batch; see `statistics` and `from_statistics`."""
    return self.from_statistics(self.statistics(labels, logits, mask, is_target), regularization)

  def get_config(self) -> Dict[str, Any]:
    bce_config = self.bce.get_config()
    rank_config = self.rank.get_config()
    return {
      "gamma": self.gamma,
      "bce_weights": bce_config["weights"],
      "betas": rank_config["betas"],
      "masked_pairs_only": rank_config["masked_pairs_only"],
      "name": self.name,
      "extended_weight": statistics_loss.weights_config(self.extended_weight),
    }

  @classmethod
  def from_config(cls, config: Dict[str, Any]) -> "KamlLoss":
    return cls(**config)
