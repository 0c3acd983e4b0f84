"""Tests of the simulated interest tags (`interest_tags`), the multi-valued feature."""

import json

import numpy as np
import pytest

from kaml_tf import schema as schema_lib
from kaml_tf.data import dataset as dataset_lib
from kaml_tf.datasets.simulation import interest_tags
from kaml_tf.datasets.simulation import rows
from kaml_tf.datasets.simulation import simulator
from kaml_tf.datasets.simulation import world as world_lib
from kaml_tf.logs import check
from kaml_tf.logs import records
from tests.datasets.simulation.conftest import small_config


def test_tags_leave_every_other_column_unchanged():
  plain = rows.simulate(small_config(num_rows=300, chunk_rows=120))
  tagged = rows.simulate(small_config(num_rows=300, chunk_rows=120, interest_tags=4))
  assert list(tagged) == list(plain) + ["interest_tags"]
  for key, values in plain.items():
    np.testing.assert_array_equal(tagged[key], values, err_msg=key)


def test_without_tags_the_config_and_schema_keep_their_older_form():
  config = small_config()
  assert "interest_tags" not in config.to_dict()
  assert "interest_tags" not in simulator.default_schema(config).feature_names
  tagged = small_config(interest_tags=3)
  assert tagged.to_dict()["interest_tags"] == 3
  assert simulator.SimulationConfig.from_dict(tagged.to_dict()) == tagged


@pytest.mark.parametrize("value", [1, -1, True])
def test_interest_tags_must_be_zero_or_a_list(value):
  with pytest.raises(ValueError, match="^interest_tags: must be 0 .* or an integer >= 2"):
    small_config(interest_tags=value)


def test_each_user_holds_0_to_k_distinct_tags_padded_after_them():
  config = small_config(interest_tags=3)
  world = world_lib.build_world(config)
  tags = interest_tags.user_tags(config, world)
  assert tags.shape == (config.num_users, 3)
  held = tags >= 0
  # Tags first, then padding; each count 0..3 occurs (about a quarter of the users each).
  assert np.all(held[:, :-1] >= held[:, 1:])
  counts = np.bincount(held.sum(axis=1), minlength=4)
  assert counts.min() > config.num_users / 4 * 0.8
  assert tags.max() < interest_tags.NUM_TAGS
  assert all(len(set(row[row >= 0])) == (row >= 0).sum() for row in tags)
  np.testing.assert_array_equal(interest_tags.user_tags(config, world), tags)


def test_tags_carry_the_users_interest():
  # Holders of a tag share an interest direction: the mean interest vector of a tag's holders
  # is far from 0, unlike that of as many users taken at random.
  config = small_config(interest_tags=3)
  world = world_lib.build_world(config)
  tags = interest_tags.user_tags(config, world)
  rng = np.random.default_rng(0)

  def mean_norm(users_of):
    return np.mean([np.linalg.norm(world.user_interest[u].mean(axis=0)) for u in users_of])

  holders = [np.flatnonzero((tags == t).any(axis=1)) for t in range(interest_tags.NUM_TAGS)]
  holders = [u for u in holders if len(u) >= 20]
  random = [rng.choice(config.num_users, len(u), replace=False) for u in holders]
  assert mean_norm(holders) > 1.0 > 0.5 > mean_norm(random)


def test_simulated_tags_are_written_checked_and_read_by_the_dataset(tmp_path):
  config = small_config(num_rows=200, chunk_rows=70, interest_tags=3)
  simulator.write_simulation(config, str(tmp_path), num_shards=2)
  schema = schema_lib.Schema.load(str(tmp_path / "schema.json"))
  (feature,) = schema.multivalued_features
  assert (feature.name, feature.max_values, feature.combiner) == ("interest_tags", 3, "mean")
  with open(tmp_path / "simulation.json") as f:
    assert json.load(f)["config"]["interest_tags"] == 3
  assert check.check_logs(str(tmp_path / "train-*"), schema).ok
  written = records.read_columns(str(tmp_path / "train-*"), schema)
  expected = rows.simulate(config)
  train = expected[schema_lib.DAY] < config.train_days
  order = np.lexsort(written["interest_tags"].T[::-1])
  expected_order = np.lexsort(expected["interest_tags"][train].T[::-1])
  np.testing.assert_array_equal(
    written["interest_tags"][order], expected["interest_tags"][train][expected_order]
  )
  ds = dataset_lib.make_dataset(str(tmp_path / "train-*"), schema, policy="base", batch_size=64)
  assert ds.element_spec[0]["interest_tags"].shape.as_list() == [None, 3]
  read = np.concatenate([f["interest_tags"].numpy() for f, _ in ds])
  np.testing.assert_array_equal(np.sort(read, axis=0), np.sort(written["interest_tags"], axis=0))
