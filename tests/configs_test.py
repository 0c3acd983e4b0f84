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


@dataclasses.dataclass(frozen=True)
class _Flagged:
  path: str = configs.field(help="Where.", flag="input")
  mode: str = configs.field("a", "How.", choices=("a", "b"))


def test_field_metadata_holds_help_flag_and_choices():
  path, mode = dataclasses.fields(_Flagged)
  assert dict(path.metadata) == {"help": "Where.", "flag": "input"}
  assert dict(mode.metadata) == {"help": "How.", "choices": ("a", "b")}
  assert path.default is dataclasses.MISSING and mode.default == "a"
  assert [configs.flag_name(f) for f in (path, mode)] == ["input", "mode"]
  assert configs.flag_of(_Flagged, "path") == "input"


def test_field_needs_help():
  with pytest.raises(ValueError, match="every setting needs its help text"):
    configs.field(1)


def test_config_error_names_field_and_flag():
  error = configs.ConfigError.of(_Flagged, "path", "not found")
  assert (str(error), error.field, error.flag, error.detail) == (
    "input: not found",
    "path",
    "input",
    "not found",
  )
  own = configs.ConfigError("Model: bad width", field="width")
  assert (str(own), own.flag, own.detail) == ("Model: bad width", "width", "Model: bad width")
  legacy = configs.ConfigError("repeats: must be >= 1")
  assert (legacy.field, legacy.flag, legacy.detail) == ("repeats", "repeats", "must be >= 1")
  with pytest.raises(ValueError, match="needs field="):
    configs.ConfigError("no field here")
