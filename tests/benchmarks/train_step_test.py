"""Tests of the train_step section on the shared small logs."""

import kaml_tf  # noqa: F401
import pytest

from benchmarks import config as config_lib
from benchmarks import train_step


def test_reports_wall_and_cpu_time(bench_config):
  result = train_step.run(bench_config(steps=2, turns=2))
  assert result["batch_size"] == 32 and set(result["variants"]) == {"mmoe", "kaml"}
  for figures in result["variants"].values():
    assert len(figures["turns"]) == len(figures["cpu_turns"]) == 2
    assert figures["step_seconds_best"] == min(figures["turns"])
    assert figures["cpu_seconds_median"] > 0
  assert result["ratio_to_first"]["mmoe"] == result["cpu_ratio_to_first"]["mmoe"] == 1.0
  assert result["cpu_ratio_to_first"]["kaml"] == pytest.approx(
    result["variants"]["kaml"]["cpu_seconds_median"]
    / result["variants"]["mmoe"]["cpu_seconds_median"]
  )
  assert result["target_ratio"] == 1.3
  assert result["meets_target"] == (result["ratio_to_first"]["kaml"] <= 1.3)


def test_needs_stats(bench_config):
  with pytest.raises(config_lib.ConfigError, match="--stats is required by the train_step"):
    train_step.run(bench_config(stats=""))


def test_summary_lines():
  variant = {
    "step_seconds_best": 0.25,
    "step_seconds_median": 0.5,
    "cpu_seconds_median": 0.125,
    "samples_per_second": 20000.0,
  }
  result = {
    "variants": {"kaml": variant},
    "ratio_to_first": {"kaml": 1.25},
    "cpu_ratio_to_first": {"kaml": 1.5},
    "target_ratio": 1.3,
  }
  assert train_step.summary(result) == [
    "train_step kaml: best 250.0 ms/step (median 500.0; CPU 125.0 ms/step), 20000 samples/s",
    "train_step: KAML / MMoE = 1.250 (target <= 1.3); CPU time per step 1.500",
  ]
