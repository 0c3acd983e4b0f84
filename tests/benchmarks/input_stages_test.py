"""Tests of the input_stages section on the shared small logs."""

import kaml_tf  # noqa: F401
import pytest

from benchmarks import config as config_lib
from benchmarks import input_stages


def test_times_every_stage(bench_config, parquet_train):
  result = input_stages.run(bench_config(stage_batches=3, turns=2, parquet_logs=parquet_train))
  assert set(result["stages"]) == {
    "read",
    "read_parallel",
    "parse",
    "shuffle_records",
    "pipeline",
    "pipeline_parquet",
  }
  for figures in result["stages"].values():
    assert len(figures["cpu_turns"]) == len(figures["wall_turns"]) == 2
    assert figures["cpu_ms"] == pytest.approx(
      sorted(figures["cpu_turns"])[0] / 2 + sorted(figures["cpu_turns"])[1] / 2
    )
    assert figures["wall_ms"] > 0
  assert (result["batch_size"], result["batches"], result["shuffle_buffer"]) == (32, 3, 64)


def test_needs_stats(bench_config):
  with pytest.raises(config_lib.ConfigError, match="--stats is required by the input_stages"):
    input_stages.run(bench_config(stats=""))


def test_turn_order_rotates():
  assert input_stages.turn_order(["a", "b", "c"], 0) == ["a", "b", "c"]
  assert input_stages.turn_order(["a", "b", "c"], 4) == ["b", "c", "a"]


def test_summary_has_a_line_per_stage():
  result = {"stages": {"read": {"cpu_ms": 11.34, "wall_ms": 10.06}}}
  assert input_stages.summary(result) == [
    "input_stages read: 11.3 ms of CPU per batch (wall 10.1 ms)"
  ]
