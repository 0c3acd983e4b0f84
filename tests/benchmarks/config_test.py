"""Tests of the benchmark settings: help on every field, bounds naming their flag, pickling."""

import dataclasses
import pickle

import pytest

from benchmarks import config as config_lib
from kaml_tf.data import stats as stats_lib


def test_every_field_has_help():
  for field in dataclasses.fields(config_lib.BenchmarkConfig):
    assert field.metadata["help"], field.name


def test_enum_fields_list_their_choices():
  fields = {f.name: f for f in dataclasses.fields(config_lib.BenchmarkConfig)}
  assert fields["input_mask"].metadata["choices"] == ("base", "adm", "all", "oracle")
  assert fields["as_of"].metadata["choices"] == tuple(stats_lib.AS_OF)


@pytest.mark.parametrize(
  "field,value,message",
  [
    ("turns", 0, "--turns must be an integer >= 1, got 0"),
    ("max_batches", -1, "--max_batches must be an integer >= 0, got -1"),
    ("throughput_warmup_steps", 0, "--throughput_warmup_steps must be an integer >= 1, got 0"),
    ("batch_size", True, "--batch_size must be an integer >= 1, got True"),
    (
      "input_mask",
      "nope",
      "--input_mask must be one of ['base', 'adm', 'all', 'oracle'], got 'nope'",
    ),
    ("serving_batch_sizes", (1, 0), "--serving_batch_sizes: expected integers >= 1, got [1, 0]"),
  ],
)
def test_wrong_values_name_their_flag(field, value, message):
  with pytest.raises(config_lib.ConfigError) as raised:
    config_lib.BenchmarkConfig(**{field: value})
  assert (str(raised.value), raised.value.flag) == (message, field)


def test_required_names_the_flag_and_the_section():
  config = config_lib.BenchmarkConfig(logs="a-*")
  assert config.required("logs", "stats") == "a-*"
  with pytest.raises(config_lib.ConfigError, match="--stats is required by the peer section"):
    config.required("stats", "peer")


def test_stats_config_carries_the_window_settings():
  config = config_lib.BenchmarkConfig(
    window_days=7, end_day=3, read_batch_size=10, skip_bad_records=True, as_of="daily"
  )
  assert config.stats_config() == stats_lib.StatsConfig(
    window_days=7, end_day=3, read_batch_size=10, skip_bad_records=True, as_of="daily"
  )


def test_config_and_its_error_survive_pickling():
  config = config_lib.BenchmarkConfig(logs="a-*", alpha=(2.0, 3.0))
  assert pickle.loads(pickle.dumps(config)) == config
  error = pickle.loads(pickle.dumps(config_lib.ConfigError("--logs: too few rows", "logs")))
  assert (str(error), error.flag) == ("--logs: too few rows", "logs")
