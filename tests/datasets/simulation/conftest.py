"""Shared by the simulation tests: a small world's config and a 50k-row sample of it."""

import pytest

from kaml_tf.datasets.simulation import rows
from kaml_tf.datasets.simulation import world as world_lib
from kaml_tf.datasets.simulation.config import SimulationConfig


def small_config(**overrides) -> SimulationConfig:
  """A small world (fast to build) with the default skew, reporting and funnel."""
  params = dict(
    num_rows=2_000,
    num_users=3_000,
    num_ad_tasks=300,
    num_apps=120,
    num_advertisers=60,
    num_categories=12,
    num_slots=30,
    train_days=3,
    test_days=1,
  )
  params.update(overrides)
  return SimulationConfig(**params)


@pytest.fixture(scope="session")
def big_sample():
  """50k rows of a small world: (config, world, columns)."""
  config = small_config(num_rows=50_000, chunk_rows=20_000, seed=7)
  world = world_lib.build_world(config)
  return config, world, rows.simulate(config, world)
