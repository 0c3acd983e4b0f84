"""Tests of the protocol's report: the ADM share, positives, and the report of a conversion."""

import numpy as np

from kaml_tf.datasets.incomplete import report as report_lib


def test_adm_share_by_hand():
  # Groups 0 and 1; rows 0-2 of group 0, row 3 of group 1; two actions.
  group_row = np.array([0, 0, 0, 1])
  target = np.array([0, 0, 1, 1])
  labels = np.array([[0, 1], [0, 0], [0, 0], [1, 0]])
  share = report_lib.adm_share(("a", "b"), group_row, target, labels, num_groups=2)
  # a: row 3 has it reported, so group 1's row trains it; group 0 only on its target rows 0, 1.
  # b: group 0 has a reported b (row 0): rows 0-2 train it; row 3 is its target.
  assert share == {"a": 0.75, "b": 1.0}
  empty = report_lib.adm_share(("a",), np.zeros(0, int), np.zeros(0, int), np.zeros((0, 1)), 0)
  assert empty == {"a": None}
