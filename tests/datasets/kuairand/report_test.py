"""Tests of the conversion's data report: the counts and the markdown summary."""

import pytest

from kaml_tf import schema as schema_lib
from kaml_tf.datasets.kuairand import conversion
from kaml_tf.datasets.kuairand import report as report_lib
from tests.datasets.kuairand.conftest import ACTIONS
from tests.datasets.kuairand.conftest import excerpt_config


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
