"""Tests of `ConversionConfig`: its checks and its dict round trip."""

import dataclasses

import pytest

from kaml_tf.datasets.kuairand.config import ConversionConfig


@pytest.mark.parametrize(
  "overrides,match",
  [
    (dict(actions=("like", "share")), r"actions: unknown feedback\(s\) \['share'\]"),
    (dict(actions=("like", "like")), "actions: must not repeat"),
    (dict(actions=()), "actions: needs at least one"),
    (dict(extra_reported_actions=4), r"extra_reported_actions: must be an integer in \[0, 3\]"),
    (dict(extra_reported_actions=-1), "extra_reported_actions"),
    (dict(negative_keep_rate=1.5), r"negative_keep_rate: must be a number in \[0, 1\]"),
    (dict(test_fraction=1.0), r"test_fraction: must be a number in \(0, 1\)"),
    (dict(seed=-1), "seed: must be an integer >= 0"),
    (dict(log_path=""), "log_path: must be a non-empty path"),
    (dict(embedding_dim=0), "embedding_dim"),
  ],
)
def test_config_validation_names_the_field(overrides, match):
  params = dict(log_path="log.tsv", user_features_path="users.csv")
  params.update(overrides)
  with pytest.raises(ValueError, match=match):
    ConversionConfig(**params)


def test_config_dict_round_trip():
  config = ConversionConfig(
    log_path="a.tsv",
    user_features_path="u.csv",
    seed=3,
    actions=("click", "like"),
    extra_reported_actions=1,
  )
  assert ConversionConfig.from_dict(config.to_dict()) == config
  with pytest.raises(ValueError, match=r"unknown ConversionConfig field\(s\) \['bogus'\]"):
    ConversionConfig.from_dict(dict(config.to_dict(), bogus=1))


def test_paths_are_required_and_every_field_has_help():
  with pytest.raises(TypeError, match="log_path"):
    ConversionConfig(user_features_path="u.csv")  # pylint: disable=missing-kwoa
  for field in dataclasses.fields(ConversionConfig):
    assert field.metadata["help"], field.name
