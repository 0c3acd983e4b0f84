"""A masked, per-action streaming AUC for training logs.

Scores are bucketed into `num_buckets` equal-width probability bins; per action, the metric
keeps weighted histograms of positives and negatives. AUC is the Mann-Whitney statistic on the
bins: a positive beats every negative in a lower bin and half of those in its own bin. It is
exact when no two distinct scores share a bin, and an approximation otherwise (use
`kaml_tf.evaluation.metrics.auc` for reported results). One update is a single
`unsorted_segment_sum` over (batch * N) entries, whatever N is, so it adds neither step time
nor trace time the way N separate `tf.keras.metrics.AUC` objects do.
"""

from typing import Any, Dict, Optional

import kaml_tf  # noqa: F401
import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="kaml_tf")
class MaskedStreamingAUC(tf.keras.metrics.Metric):
  """Per-action AUC over the samples whose mask is 1; `result()` is (N,) (NaN if undefined).

  Args:
    num_actions: N.
    num_buckets: Probability bins.
  """

  def __init__(self, num_actions: int, num_buckets: int = 1000, name: str = "masked_auc", **kwargs):
    super().__init__(name=name, **kwargs)
    if num_actions < 1:
      raise ValueError(f"num_actions must be >= 1, got {num_actions!r}")
    if num_buckets < 2:
      raise ValueError(f"num_buckets must be >= 2, got {num_buckets!r}")
    self.num_actions = num_actions
    self.num_buckets = num_buckets
    shape = (num_actions, num_buckets)
    self.positives = self.add_weight("positives", shape=shape, initializer="zeros")
    self.negatives = self.add_weight("negatives", shape=shape, initializer="zeros")

  def update_state(
    self, labels: tf.Tensor, probabilities: tf.Tensor, mask: Optional[tf.Tensor] = None
  ) -> None:
    """Adds a batch.

    Args:
      labels: (batch, N) 0/1.
      probabilities: (batch, N) in [0, 1].
      mask: (batch, N) 0/1 weights; all ones when None.
    """
    labels = tf.cast(labels, tf.float32)
    probabilities = tf.cast(probabilities, tf.float32)
    mask = tf.ones_like(labels) if mask is None else tf.cast(mask, tf.float32)
    bucket = tf.clip_by_value(
      tf.cast(tf.floor(probabilities * self.num_buckets), tf.int32), 0, self.num_buckets - 1
    )
    segment = bucket + tf.range(self.num_actions)[None, :] * self.num_buckets  # (batch, N)
    total = self.num_actions * self.num_buckets
    pos = tf.math.unsorted_segment_sum(
      tf.reshape(labels * mask, [-1]), tf.reshape(segment, [-1]), total
    )
    neg = tf.math.unsorted_segment_sum(
      tf.reshape((1.0 - labels) * mask, [-1]), tf.reshape(segment, [-1]), total
    )
    self.positives.assign_add(tf.reshape(pos, self.positives.shape))
    self.negatives.assign_add(tf.reshape(neg, self.negatives.shape))

  def result(self) -> tf.Tensor:
    below = tf.cumsum(self.negatives, axis=1, exclusive=True)
    wins = tf.reduce_sum(self.positives * (below + 0.5 * self.negatives), axis=1)
    pairs = tf.reduce_sum(self.positives, axis=1) * tf.reduce_sum(self.negatives, axis=1)
    return tf.where(pairs > 0, wins / tf.maximum(pairs, 1e-12), float("nan"))

  def reset_state(self) -> None:
    for v in (self.positives, self.negatives):
      v.assign(tf.zeros_like(v))

  def get_config(self) -> Dict[str, Any]:
    return {
      **super().get_config(),
      "num_actions": self.num_actions,
      "num_buckets": self.num_buckets,
    }
