"""Tests for kaml_tf.models.config.ModelConfig."""

import dataclasses
import json

import pytest

from kaml_tf.models import config as config_lib


def test_defaults_are_the_benchmark_mmoe():
  c = config_lib.ModelConfig()
  assert c.backbone == "mmoe" and c.hke is False
  assert c.embedding_dim is None  # the schema's per-feature size (16 by default)
  assert (c.num_experts, c.expert_units, c.tower_units) == (4, (256, 128), (64,))
  assert (c.activation, c.dropout, c.embedding_l2) == ("relu", 0.0, 0.0)


def test_json_round_trip_and_lists_become_tuples():
  c = config_lib.ModelConfig(
    backbone="taml",
    hke=True,
    expert_units=[32, 16],
    tower_units=[],
    embedding_dim=8,
    distillation_weight=0.5,
  )
  assert c.expert_units == (32, 16) and c.tower_units == ()
  data = json.loads(json.dumps(c.to_dict()))
  assert data["expert_units"] == [32, 16]
  assert config_lib.ModelConfig.from_dict(data) == c
  assert hash(c) == hash(config_lib.ModelConfig.from_dict(data))


def test_from_dict_fills_missing_fields_with_defaults():
  assert config_lib.ModelConfig.from_dict({"backbone": "ple"}) == config_lib.ModelConfig(
    backbone="ple"
  )


def test_embedding_l2_is_a_float_in_json():
  c = config_lib.ModelConfig.from_dict({"embedding_l2": 1})
  assert c.embedding_l2 == 1.0 and isinstance(c.embedding_l2, float)
  assert c.to_dict()["embedding_l2"] == 1.0


@pytest.mark.parametrize(
  "field, value, message",
  [
    (
      "backbone",
      "mmoe2",
      "backbone must be one of ['single_task', 'shared_bottom', 'mmoe', "
      "'ple', 'star', 'taml'], got 'mmoe2'",
    ),
    ("embedding_dim", 0, "embedding_dim must be a positive integer, got 0"),
    ("activation", "relux", "unknown activation 'relux'"),
    ("activation", None, "activation must be the name of a Keras activation, got None"),
    ("dropout", 1.5, "dropout must be in [0, 1), got 1.5"),
    ("embedding_l2", -1e-6, "embedding_l2 must be a finite number >= 0, got -1e-06"),
    ("embedding_l2", float("inf"), "embedding_l2 must be a finite number >= 0, got inf"),
    ("num_experts", 0, "num_experts must be a positive integer, got 0"),
    ("num_levels", 2.5, "num_levels must be a positive integer, got 2.5"),
    ("num_learners", -1, "num_learners must be a positive integer, got -1"),
    ("distillation_weight", -0.1, "distillation_weight must be a finite number >= 0, got -0.1"),
    ("expert_units", (), "expert_units needs at least one layer, got ()"),
    ("tower_units", (64, 0), "tower_units must contain positive integers, got (64, 0)"),
    ("star_units", 128, "star_units must be a sequence of positive integers, got 128"),
    ("hke_sub_tower_units", [], "hke_sub_tower_units needs at least one layer, got []"),
    ("hke", "yes", "hke must be true or false, got 'yes'"),
  ],
)
def test_bad_values_are_quoted(field, value, message):
  with pytest.raises(ValueError) as info:
    config_lib.ModelConfig(**{field: value})
  assert str(info.value) == f"ModelConfig: {message}"


def test_from_dict_errors_name_the_source():
  with pytest.raises(
    ValueError,
    match=r"run/model.json: unknown ModelConfig field\(s\) "
    r"\['experts'\]",
  ):
    config_lib.ModelConfig.from_dict({"experts": 4}, source="run/model.json")
  with pytest.raises(ValueError, match="run/model.json: ModelConfig: num_experts must be"):
    config_lib.ModelConfig.from_dict({"num_experts": "4"}, source="run/model.json")
  with pytest.raises(ValueError, match="expected a JSON object for ModelConfig, got list"):
    config_lib.ModelConfig.from_dict([1], source="x")


def test_is_frozen():
  with pytest.raises(dataclasses.FrozenInstanceError):
    config_lib.ModelConfig().hke = True
