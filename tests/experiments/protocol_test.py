"""The experiment protocol's settings and search space: defaults, overrides, clear errors."""

import pytest

from experiments import protocol


def test_the_validation_protocol_is_the_default():
  config = protocol.ProtocolConfig()
  assert config.selects
  assert (config.validation_days, config.patience, config.calibrate) == (1, 2, True)
  assert not protocol.ProtocolConfig(protocol=protocol.FIXED_EPOCHS).selects


def test_search_space_overrides_replace_only_their_fields():
  space = protocol.search_space({"dropout": [0.0, 0.3], "alpha": []})
  assert (space.dropout, space.alpha) == ((0.0, 0.3), ())
  assert space.learning_rate == protocol.DEFAULT_SPACE.learning_rate
  assert protocol.search_space({}) == protocol.DEFAULT_SPACE


@pytest.mark.parametrize(
  "make, message",
  [
    (lambda: protocol.search_space({"lr": [1]}), r"search_space: unknown field\(s\) \['lr'\]"),
    (lambda: protocol.search_space({"dropout": [1.5]}), "tune_dropout: values must be"),
    (lambda: protocol.ProtocolConfig(protocol="x"), "protocol: must be one of"),
    (lambda: protocol.ProtocolConfig(patience=0), "protocol_patience: must be an integer >= 1"),
    (
      lambda: protocol.ProtocolConfig(trials_per_config=0),
      "trials_per_config: must be an integer >= 1, got 0",
    ),
  ],
)
def test_bad_settings_name_the_flag(make, message):
  with pytest.raises(ValueError, match=message):
    make()
