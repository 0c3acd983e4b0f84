"""Tests of `day_filter`: the rows of [first, last] are kept, emptied batches dropped."""

import kaml_tf  # noqa: F401
import numpy as np
import tensorflow as tf

from kaml_tf.data import day_filter


def _batch(days):
  days = np.asarray(days, np.int64)
  return {"day": tf.constant(days), "user": tf.constant(100 + np.arange(len(days)))}


def test_in_days_keeps_the_inclusive_range():
  kept = day_filter.in_days(_batch([3, 4, 5, 6, 7, 5]), (4, 6))
  np.testing.assert_array_equal(kept["day"], [4, 5, 6, 5])
  np.testing.assert_array_equal(kept["user"], [101, 102, 103, 105])


def test_keep_days_drops_emptied_batches():
  batches = tf.data.Dataset.from_tensor_slices({"day": [[1, 2], [5, 9], [8, 9]]})
  kept = day_filter.keep_days(batches, (2, 5), deterministic=True)
  assert [b["day"].tolist() for b in kept.as_numpy_iterator()] == [[2], [5]]
