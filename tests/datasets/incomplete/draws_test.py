"""Tests of the per-group draws and the labels they give the rows."""

import numpy as np

from kaml_tf.datasets.incomplete import draws


def test_draw_reporting_is_per_group_and_reports_the_target_plus_k():
  videos = np.array([5, 17, 3_381_812, 0, 44], np.int64)
  target, reported = draws.draw_reporting(videos, 4, 2, seed=0)
  assert reported.shape == (5, 4)
  np.testing.assert_array_equal(reported.sum(axis=1), [3] * 5)
  assert reported[np.arange(5), target].all()
  # A group's draw depends on the seed and its value only, not on the other groups.
  sub_target, sub_reported = draws.draw_reporting(videos[[3, 1]], 4, 2, seed=0)
  np.testing.assert_array_equal(sub_target, target[[3, 1]])
  np.testing.assert_array_equal(sub_reported, reported[[3, 1]])
  many = np.arange(200, dtype=np.int64)
  seed0, _ = draws.draw_reporting(many, 4, 0, seed=0)
  seed1, _ = draws.draw_reporting(many, 4, 0, seed=1)
  assert np.any(seed0 != seed1)
  assert set(seed0.tolist()) == {0, 1, 2, 3}
  _, only_target = draws.draw_reporting(many, 4, 0, seed=0)
  np.testing.assert_array_equal(only_target, np.arange(4)[None, :] == seed0[:, None])


def test_label_rows_give_each_row_its_group_draw():
  group_values = np.array([44, 5, 44, 17, 5], np.int64)
  truth = np.array([[1, 1, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1], [0, 0, 1]], np.int64)
  labels = draws.label_rows(group_values, truth, extra_reported=1, seed=3)
  np.testing.assert_array_equal(labels.groups, [5, 17, 44])
  np.testing.assert_array_equal(labels.group_row, [2, 0, 2, 1, 0])
  target, reported = draws.draw_reporting(np.array([5, 17, 44]), 3, 1, seed=3)
  np.testing.assert_array_equal(labels.group_target, target)
  np.testing.assert_array_equal(labels.target, target[[2, 0, 2, 1, 0]])
  np.testing.assert_array_equal(labels.reported, reported[[2, 0, 2, 1, 0]])
  np.testing.assert_array_equal(labels.labels, truth * reported[[2, 0, 2, 1, 0]])
  np.testing.assert_array_equal(labels.reported.sum(axis=1), [2] * 5)
