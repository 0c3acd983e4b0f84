"""Tests of the stats section on the shared small logs (TFRecord, and the same as Parquet)."""

import kaml_tf  # noqa: F401
import pytest

from benchmarks import config as config_lib
from benchmarks import stats


def test_times_the_statistics_job(bench_config):
  result = stats.run(bench_config(window_days=7, read_batch_size=100, turns=2))
  assert list(result["runs"]) == ["logs"]
  run = result["runs"]["logs"]
  assert run["rows"] > 0 and run["ad_tasks"] > 0 and run["format"] == "tfrecord"
  assert run["rows_per_second"] == pytest.approx(run["rows"] / run["seconds"])
  assert run["rows_per_cpu_second"] == pytest.approx(run["rows"] / run["cpu_seconds"])
  assert len(run["turns"]) == 2
  assert run["rows_per_second"] == max(t["rows_per_second"] for t in run["turns"])
  assert (result["window_days"], result["read_batch_size"], result["as_of"]) == (7, 100, "end")


def test_times_each_format_on_the_same_records(bench_config, parquet_train):
  result = stats.run(bench_config(parquet_logs=parquet_train, as_of="daily"))
  runs = result["runs"]
  assert [(flag, r["format"]) for flag, r in runs.items()] == [
    ("logs", "tfrecord"),
    ("parquet_logs", "parquet"),
  ]
  assert runs["logs"]["rows"] == runs["parquet_logs"]["rows"] > 0
  assert runs["logs"]["ad_tasks"] == runs["parquet_logs"]["ad_tasks"] > 0
  lines = stats.summary(result)
  assert [line.split(":")[0] for line in lines] == [
    "stats (tfrecord, --logs)",
    "stats (parquet, --parquet_logs)",
  ]


def test_parquet_logs_alone(bench_config, parquet_train):
  result = stats.run(bench_config(logs=None, parquet_logs=parquet_train))
  assert list(result["runs"]) == ["parquet_logs"]


def test_without_logs_names_both_flags(bench_config):
  with pytest.raises(config_lib.ConfigError, match="--logs or --parquet_logs is required"):
    stats.run(bench_config(logs=None))


def test_summary_line():
  run = {"format": "parquet", "rows": 900, "seconds": 1.5}
  run |= {"rows_per_second": 600.0, "rows_per_cpu_second": 450.0}
  assert stats.summary({"runs": {"parquet_logs": run}}) == [
    "stats (parquet, --parquet_logs): 900 rows in 1.50 s, 600 rows/s, 450 rows per CPU second"
  ]
