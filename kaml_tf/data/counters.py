"""`InputCounters`: what input pipelines produced (samples, unknown ad tasks, cold starts)."""

from typing import List, Optional, Tuple

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
from absl import logging
import tensorflow as tf


class InputCounters:
  """Host-side counts of what input pipelines produced: samples, unknown ad tasks, cold starts.

  The variables are created eagerly, outside any `tf.function`, and the pipelines add to them
  from their parsing functions, so one object can be shared by every pipeline of a run (per
  worker under multi-worker training: sum them across workers). Batches a pipeline prefetched
  are counted too.
  """

  def __init__(self):
    with tf.init_scope():
      self._unknown = tf.Variable(
        tf.constant(0, tf.int64), trainable=False, name="unknown_ad_task_samples"
      )
      self._samples = tf.Variable(tf.constant(0, tf.int64), trainable=False, name="samples_read")
      self._cold_start = tf.Variable(
        tf.constant(0, tf.int64), trainable=False, name="cold_start_samples"
      )

  @property
  def unknown_ad_task_samples(self) -> int:
    """Samples whose ad task is missing from the statistics (given the base mask)."""
    return int(self._unknown.numpy())

  @property
  def samples_read(self) -> int:
    return int(self._samples.numpy())

  @property
  def cold_start_samples(self) -> int:
    """Point-in-time samples whose ad task had no statistics for their day (base mask)."""
    return int(self._cold_start.numpy())

  def add(
    self, unknown: tf.Tensor, samples: tf.Tensor, cold_start: Optional[tf.Tensor] = None
  ) -> List[tf.Operation]:
    """The in-graph updates for one batch (int64 scalars)."""
    updates = [self._unknown.assign_add(unknown), self._samples.assign_add(samples)]
    if cold_start is not None:
      updates.append(self._cold_start.assign_add(cold_start))
    return updates

  def reset(self) -> None:
    self._unknown.assign(0)
    self._samples.assign(0)
    self._cold_start.assign(0)

  def log(self, stats_source: str = "the statistics") -> Tuple[int, int]:
    """Logs and returns (unknown ad-task samples, samples read); logs cold starts too."""
    unknown, total = self.unknown_ad_task_samples, self.samples_read
    cold = self.cold_start_samples
    if cold:
      logging.warning(
        "%d of %d samples (%.3f%%) are cold starts: their ad task has no point-in-time "
        "statistics for their day in %s (no click in the window before it); they were given "
        "the base mask",
        cold,
        total,
        100.0 * cold / max(total, 1),
        stats_source,
      )
    if unknown:
      logging.warning(
        "%d of %d samples (%.3f%%) belong to ad tasks missing from %s; they were given the "
        "base mask",
        unknown,
        total,
        100.0 * unknown / max(total, 1),
        stats_source,
      )
    else:
      logging.info("%d samples read; no ad task was missing from %s", total, stats_source)
    return unknown, total
