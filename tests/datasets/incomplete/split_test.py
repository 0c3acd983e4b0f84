"""Tests of the split: by time, at random (by rank), and the negative sampling of each split."""

import numpy as np
import pytest

from kaml_tf.datasets.incomplete import split as split_lib
from kaml_tf.datasets.incomplete.errors import ConversionError


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
  is_test, got_boundary = split_lib.split_by_time(np.array(times, np.int64), test_fraction)
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
    split_lib.split_by_time(np.array(times, np.int64), test_fraction)


@pytest.mark.parametrize(
  "rate,kept_zero_rows", [(0.0, 0), (0.5, 2), (0.3, 1), (0.375, 2), (1.0, 4)]
)
def test_sample_negatives_keeps_round_half_up_of_the_all_zero_rows(rate, kept_zero_rows):
  all_zero = np.array([True, False, True, True, False, True])
  keep = split_lib.sample_negatives(all_zero, rate, np.random.default_rng(3))
  assert keep[~all_zero].all()
  assert keep[all_zero].sum() == kept_zero_rows  # 4 rows: 0.3 -> 1.2 -> 1, 0.375 -> 1.5 -> 2.


def test_split_rows_splits_by_time_then_samples_each_split():
  # Rows by time: 3 (t 1), 0 (2), 4 (3), 1 (4) | 2 (5), 5 (6). cut = round(0.7 * 6) = 4.
  time_ms = np.array([2, 4, 5, 1, 3, 6], np.int64)
  truth = np.array([[0], [1], [0], [0], [0], [0]], np.int64)
  split = split_lib.split_rows(time_ms, truth, 0.3, 1.0, True, seed=0)
  assert split.boundary == 5
  np.testing.assert_array_equal(split.is_test, [False, False, True, False, False, True])
  np.testing.assert_array_equal(split.all_zero, [True, False, True, True, True, True])
  assert split.keep.all()
  np.testing.assert_array_equal(split.source_rows["train"], [3, 0, 4, 1])
  np.testing.assert_array_equal(split.source_rows["test"], [2, 5])
  np.testing.assert_array_equal(
    split.split_of_row(), ["train", "train", "test"] + ["train"] * 2 + ["test"]
  )
  # Rate 0: only row 1 (a positive) stays in train; the test split is left alone if asked.
  sampled = split_lib.split_rows(time_ms, truth, 0.3, 0.0, False, seed=0)
  np.testing.assert_array_equal(sampled.source_rows["train"], [1])
  np.testing.assert_array_equal(sampled.source_rows["test"], [2, 5])
  assert sampled.boundary == 5
