"""Tests of the conversion's data report: the ADM share, the counts and the markdown summary."""

import numpy as np
import pytest

from kaml_tf import schema as schema_lib
from kaml_tf.datasets.kuairand import conversion
from kaml_tf.datasets.kuairand import report as report_lib
from tests.datasets.kuairand.conftest import ACTIONS
from tests.datasets.kuairand.conftest import excerpt_config


def test_adm_share_by_hand():
  # Videos 0 and 1; rows 0-2 of video 0, row 3 of video 1; two actions.
  video_row = np.array([0, 0, 0, 1])
  target = np.array([0, 0, 1, 1])
  labels = np.array([[0, 1], [0, 0], [0, 0], [1, 0]])
  share = report_lib.adm_share(("a", "b"), video_row, target, labels, num_videos=2)
  # a: row 3 has it reported, so video 1's row trains it; video 0 only on its target rows 0, 1.
  # b: video 0 has a reported b (row 0): rows 0-2 train it; row 3 is its target.
  assert share == {"a": 0.75, "b": 1.0}
  empty = report_lib.adm_share(("a",), np.zeros(0, int), np.zeros(0, int), np.zeros((0, 1)), 0)
  assert empty == {"a": None}


def test_excerpt_report_matches_the_records(excerpt):
  converted = conversion.convert(excerpt_config(excerpt, seed=1))
  report = converted.report
  for split in conversion.SPLITS:
    columns = converted.splits[split]
    got = report["splits"][split]
    rows = columns[schema_lib.DAY].size
    assert got["rows"] == rows
    for j, a in enumerate(ACTIONS):
      target = columns[schema_lib.TARGET_ACTION] == j
      assert got["target_share"][a] == pytest.approx(target.mean(), abs=1e-12)
      assert got["true_positive_rate"][a] == pytest.approx(
        columns["true_label_" + a].mean(), abs=1e-12
      )
      assert got["reported_positive_rate"][a] == pytest.approx(
        columns["label_" + a].mean(), abs=1e-12
      )
  assert report["splits"]["all"]["rows"] == 200
  assert sum(report["videos"]["target_share"].values()) == pytest.approx(1.0)
  assert report_lib.format_report(report).count("\n| ") == len(ACTIONS) + 1
