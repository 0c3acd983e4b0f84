"""Runs the new sections of `pipelines.benchmark` in-process on the shared small logs."""

import json
import sys

import kaml_tf  # noqa: F401
from absl import app
from absl.testing import flagsaver
import pytest

from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.logs import conversion as log_conversion
from pipelines import benchmark


def _flags(small_logs, tmp_path, **overrides):
  values = {
    "logs": small_logs["train"],
    "schema": small_logs["schema"],
    "stats": small_logs["stats"],
    "window_days": 28,
    "end_day": None,
    "alpha": [],
    "output": str(tmp_path / "bench.json"),
    "batch_size": 32,
    "repeats": 1,
    "throughput_steps": 2,
    "throughput_warmup_steps": 1,
    "shuffle_buffer": 64,
    "isolate": False,
    "export_dir": None,
    "parquet_logs": None,
    "stage_batches": 40,
  }
  values.update(overrides)
  return flagsaver.flagsaver(**values)


def _run(small_logs, tmp_path, sections, **overrides):
  with _flags(small_logs, tmp_path, sections=sections, **overrides):
    benchmark.main(["benchmark"])
  return json.loads((tmp_path / "bench.json").read_text())


def _train_rows(small_logs):
  schema = schema_lib.Schema.load(small_logs["schema"])
  return len(records.read_columns(small_logs["train"], schema)[schema_lib.AD_TASK_ID])


def test_section_names():
  assert benchmark.section_names(["all"]) == [
    "input",
    "input_stages",
    "train_step",
    "determinism",
    "train_throughput",
    "peer",
    "stats",
    "serving",
  ]
  assert benchmark.section_names(["stats", "input"]) == ["stats", "input"]
  with pytest.raises(app.UsageError, match="unknown section"):
    benchmark.section_names(["nope"])
  with pytest.raises(app.UsageError, match="cannot be combined"):
    benchmark.section_names(["all", "stats"])


def test_stats_section_in_a_child_process(small_logs, tmp_path):
  document = _run(small_logs, tmp_path, ["stats"], isolate=True)
  result = document["sections"]["stats"]
  assert result["rows"] == _train_rows(small_logs) > 0
  assert result["rows_per_second"] == pytest.approx(result["rows"] / result["seconds"])
  assert result["rows_per_cpu_second"] > 0 and result["ad_tasks"] > 0
  resources = document["resources"]["stats"]
  assert resources["peak_rss_bytes"] > 0
  assert resources["peak_rss_scope"] == "child process of this section"
  assert len(resources["load_average"]["before"]) == len(resources["load_average"]["after"]) == 3
  assert len(document["environment"]["load_average_end"]) == 3


def test_train_throughput_section(small_logs, tmp_path):
  document = _run(small_logs, tmp_path, ["train_throughput"])
  result = document["sections"]["train_throughput"]
  assert set(result["runners"]) == {"mmoe", "kaml"}
  for figures in result["runners"].values():
    assert figures["batch_size"] == 32 and len(figures["turns"]) == 1
    assert figures["samples_per_second_best"] > 0
  assert result["ratio_to_first"]["mmoe"] == 1.0 and result["ratio_to_first"]["kaml"] > 0
  assert (result["steps"], result["warmup_steps"], result["shuffle_buffer"]) == (2, 1, 64)
  assert document["resources"]["train_throughput"]["peak_rss_bytes"] > 0
  assert document["resources"]["train_throughput"]["peak_rss_scope"] == (
    "whole benchmark process so far"
  )


def test_train_throughput_section_times_parquet_logs_too(small_logs, tmp_path):
  schema = schema_lib.Schema.load(small_logs["schema"])
  config = log_conversion.ConversionConfig(str(tmp_path / "pq" / "train"), num_shards=2)
  log_conversion.convert_logs(small_logs["train"], schema, config)
  document = _run(
    small_logs, tmp_path, ["train_throughput"], parquet_logs=str(tmp_path / "pq" / "train-*")
  )
  runners = document["sections"]["train_throughput"]["runners"]
  assert set(runners) == {"mmoe", "kaml", "mmoe_parquet", "kaml_parquet"}
  assert all(r["samples_per_second_best"] > 0 for r in runners.values())


def test_input_stages_section_times_every_stage(small_logs, tmp_path):
  schema = schema_lib.Schema.load(small_logs["schema"])
  config = log_conversion.ConversionConfig(str(tmp_path / "pq" / "train"), num_shards=2)
  log_conversion.convert_logs(small_logs["train"], schema, config)
  document = _run(
    small_logs,
    tmp_path,
    ["input_stages"],
    stage_batches=3,
    repeats=2,
    parquet_logs=str(tmp_path / "pq" / "train-*"),
  )
  result = document["sections"]["input_stages"]
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


def test_peer_targets_cover_both_log_formats():
  assert benchmark.peer_targets(["deepctr_mmoe", "mmoe", "kaml", "mmoe_in_memory"]) == {
    "mmoe": 1.0,
    "kaml": 0.8,
  }
  assert benchmark.peer_targets(["mmoe", "kaml", "mmoe_parquet", "kaml_parquet"]) == {
    "mmoe": 1.0,
    "mmoe_parquet": 1.0,
    "kaml": 0.8,
    "kaml_parquet": 0.8,
  }


def test_determinism_section_times_both_cases_in_alternating_children(small_logs, tmp_path):
  document = _run(small_logs, tmp_path, ["determinism"], steps=2, repeats=2)
  result = document["sections"]["determinism"]
  assert result["variant"] == "kaml" and result["batch_size"] == 32 and result["steps"] == 2
  cases = result["cases"]
  assert set(cases) == {"nondeterministic", "deterministic"}
  assert cases["deterministic"]["op_determinism"] is True
  assert cases["nondeterministic"]["op_determinism"] is False
  for figures in cases.values():
    assert len(figures["turns"]) == 2 and all(t > 0 for t in figures["turns"])
    assert figures["step_seconds_best"] == min(figures["turns"])
  assert result["ratio_best"] == pytest.approx(
    cases["deterministic"]["step_seconds_best"] / cases["nondeterministic"]["step_seconds_best"]
  )
  assert result["ratio_cpu_median"] == pytest.approx(
    cases["deterministic"]["cpu_seconds_median"] / cases["nondeterministic"]["cpu_seconds_median"]
  )


def test_train_step_section_reports_wall_and_cpu_time(small_logs, tmp_path):
  document = _run(small_logs, tmp_path, ["train_step"], steps=2, repeats=2)
  result = document["sections"]["train_step"]
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
  assert result["meets_target"] == (result["ratio_to_first"]["kaml"] <= 1.3)


def test_peer_section_without_deepctr_says_how_to_install(small_logs, tmp_path, monkeypatch):
  for name in ("deepctr", "deepctr.models", "deepctr.feature_column"):
    monkeypatch.setitem(sys.modules, name, None)
  with pytest.raises(app.UsageError, match=r"pip install --no-deps deepctr==0\.9\.4"):
    _run(small_logs, tmp_path, ["peer"])
  assert not (tmp_path / "bench.json").exists()


@pytest.mark.parametrize(
  "sections,missing", [(["serving"], "export_dir"), (["train_throughput"], "stats")]
)
def test_sections_name_their_missing_flag(small_logs, tmp_path, sections, missing):
  overrides = {"stats": ""} if missing == "stats" else {}
  with pytest.raises(app.UsageError, match=f"--{missing}"):
    _run(small_logs, tmp_path, sections, **overrides)
