"""Tests of the days: from a time column, and the pseudo-days of the random split."""

import datetime

import numpy as np
import pyarrow as pa
import pytest

from kaml_tf.datasets.incomplete import days
from kaml_tf.datasets.incomplete.errors import ConversionError


def test_days_from_time_count_whole_days_from_the_first_day():
  # 1.5 days in seconds: the first day is day 1 of the epoch, so 86400 * 1.5 is day 0.
  times = np.array([129600, 172799, 172800, 400000])
  np.testing.assert_array_equal(days.days_from_time(times, 86400), [0, 0, 1, 3])


def test_time_values_of_each_column_type():
  stamps = pa.chunked_array([pa.array([0, 86_400_000], pa.timestamp("ms"))])
  values, per_day = days.time_values(stamps, "s", "t")
  assert per_day == 86_400_000 and values.tolist() == [0, 86_400_000]
  dates = pa.chunked_array([pa.array([datetime.date(1970, 1, 3)])])
  assert days.time_values(dates, "s", "t")[0].tolist() == [2]
  assert days.time_values(pa.chunked_array([[5]]), "ms", "t")[1] == 86_400_000
  with pytest.raises(ConversionError, match="time column 't' has type string"):
    days.time_values(pa.chunked_array([["x"]]), "s", "t")


def test_pseudo_days_by_hand():
  # 7 train rows (ranks 0..6) over 3 days: floor(r * 3 / 7) = 0 0 0 1 1 2 2; test rows day 3.
  ranks = np.array([6, 0, 1, 2, 3, 4, 5, 7, 8])
  np.testing.assert_array_equal(days.pseudo_days(ranks, 7, 3), [2, 0, 0, 0, 1, 1, 2, 3, 3])
