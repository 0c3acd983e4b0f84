"""Tests of the config field helpers shared by the dataset configs."""

import dataclasses
import functools

import pytest

from kaml_tf.datasets import fields


@dataclasses.dataclass(frozen=True)
class _Config:
  path: str = fields.field(dataclasses.MISSING, "Where.")
  rate: float = fields.field(0.5, "How often.")


def test_field_carries_its_help_and_default():
  path, rate = dataclasses.fields(_Config)
  assert path.metadata["help"] == "Where." and path.default is dataclasses.MISSING
  assert rate.metadata["help"] == "How often." and rate.default == 0.5
  with pytest.raises(TypeError):
    _Config()  # pylint: disable=no-value-for-parameter


def test_require_names_the_field_and_quotes_the_value():
  config = _Config(path="a.tsv", rate=1.5)
  check = functools.partial(fields.require, config)
  check(True, "rate", "must be in [0, 1]")
  with pytest.raises(ValueError, match=r"^rate: must be in \[0, 1\], got 1\.5$"):
    check(config.rate <= 1, "rate", "must be in [0, 1]")
  with pytest.raises(ValueError, match=r"^path: must end in .csv, got 'a.tsv'$"):
    check(False, "path", "must end in .csv")


@pytest.mark.parametrize(
  "value,is_int,is_number",
  [(3, True, True), (0.5, False, True), (True, False, False), ("3", False, False)],
)
def test_is_int_and_is_number_reject_bools(value, is_int, is_number):
  assert fields.is_int(value) == is_int
  assert fields.is_number(value) == is_number
