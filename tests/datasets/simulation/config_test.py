"""Tests of `SimulationConfig`: days and splits, the dict round trip and the checks."""

import pytest

from kaml_tf.datasets.simulation.config import SimulationConfig
from tests.datasets.simulation.conftest import small_config


def test_rows_per_day_and_splits():
  config = small_config(num_rows=10, train_days=2, test_days=1)
  assert config.rows_per_day() == [4, 3, 3]
  assert [config.is_test_day(d) for d in range(3)] == [False, False, True]


def test_config_dict_round_trip():
  config = small_config(target_shares=[0.5, 0.1, 0.1, 0.1, 0.1, 0.1], seed=3)
  assert config.target_shares == (0.5, 0.1, 0.1, 0.1, 0.1, 0.1)
  assert SimulationConfig.from_dict(config.to_dict()) == config


def test_every_field_has_help():
  for field in SimulationConfig.__dataclass_fields__.values():
    assert field.metadata["help"], field.name


@pytest.mark.parametrize(
  "overrides,field",
  [
    (dict(target_shares=(0.5, 0.1, 0.1, 0.1, 0.1, 0.2)), "target_shares"),
    (dict(target_shares=(0.5, 0.5)), "target_shares"),
    (
      dict(report_complete_prob=(0.9, 0, 0, 0, 0), report_partial_prob=(0.2, 0, 0, 0, 0)),
      "report_partial_prob",
    ),
    (dict(base_logits=(1.0, 2.0)), "base_logits"),
    (dict(num_rows=3, train_days=3, test_days=1), "num_rows"),
    (dict(partial_fraction_min=0.7, partial_fraction_max=0.6), "partial_fraction_min"),
    (dict(num_users=0), "num_users"),
    (dict(num_users=True), "num_users"),
    (dict(seed=-1), "seed"),
    (dict(funnel_leak=1.5), "funnel_leak"),
    (dict(target_shares=("a", 0, 0, 0, 0, 0)), "target_shares"),
  ],
)
def test_config_rejects_bad_values(overrides, field):
  with pytest.raises(ValueError, match=f"^{field}: "):
    small_config(**overrides)
