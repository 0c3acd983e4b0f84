"""Tests of the input section's parts (the section itself: tests/pipelines/benchmark_test.py)."""

import kaml_tf  # noqa: F401
import pytest
import tensorflow as tf

from benchmarks import input_pipeline


def test_time_pass_counts_rows_and_stops_after_max_batches():
  ds = tf.data.Dataset.range(10).batch(4)  # batches of 4, 4, 2
  rows, seconds, cpu_seconds = input_pipeline.time_pass(ds)
  assert rows == 10 and seconds > 0 and cpu_seconds >= 0
  assert input_pipeline.time_pass(ds, max_batches=2)[0] == 8


@pytest.mark.parametrize("field,value", [("repeats", 0), ("max_batches", -1)])
def test_input_config_refuses_bad_counts(field, value):
  with pytest.raises(ValueError, match=field):
    input_pipeline.InputBenchmarkConfig(files="x", **{field: value})


def test_summary_lines():
  result = {
    "full_best": 900.0,
    "bare_best": 1000.0,
    "ratio_best": 0.9,
    "target_ratio": 0.7,
    "ratio_median": 0.875,
    "ratio_cpu_median": 0.5,
  }
  assert input_pipeline.summary(result) == [
    "input: full pipeline 900 rows/s, bare parse 1000 rows/s, ratio 0.900 (target >= 0.70); "
    "median ratio 0.875, CPU-time ratio 0.500"
  ]
  result.update(full_parquet_best=2000.0, ratio_parquet_best=2.0, ratio_parquet_cpu_median=1.5)
  assert input_pipeline.summary(result)[1] == (
    "input: full pipeline from Parquet 2000 rows/s, 2.000x the bare TFRecord parse (CPU time 1.500x)"
  )
