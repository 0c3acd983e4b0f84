"""Tests of the stats section on the shared small logs."""

import kaml_tf  # noqa: F401
import pytest

from benchmarks import stats


def test_times_the_statistics_job(bench_config):
  result = stats.run(bench_config(window_days=7, read_batch_size=100))
  assert result["rows"] > 0 and result["ad_tasks"] > 0
  assert result["rows_per_second"] == pytest.approx(result["rows"] / result["seconds"])
  assert result["rows_per_cpu_second"] > 0
  assert (result["window_days"], result["read_batch_size"]) == (7, 100)


def test_summary_line():
  result = {"rows": 900, "seconds": 1.5, "rows_per_second": 600.0}
  assert stats.summary(result) == ["stats: 900 rows in 1.5 s, 600 rows/s"]
