"""Runs the benchmark job in-process on a few hundred hand-made records."""

import json

import kaml_tf  # noqa: F401
from absl import app
from absl import flags
from absl.testing import flagsaver
import numpy as np
import pytest

from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.logs import parquet as parquet_logs
from benchmarks import sections
from pipelines import benchmark

SCHEMA = schema_lib.Schema(
  actions=("A", "B"),
  sparse_features=(schema_lib.SparseFeature("ad_task_id"),),
  dense_features=(schema_lib.DenseFeature("x"),),
)
ROWS = 300


@pytest.fixture(autouse=True)
def _parsed_flags():
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


def _flags(tmp_path, **overrides):
  n = ROWS
  task = np.arange(n, dtype=np.int64) % 5
  cols = {
    "ad_task_id": task,
    "target_action": task % 2,
    "day": np.arange(n) % 3,
    "x": np.ones(n, np.float32),
    "label_A": (task == 0).astype(np.int64),
    "label_B": (task < 3).astype(np.int64),
  }
  SCHEMA.save(str(tmp_path / "schema.json"))
  records.write_logs(SCHEMA, str(tmp_path / "train"), cols, num_shards=2, batch_rows=64)
  values = {
    "logs": str(tmp_path / "train-*"),
    "schema": str(tmp_path / "schema.json"),
    "stats": "",
    "window_days": 1,
    "end_day": None,
    "alpha": ["1", "1"],
    "output": str(tmp_path / "bench.json"),
    "sections": ["input"],
    "batch_size": 64,
    "input_mask": "adm",
    "turns": 2,
    "max_batches": 0,
    "parquet_logs": None,
    "isolate": False,
  }
  values.update(overrides)
  return flagsaver.flagsaver(**values)


def test_input_section(tmp_path):
  with _flags(tmp_path):
    benchmark.main(["benchmark"])
  document = json.loads((tmp_path / "bench.json").read_text())
  result = document["sections"]["input"]
  assert result["rows_per_pass"] == ROWS
  assert result["files"] == 2
  assert (result["batch_size"], result["policy"], result["alpha"]) == (64, "adm", [1, 1])
  # Parsed: the 2 features (ad_task_id doubles as the key field), target and 2 labels.
  assert result["parsed_fields"] == 5
  assert len(result["bare_rows_per_second"]) == len(result["full_rows_per_second"]) == 2
  assert result["bare_best"] == max(result["bare_rows_per_second"]) > 0
  assert result["ratio_best"] == pytest.approx(result["full_best"] / result["bare_best"])
  assert result["meets_target"] == (result["ratio_best"] >= 0.7)
  assert len(result["full_rows_per_cpu_second"]) == 2 and result["ratio_cpu_median"] > 0
  # Statistics of the last day (day 2) cover every ad task: none unknown.
  assert result["unknown_ad_task_samples"] == 0
  assert document["environment"]["tensorflow"]


