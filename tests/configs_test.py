"""Tests for kaml_tf.configs: JSON round trips of frozen config dataclasses."""

import dataclasses
import json
from typing import Tuple

import pytest

from kaml_tf import configs


@dataclasses.dataclass(frozen=True)
class _Config:
  units: Tuple[int, ...] = (8, 4)
  rate: float = 0.5


def test_round_trip_through_json():
  config = _Config(units=(3,), rate=0.1)
  data = json.loads(json.dumps(configs.to_dict(config)))
  assert data == {"units": [3], "rate": 0.1}
  assert configs.from_dict(_Config, {"units": (3,), "rate": 0.1}) == config


def test_missing_fields_take_defaults():
  assert configs.from_dict(_Config, {"rate": 1.0}) == _Config(rate=1.0)


def test_unknown_field_names_source_and_class():
  with pytest.raises(ValueError, match=r"run/config.json: unknown _Config field\(s\) \['size'\]"):
    configs.from_dict(_Config, {"size": 3}, source="run/config.json")
  with pytest.raises(ValueError, match="expected a JSON object for _Config, got list"):
    configs.from_dict(_Config, [1], source="x")
