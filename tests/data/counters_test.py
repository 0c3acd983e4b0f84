"""Tests of `counters.InputCounters`: in-graph adds, reset and the logged totals."""

import kaml_tf  # noqa: F401
import tensorflow as tf

from kaml_tf.data import counters


def _add(c, unknown, samples, cold_start=None):
  as_int = lambda v: None if v is None else tf.constant(v, tf.int64)  # noqa: E731
  c.add(as_int(unknown), as_int(samples), as_int(cold_start))


def test_adds_and_reset():
  c = counters.InputCounters()
  _add(c, 2, 6)
  _add(c, 1, 4, cold_start=3)
  assert (c.unknown_ad_task_samples, c.samples_read, c.cold_start_samples) == (3, 10, 3)
  assert c.log("stats.parquet") == (3, 10)
  c.reset()
  assert (c.unknown_ad_task_samples, c.samples_read, c.cold_start_samples) == (0, 0, 0)


def test_adds_from_a_dataset_map():
  c = counters.InputCounters()

  def count(batch):
    with tf.control_dependencies(c.add(tf.constant(0, tf.int64), tf.size(batch, tf.int64))):
      return tf.identity(batch)

  list(tf.data.Dataset.range(7).batch(3).map(count))
  assert c.samples_read == 7
