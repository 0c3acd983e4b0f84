"""End-to-end tests of `pipelines/simulate.py`, run in-process on a few hundred rows."""

import json
import os

from absl import app
from absl import flags
from absl.testing import flagsaver
import numpy as np
import pytest

from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.datasets.simulation import simulator
from pipelines import simulate

# A small world so that each run takes well under a second.
SMALL = dict(
  num_rows=400,
  num_users=500,
  num_ad_tasks=60,
  num_apps=30,
  num_advertisers=10,
  num_categories=6,
  num_slots=10,
  train_days=3,
  test_days=1,
  chunk_rows=64,
)


@pytest.fixture(autouse=True)
def parsed_flags():
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


def run(output_dir, **overrides):
  """Runs the job's `main` with SMALL plus `overrides` as flags; returns simulation.json."""
  values = dict(SMALL, output_dir=str(output_dir))
  values.update(overrides)
  with flagsaver.flagsaver(**values):
    simulate.main(["simulate"])
  with open(os.path.join(output_dir, simulator.REPORT_FILE)) as f:
    return json.load(f)


def file_bytes(folder):
  out = {}
  for name in sorted(os.listdir(folder)):
    with open(os.path.join(folder, name), "rb") as f:
      out[name] = f.read()
  return out


def test_writes_readable_logs_and_an_exact_report(tmp_path):
  summary = run(tmp_path, num_shards=2)
  assert sorted(os.listdir(tmp_path)) == [
    "schema.json",
    "simulation.json",
    "test-00000-of-00002.tfrecord",
    "test-00001-of-00002.tfrecord",
    "train-00000-of-00002.tfrecord",
    "train-00001-of-00002.tfrecord",
  ]
  config = simulator.SimulationConfig.from_dict(summary["config"])
  assert config == simulator.SimulationConfig(**SMALL)
  schema = schema_lib.Schema.load(str(tmp_path / "schema.json"))
  assert schema == simulator.default_schema(config)
  assert summary["output"]["schema_fingerprint"] == schema.fingerprint()

  report = summary["report"]
  for split, days in (("train", {0, 1, 2}), ("test", {3})):
    paths = [str(tmp_path / name) for name in summary["output"][split + "_files"]]
    columns = records.read_columns(paths, schema)
    assert set(columns) == set(schema.record_dtypes())
    assert set(columns[schema_lib.DAY].tolist()) == days
    # Both shards got rows.
    assert all(len(records.read_columns([p], schema)[schema_lib.DAY]) > 0 for p in paths)
    rows = len(columns[schema_lib.DAY])
    got = report["splits"][split]
    assert got["rows"] == rows
    target = columns[schema_lib.TARGET_ACTION]
    for g, name in enumerate(simulator.GROUP_NAMES):
      expected = np.sum(target == (g if g < simulator.NUM_ACTIONS else -1)) / rows
      assert got["target_share"][name] == pytest.approx(expected, abs=1e-12)
    for a in simulator.ACTIONS:
      assert got["true_positive_rate"][a] == pytest.approx(
        columns["true_label_" + a].mean(), abs=1e-12
      )
      assert got["reported_positive_rate"][a] == pytest.approx(
        columns["label_" + a].mean(), abs=1e-12
      )
  assert report["splits"]["all"]["rows"] == 400
  assert report["configured_target_share"]["other"] == 0.037


def test_written_records_equal_the_source_columns(tmp_path):
  summary = run(tmp_path, seed=5)
  config = simulator.SimulationConfig.from_dict(summary["config"])
  source = simulator.simulate(config)
  schema = schema_lib.Schema.load(str(tmp_path / "schema.json"))
  train = records.read_columns(str(tmp_path / "train-*"), schema)
  test = records.read_columns(str(tmp_path / "test-*"), schema)
  is_test = source[schema_lib.DAY] >= config.train_days
  for key, values in source.items():
    np.testing.assert_array_equal(train[key], values[~is_test], err_msg=key)
    np.testing.assert_array_equal(test[key], values[is_test], err_msg=key)


@pytest.mark.parametrize("compression,suffix", [("none", ".tfrecord"), ("gzip", ".tfrecord.gz")])
def test_same_seed_same_bytes(tmp_path, compression, suffix):
  outputs = {}
  for name, seed in (("a", 0), ("b", 0), ("c", 1)):
    run(tmp_path / name, compression=compression, seed=seed)
    outputs[name] = file_bytes(tmp_path / name)
  shard = "train-00000-of-00001" + suffix
  assert shard in outputs["a"]
  assert outputs["a"] == outputs["b"]
  assert outputs["c"][shard] != outputs["a"][shard]


def test_refuses_to_mix_with_shards_of_another_run(tmp_path):
  run(tmp_path, num_shards=2)
  with pytest.raises(FileExistsError, match="train-00000-of-00002.tfrecord"):
    run(tmp_path, num_shards=1)


def test_bad_flag_names_the_flag(tmp_path):
  with pytest.raises(app.UsageError, match="--target_shares"):
    run(tmp_path, target_shares=["0.5", "0.5"])
  with pytest.raises(app.UsageError, match="--report_partial_prob"):
    run(tmp_path, report_partial_prob=["x", "0", "0", "0", "0"])
  assert not os.listdir(tmp_path)


def test_missing_output_dir_is_named():
  with flagsaver.flagsaver(output_dir=None):
    with pytest.raises(app.UsageError, match="--output_dir is required"):
      simulate.main(["simulate"])