def test_input_section_times_the_parquet_pipeline_in_the_same_turns(tmp_path):
  saver = _flags(tmp_path, parquet_logs=str(tmp_path / "pq-*"))  # writes the TFRecord logs
  columns = records.read_columns(str(tmp_path / "train-*"), SCHEMA)
  with parquet_logs.LogWriter(SCHEMA, str(tmp_path / "pq"), num_shards=2) as writer:
    for half in (slice(0, ROWS // 2), slice(ROWS // 2, ROWS)):
      writer.write({k: v[half] for k, v in columns.items()})
  with saver:
    benchmark.main(["benchmark"])
  result = json.loads((tmp_path / "bench.json").read_text())["sections"]["input"]
  assert len(result["full_parquet_rows_per_second"]) == 2
  assert result["ratio_parquet_best"] == pytest.approx(
    result["full_parquet_best"] / result["bare_best"]
  )
  assert result["ratio_parquet_cpu_median"] > 0
  assert result["samples_timed"] == 2 * 2 * ROWS  # both full pipelines, 2 passes each


def test_max_batches_limits_each_pass(tmp_path):
  with _flags(tmp_path, max_batches=2, turns=1, input_mask="base"):
    benchmark.main(["benchmark"])
  result = json.loads((tmp_path / "bench.json").read_text())["sections"]["input"]
  assert result["rows_per_pass"] == 128
  assert result["policy"] == "base"


def test_sections_registry_writes_one_json(tmp_path, monkeypatch):
  section = sections.Section(lambda config: {"value": config.batch_size}, lambda r: ["fake"])
  monkeypatch.setitem(sections.SECTIONS, "fake", section)
  with _flags(tmp_path, sections=["fake"], isolate=True):
    benchmark.main(["benchmark"])
  document = json.loads((tmp_path / "bench.json").read_text())
  assert document["sections"] == {"fake": {"value": 64}}
  assert document["resources"]["fake"]["peak_rss_scope"] == sections.PROCESS_SCOPE


def test_config_from_flags_maps_every_flag(tmp_path):
  with _flags(tmp_path, serving_batch_sizes=["2", "8"], input_mask="all", max_batches=5):
    config = benchmark.config_from_flags()
  assert (config.logs, config.schema) == (str(tmp_path / "train-*"), str(tmp_path / "schema.json"))
  assert (config.alpha, config.serving_batch_sizes) == ((1, 1), (2, 8))
  assert (config.batch_size, config.input_mask, config.max_batches) == (64, "all", 5)
  assert (config.window_days, config.turns, config.throughput_steps) == (1, 2, 20)


@pytest.mark.parametrize(
  "overrides,message",
  [
    ({"alpha": ["1", "x"]}, r"--alpha: expected integers, got \['1', 'x'\]"),
    ({"turns": 0}, "--turns must be an integer >= 1, got 0"),
    ({"alpha": ["1"]}, "--alpha has 1 value"),
  ],
)
def test_wrong_settings_are_usage_errors(tmp_path, overrides, message):
  with _flags(tmp_path, **overrides):
    with pytest.raises(app.UsageError, match=message):
      benchmark.main(["benchmark"])
  assert not (tmp_path / "bench.json").exists()


@pytest.mark.parametrize("isolate", [False, True])
@pytest.mark.parametrize(
  "section,overrides,message",
  [
    ("serving", {}, "--export_dir is required by the serving section"),
    ("train_throughput", {"stats": ""}, "--stats is required by the train_throughput section"),
  ],
)
def test_sections_name_their_missing_flag(tmp_path, section, overrides, message, isolate):
  # From a child process too: its usage error is handed back, not parsed from text.
  with _flags(tmp_path, sections=[section], isolate=isolate, **overrides):
    with pytest.raises(app.UsageError) as raised:
      benchmark.main(["benchmark"])
  assert str(raised.value) == message
  assert not (tmp_path / "bench.json").exists()


def test_unknown_section(tmp_path):
  with _flags(tmp_path, sections=["input", "nope"]):
    with pytest.raises(app.UsageError, match=r"unknown section\(s\) \['nope'\]"):
      benchmark.main(["benchmark"])
  assert not (tmp_path / "bench.json").exists()


def test_beam_section_times_each_job_locally_and_on_beam(tmp_path):
  with _flags(tmp_path, sections=["beam"], runner="", beam_pipeline_args=""):
    benchmark.main(["benchmark"])
  result = json.loads((tmp_path / "bench.json").read_text())["sections"]["beam"]
  assert (result["rows"], result["runner"]) == (ROWS, "DirectRunner")
  assert "--direct_num_workers=2" in result["beam_pipeline_args"]
  assert sorted(result["jobs"]) == ["compute_stats", "convert_logs", "mask_report"]
  for job in result["jobs"].values():
    assert job["beam_rows_per_second"] == pytest.approx(ROWS / job["beam_seconds"])
    assert job["beam_over_local"] == pytest.approx(job["local_seconds"] / job["beam_seconds"])
