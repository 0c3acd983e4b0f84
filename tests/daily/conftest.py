"""Fixtures of the daily loop's tests."""

import pytest

from tests.daily import simulated_days


@pytest.fixture(scope="module")
def world(tmp_path_factory):
  """`simulated_days.make_world` in a fresh folder, shared by a test module."""
  return simulated_days.make_world(str(tmp_path_factory.mktemp("logs")))
