"""Tests of the group ids and stream keys."""

import numpy as np

from kaml_tf.datasets.incomplete import groups


def test_stream_keys_by_hand():
  assert groups.stream_key(17) == (0, 17)  # KuaiRand's per-video key.
  assert groups.stream_key(-4) == (3, 4)
  assert groups.stream_key("ab") == (2, 2, 0x6162)
  assert groups.stream_key("\x00ab") != groups.stream_key("ab")  # the length tells them apart


def test_ad_task_ids_raw_for_non_negative_ints_else_sorted_index():
  np.testing.assert_array_equal(
    groups.ad_task_ids(np.array([7, 40]), np.array([1, 0, 1])), [40, 7, 40]
  )
  np.testing.assert_array_equal(
    groups.ad_task_ids(np.array([-1, 5]), np.array([1, 0, 1])), [1, 0, 1]
  )
  np.testing.assert_array_equal(
    groups.ad_task_ids(np.array(["a", "b"], dtype=object), np.array([1, 1, 0])), [1, 1, 0]
  )
