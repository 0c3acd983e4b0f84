"""Tests of the peer section that do not need DeepCTR: targets, rows, the missing install."""

import sys

import kaml_tf  # noqa: F401
import pytest

from benchmarks import config as config_lib
from benchmarks import peer
from benchmarks import throughput
from kaml_tf import schema as schema_lib


def test_targets_cover_both_log_formats():
  assert peer.targets(["deepctr_mmoe", "mmoe", "kaml", "mmoe_in_memory"]) == {
    "mmoe": 1.0,
    "kaml": 0.8,
  }
  assert peer.targets(["mmoe", "kaml", "mmoe_parquet", "kaml_parquet"]) == {
    "mmoe": 1.0,
    "mmoe_parquet": 1.0,
    "kaml": 0.8,
    "kaml_parquet": 0.8,
  }


def test_rows_needed_cover_warmup_and_timed_steps():
  timing = throughput.TimingConfig(steps=3, warmup_steps=2, turns=5)
  assert peer.rows_needed(timing, 10) == 50


def test_read_rows_reads_whole_files_until_enough(small_logs):
  schema = schema_lib.Schema.load(small_logs["schema"])
  columns = peer.read_rows(small_logs["train"], schema, 1)
  rows = len(columns[schema_lib.AD_TASK_ID])
  assert 1 < rows == len(columns[schema.label_keys[0]])  # the whole first file
  with pytest.raises(config_lib.ConfigError, match="--logs: the peer needs 1000000 rows") as e:
    peer.read_rows(small_logs["train"], schema, 1_000_000)
  assert e.value.flag == "logs"


def test_without_deepctr_says_how_to_install(monkeypatch, bench_config):
  for name in ("deepctr", "deepctr.models", "deepctr.feature_column"):
    monkeypatch.setitem(sys.modules, name, None)
  with pytest.raises(
    config_lib.ConfigError, match=r"--sections=peer: .*pip install --no-deps deepctr==0\.9\.4"
  ):
    peer.run(bench_config())


def test_summary_adds_a_line_per_target():
  runner = {
    "samples_per_second_best": 10.0,
    "samples_per_second_median": 10.0,
    "samples_per_cpu_second_median": 5.0,
  }
  result = {
    "runners": {"deepctr_mmoe": runner},
    "ratio_to_first": {"deepctr_mmoe": 1.0, "kaml": 0.875},
    "cpu_ratio_to_first": {"deepctr_mmoe": 1.0},
    "target_ratios": {"kaml": 0.8},
  }
  assert peer.summary(result)[1:] == ["peer: kaml / DeepCTR = 0.875 (target >= 0.8)"]
