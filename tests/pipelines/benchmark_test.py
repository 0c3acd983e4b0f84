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
    "repeats": 2,
    "max_batches": 0,
    "parquet_logs": None,
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
  with _flags(tmp_path, max_batches=2, repeats=1, input_mask="base"):
    benchmark.main(["benchmark"])
  result = json.loads((tmp_path / "bench.json").read_text())["sections"]["input"]
  assert result["rows_per_pass"] == 128
  assert result["policy"] == "base"


def test_sections_registry_writes_one_json(tmp_path, monkeypatch):
  monkeypatch.setitem(benchmark.SECTIONS, "fake", lambda: {"value": 3})
  with _flags(tmp_path, sections=["fake"]):
    benchmark.main(["benchmark"])
  assert json.loads((tmp_path / "bench.json").read_text())["sections"] == {"fake": {"value": 3}}


def test_unknown_section(tmp_path):
  with _flags(tmp_path, sections=["input", "nope"]):
    with pytest.raises(app.UsageError, match=r"unknown section\(s\) \['nope'\]"):
      benchmark.main(["benchmark"])
  assert not (tmp_path / "bench.json").exists()
