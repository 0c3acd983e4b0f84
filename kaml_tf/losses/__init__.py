"""KAML losses: masked dynamic-average BCE (eq. 12), RLU ranking (eq. 11), joint (eq. 13).

Soft ADM (`soft_adm`) weighs ADM's extended cells by `extended_weight` inside the joint loss.

Each loss owns the training mask, takes `labels, logits, mask` of shape (batch, N), exposes
per-action sufficient statistics `(sums, counts)` for global averaging across replicas
(`statistics_loss`: the base class and the replica arithmetic), and is registered as
Keras-serializable under the package "kaml_tf".
"""

from kaml_tf.losses.joint import KamlLoss
from kaml_tf.losses.joint import STATISTICS_KEYS
from kaml_tf.losses.masked_bce import masked_bce_statistics
from kaml_tf.losses.masked_bce import MaskedBinaryCrossentropy
from kaml_tf.losses.ranking import PairwiseRankingLoss
from kaml_tf.losses.ranking import ranking_statistics
from kaml_tf.losses.statistics_loss import all_reduce_statistics
from kaml_tf.losses.statistics_loss import dynamic_average
from kaml_tf.losses.statistics_loss import StatisticsLoss

__all__ = [
  "KamlLoss",
  "STATISTICS_KEYS",
  "MaskedBinaryCrossentropy",
  "PairwiseRankingLoss",
  "StatisticsLoss",
  "all_reduce_statistics",
  "dynamic_average",
  "masked_bce_statistics",
  "ranking_statistics",
]
