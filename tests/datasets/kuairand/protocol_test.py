"""Tests of the protocol: per-video draws, labels, the time split and the negative sampling."""

import numpy as np
import pytest

from kaml_tf.datasets.kuairand import protocol
from kaml_tf.datasets.kuairand.config import ConversionError


@pytest.mark.parametrize(
  "times,test_fraction,expected_test,boundary",
  [
    # cut = round(0.8 * 10) = 8; sorted times [1 2 3 3 3 5 6 7 8 9] -> boundary 8.
    ([5, 1, 3, 3, 9, 7, 3, 2, 8, 6], 0.2, [4, 8], 8),
    # cut = round(0.6 * 5) = 3; sorted [1 2 2 2 3] -> boundary 2: the tied rows stay together.
    ([1, 2, 2, 2, 3], 0.4, [1, 2, 3, 4], 2),
    # cut = floor(0.75 * 6 + 0.5) = 5 (half up); boundary = 6th smallest = 60.
    ([60, 10, 20, 30, 40, 50], 0.25, [0], 60),
  ],
)
def test_split_by_time_by_hand(times, test_fraction, expected_test, boundary):
  is_test, got_boundary = protocol.split_by_time(np.array(times, np.int64), test_fraction)
  np.testing.assert_array_equal(np.flatnonzero(is_test), expected_test)
  assert got_boundary == boundary


@pytest.mark.parametrize(
  "times,test_fraction,match",
  [
    ([1, 2, 3], 0.1, "leaves no test rows"),
    ([4, 4, 4, 4], 0.5, "train split would be empty"),
  ],
)
def test_split_by_time_refuses_an_empty_split(times, test_fraction, match):
  with pytest.raises(ConversionError, match=match):
    protocol.split_by_time(np.array(times, np.int64), test_fraction)


@pytest.mark.parametrize(
  "rate,kept_zero_rows", [(0.0, 0), (0.5, 2), (0.3, 1), (0.375, 2), (1.0, 4)]
)
def test_sample_negatives_keeps_round_half_up_of_the_all_zero_rows(rate, kept_zero_rows):
  all_zero = np.array([True, False, True, True, False, True])
  keep = protocol.sample_negatives(all_zero, rate, np.random.default_rng(3))
  assert keep[~all_zero].all()
  assert keep[all_zero].sum() == kept_zero_rows  # 4 rows: 0.3 -> 1.2 -> 1, 0.375 -> 1.5 -> 2.


def test_draw_reporting_is_per_video_and_reports_the_target_plus_k():
  videos = np.array([5, 17, 3_381_812, 0, 44], np.int64)
  target, reported = protocol.draw_reporting(videos, 4, 2, seed=0)
  assert reported.shape == (5, 4)
  np.testing.assert_array_equal(reported.sum(axis=1), [3] * 5)
  assert reported[np.arange(5), target].all()
  # A video's draw depends on the seed and its id only, not on the other videos.
  sub_target, sub_reported = protocol.draw_reporting(videos[[3, 1]], 4, 2, seed=0)
  np.testing.assert_array_equal(sub_target, target[[3, 1]])
  np.testing.assert_array_equal(sub_reported, reported[[3, 1]])
  many = np.arange(200, dtype=np.int64)
  seed0, _ = protocol.draw_reporting(many, 4, 0, seed=0)
  seed1, _ = protocol.draw_reporting(many, 4, 0, seed=1)
  assert np.any(seed0 != seed1)
  assert set(seed0.tolist()) == {0, 1, 2, 3}
  _, only_target = protocol.draw_reporting(many, 4, 0, seed=0)
  np.testing.assert_array_equal(only_target, np.arange(4)[None, :] == seed0[:, None])


def test_label_rows_give_each_row_its_video_draw():
  video_ids = np.array([44, 5, 44, 17, 5], np.int64)
  truth = np.array([[1, 1, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1], [0, 0, 1]], np.int64)
  labels = protocol.label_rows(video_ids, truth, extra_reported=1, seed=3)
  np.testing.assert_array_equal(labels.videos, [5, 17, 44])
  np.testing.assert_array_equal(labels.video_row, [2, 0, 2, 1, 0])
  target, reported = protocol.draw_reporting(np.array([5, 17, 44]), 3, 1, seed=3)
  np.testing.assert_array_equal(labels.video_target, target)
  np.testing.assert_array_equal(labels.target, target[[2, 0, 2, 1, 0]])
  np.testing.assert_array_equal(labels.reported, reported[[2, 0, 2, 1, 0]])
  np.testing.assert_array_equal(labels.labels, truth * reported[[2, 0, 2, 1, 0]])
  np.testing.assert_array_equal(labels.reported.sum(axis=1), [2] * 5)


def test_split_rows_splits_by_time_then_samples_each_split():
  # Rows by time: 3 (t 1), 0 (2), 4 (3), 1 (4) | 2 (5), 5 (6). cut = round(0.7 * 6) = 4.
  time_ms = np.array([2, 4, 5, 1, 3, 6], np.int64)
  truth = np.array([[0], [1], [0], [0], [0], [0]], np.int64)
  split = protocol.split_rows(time_ms, truth, 0.3, 1.0, True, seed=0)
  assert split.boundary_time_ms == 5
  np.testing.assert_array_equal(split.is_test, [False, False, True, False, False, True])
  np.testing.assert_array_equal(split.all_zero, [True, False, True, True, True, True])
  assert split.keep.all()
  np.testing.assert_array_equal(split.source_rows["train"], [3, 0, 4, 1])
  np.testing.assert_array_equal(split.source_rows["test"], [2, 5])
  np.testing.assert_array_equal(
    split.split_of_row(), ["train", "train", "test"] + ["train"] * 2 + ["test"]
  )
  # Rate 0: only row 1 (a positive) stays in train; the test split is left alone if asked.
  sampled = protocol.split_rows(time_ms, truth, 0.3, 0.0, False, seed=0)
  np.testing.assert_array_equal(sampled.source_rows["train"], [1])
  np.testing.assert_array_equal(sampled.source_rows["test"], [2, 5])
  assert sampled.boundary_time_ms == 5
