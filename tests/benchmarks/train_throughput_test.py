"""Tests of the train_throughput section on the shared small logs."""

import kaml_tf  # noqa: F401

from benchmarks import train_throughput


def test_times_both_models_through_the_pipeline(bench_config):
  result = train_throughput.run(bench_config())
  assert set(result["runners"]) == {"mmoe", "kaml"}
  for figures in result["runners"].values():
    assert figures["batch_size"] == 32 and len(figures["turns"]) == 1
    assert figures["samples_per_second_best"] > 0
  assert result["ratio_to_first"]["mmoe"] == 1.0 and result["ratio_to_first"]["kaml"] > 0
  assert (result["steps"], result["warmup_steps"], result["shuffle_buffer"]) == (2, 1, 64)


def test_times_parquet_logs_too(bench_config, parquet_train):
  result = train_throughput.run(bench_config(parquet_logs=parquet_train))
  runners = result["runners"]
  assert set(runners) == {"mmoe", "kaml", "mmoe_parquet", "kaml_parquet"}
  assert all(r["samples_per_second_best"] > 0 for r in runners.values())


def test_timing_comes_from_the_throughput_settings(bench_config):
  timing = train_throughput.timing(bench_config(throughput_steps=5, turns=2))
  assert (timing.steps, timing.warmup_steps, timing.turns) == (5, 1, 2)


def test_summary_has_a_line_per_runner():
  runner = {
    "samples_per_second_best": 1000.4,
    "samples_per_second_median": 900.0,
    "samples_per_cpu_second_median": 500.0,
  }
  result = {
    "runners": {"mmoe": runner, "kaml": runner},
    "ratio_to_first": {"mmoe": 1.0, "kaml": 0.5},
    "cpu_ratio_to_first": {"mmoe": 1.0, "kaml": 0.25},
  }
  assert train_throughput.summary(result) == [
    "train_throughput mmoe: best 1000 samples/s (median 900), 1.000x mmoe; "
    "500 samples per CPU second, 1.000x",
    "train_throughput kaml: best 1000 samples/s (median 900), 0.500x mmoe; "
    "500 samples per CPU second, 0.250x",
  ]
