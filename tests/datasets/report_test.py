"""Tests of the report parts both datasets share: ratios, percentages, counts, tables."""

import numpy as np
import pytest

from kaml_tf.datasets import report


@pytest.mark.parametrize(
  "numerator,denominator,expected",
  [(1, 4, 0.25), (0, 3, 0.0), (np.int64(3), np.int64(2), 1.5), (0, 0, None), (5, 0, None)],
)
def test_ratio(numerator, denominator, expected):
  got = report.ratio(numerator, denominator)
  assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
  "share,expected",
  [(0.125, "12.50%"), (0.0, "0.00%"), (1.0, "100.00%"), (1 / 3, "33.33%"), (None, "-")],
)
def test_percent(share, expected):
  assert report.percent(share) == expected


def test_split_counter_by_hand():
  counter = report.SplitCounter(("a", "b"), ("a", "b", "other"))
  # Train: rows targeting a, b, other; test: one row targeting a, then an empty batch.
  counter.add(
    "train",
    group=np.array([0, 1, 2]),
    reporting=np.array([[1, 0], [1, 1], [0, 1]], bool),
    truth=np.array([[1, 0], [1, 1], [0, 1]]),
    labels=np.array([[1, 0], [0, 1], [0, 0]]),
  )
  counter.add(
    "test",
    group=np.array([0]),
    reporting=np.array([[1, 1]], bool),
    truth=np.array([[0, 1]]),
    labels=np.array([[0, 1]]),
  )
  counter.add(
    "test",
    group=np.zeros(0, np.int64),
    reporting=np.zeros((0, 2), bool),
    truth=np.zeros((0, 2), np.int64),
    labels=np.zeros((0, 2), np.int64),
  )
  got = counter.report()
  assert set(got) == {"train", "test", "all"}
  assert got["train"] == {
    "rows": 3,
    "target_share": {"a": 1 / 3, "b": 1 / 3, "other": 1 / 3},
    "reporting_share": {"a": 2 / 3, "b": 2 / 3},
    "true_positive_rate": {"a": 2 / 3, "b": 2 / 3},
    "reported_positive_rate": {"a": 1 / 3, "b": 1 / 3},
    # a: 1 positive on its 1 target row; b: 1 on 1.
    "target_traffic_true_positive_rate": {"a": 1.0, "b": 1.0},
  }
  assert got["test"]["target_traffic_true_positive_rate"] == {"a": 0.0, "b": None}
  assert got["all"]["rows"] == 4
  assert got["all"]["target_share"] == {"a": 0.5, "b": 0.25, "other": 0.25}
  assert got["all"]["true_positive_rate"] == {"a": 0.5, "b": 0.75}
  assert got["all"]["target_traffic_true_positive_rate"] == {"a": 0.5, "b": 1.0}


def test_split_counter_of_an_empty_split_has_no_rates():
  counter = report.SplitCounter(("a",), ("a",))
  counter.add(
    "train", np.zeros(0, np.int64), np.zeros((0, 1), bool), np.zeros((0, 1)), np.zeros((0, 1))
  )
  got = counter.report()["train"]
  assert got["rows"] == 0
  assert got["target_share"] == {"a": None} and got["true_positive_rate"] == {"a": None}


def test_split_counter_wants_the_actions_first():
  with pytest.raises(ValueError, match="groups must start with the actions"):
    report.SplitCounter(("a", "b"), ("other", "a", "b"))


def test_positive_rate_cells_and_markdown_table():
  split = {
    "true_positive_rate": {"a": 0.5},
    "reported_positive_rate": {"a": 0.25},
    "target_traffic_true_positive_rate": {"a": None},
  }
  assert report.positive_rate_cells(split, "a") == ["50.00%", "25.00%", "-"]
  assert report.markdown_table(("x", "y"), [["1", "2"], ["3", "4"]]) == [
    "| x | y |",
    "|---|---|",
    "| 1 | 2 |",
    "| 3 | 4 |",
  ]
