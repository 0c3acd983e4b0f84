"""Tests of the simulation's composition: the schema, and the written logs and report."""

import json
import os

import numpy as np
import pytest

from kaml_tf import schema as schema_lib
from kaml_tf.datasets.simulation import simulator
from kaml_tf.logs import records
from tests.datasets.simulation.conftest import small_config

ACTIONS = simulator.ACTIONS


def test_columns_follow_the_schema(big_sample):
  config, world, columns = big_sample
  schema = simulator.default_schema(config, world)
  dtypes = schema.record_dtypes()
  assert list(columns) == list(dtypes)
  for key, dtype in dtypes.items():
    assert columns[key].dtype == dtype.as_numpy_dtype, key
    assert columns[key].shape == (config.num_rows,), key
  for feature in schema.sparse_features:
    ids = columns[feature.name]
    assert ids.min() >= 0 and ids.max() < feature.num_buckets, feature.name
  days = columns[schema_lib.DAY]
  np.testing.assert_array_equal(np.bincount(days), config.rows_per_day())
  assert np.all(np.diff(days) >= 0)


def test_default_schema_round_trip(tmp_path):
  config = small_config()
  schema = simulator.default_schema(config)
  path = str(tmp_path / "schema.json")
  schema.save(path)
  loaded = schema_lib.Schema.load(path)
  assert loaded == schema
  assert loaded.fingerprint() == schema.fingerprint()
  assert loaded.actions == ACTIONS
  assert loaded.has_true_labels
  assert len(loaded.feature_names) == 20
  ad_task = [f for f in loaded.sparse_features if f.name == schema_lib.AD_TASK_ID]
  assert ad_task == [schema_lib.SparseFeature(schema_lib.AD_TASK_ID, "int64", 300, 16)]
  assert all(f.dtype == "int64" for f in loaded.sparse_features)


def test_write_simulation_writes_the_simulated_rows_and_their_report(tmp_path):
  config = small_config(num_rows=400, chunk_rows=70)
  summary = simulator.write_simulation(config, str(tmp_path), num_shards=2)
  assert sorted(os.listdir(tmp_path)) == [
    "schema.json",
    "simulation.json",
    "test-00000-of-00002.tfrecord",
    "test-00001-of-00002.tfrecord",
    "train-00000-of-00002.tfrecord",
    "train-00001-of-00002.tfrecord",
  ]
  with open(tmp_path / simulator.REPORT_FILE) as f:
    assert json.load(f) == json.loads(json.dumps(summary))
  assert simulator.SimulationConfig.from_dict(summary["config"]) == config
  schema = schema_lib.Schema.load(str(tmp_path / "schema.json"))
  assert schema == simulator.default_schema(config)
  assert summary["output"]["schema_fingerprint"] == schema.fingerprint()
  expected = simulator.simulate(config)
  is_test = expected[schema_lib.DAY] >= config.train_days
  for split, rows in (("train", ~is_test), ("test", is_test)):
    paths = [str(tmp_path / name) for name in summary["output"][split + "_files"]]
    columns = records.read_columns(paths, schema)
    assert summary["report"]["splits"][split]["rows"] == rows.sum()
    # The shards split every chunk: compare as sets of rows, ordered by every column.
    for key in ("user_id", "ad_id", "label_activation"):
      np.testing.assert_array_equal(np.sort(columns[key]), np.sort(expected[key][rows]), key)
  share = summary["report"]["splits"]["all"]["true_positive_rate"]["payment"]
  assert share == expected["true_label_payment"].sum() / config.num_rows


def test_write_simulation_refuses_shards_of_another_run(tmp_path):
  config = small_config(num_rows=40)
  simulator.write_simulation(config, str(tmp_path), num_shards=2)
  with pytest.raises(FileExistsError, match="train-00001-of-00002.tfrecord"):
    simulator.write_simulation(config, str(tmp_path), num_shards=1)
  with pytest.raises(ValueError, match="num_shards must be >= 1, got 0"):
    simulator.write_simulation(config, str(tmp_path / "new"), num_shards=0)
  assert not (tmp_path / "new").exists()


def test_more_test_rows_leave_the_train_split_byte_identical(tmp_path):
  default, larger = small_config(num_rows=400), small_config(num_rows=400, test_rows_per_day=250)
  assert larger.rows_per_day() == [100, 100, 100, 250]
  assert larger.total_rows == 550
  # The default's config (and so its simulation.json) does not mention the option.
  assert "test_rows_per_day" not in default.to_dict()
  assert simulator.SimulationConfig.from_dict(larger.to_dict()) == larger
  simulator.write_simulation(default, str(tmp_path / "default"))
  summary = simulator.write_simulation(larger, str(tmp_path / "larger"))
  train = "train-00000-of-00001.tfrecord"
  assert (tmp_path / "default" / train).read_bytes() == (tmp_path / "larger" / train).read_bytes()
  assert summary["report"]["splits"]["test"]["rows"] == 250
  with pytest.raises(ValueError, match="test_rows_per_day: must be an integer >= 0"):
    small_config(test_rows_per_day=-1)
