"""Tests of the simulated world: task allocation, reporting rates, dense moments."""

import numpy as np
import pytest

from kaml_tf.datasets.simulation import world as world_lib
from kaml_tf.datasets.simulation.config import NUM_GROUPS
from kaml_tf.datasets.simulation.config import TABLE1_TARGET_SHARES
from tests.datasets.simulation.conftest import small_config


@pytest.mark.parametrize(
  "shares,num_tasks,expected",
  [
    ((0.5, 0.3, 0.2), 10, (5, 3, 2)),
    # Largest remainder: 0.5 and 0.5 tie, the earlier group wins; a zero share gets nothing.
    ((0.7, 0.3, 0.0), 5, (4, 1, 0)),
    # Every positive share gets a task, taken from the largest group.
    ((0.98, 0.01, 0.01), 3, (1, 1, 1)),
    # Table 1 over 2000 tasks: floors 1381, 105, 198, 229, 11, 74 (1998) + the two
    # largest fractional parts (0.6 of activation and of payment).
    (TABLE1_TARGET_SHARES, 2000, (1382, 105, 198, 230, 11, 74)),
  ],
)
def test_allocate_tasks(shares, num_tasks, expected):
  np.testing.assert_array_equal(world_lib.allocate_tasks(shares, num_tasks), expected)


def test_each_task_reports_its_target():
  world = world_lib.build_world(small_config())
  targeted = np.flatnonzero(world.task_target >= 0)
  np.testing.assert_array_equal(world.report_rate[targeted, world.task_target[targeted]], 1.0)
  counts = np.bincount(world.task_group, minlength=NUM_GROUPS)
  np.testing.assert_array_equal(counts, world_lib.allocate_tasks(TABLE1_TARGET_SHARES, 300))


def test_cardinalities_follow_the_config():
  cards = world_lib.cardinalities(small_config())
  # 300 tasks of 5 creatives each; hours and days of week are fixed.
  assert (cards["ad_id"], cards["ad_task_id"], cards["hour"], cards["day_of_week"]) == (
    1500,
    300,
    24,
    7,
  )
  assert list(cards)[:3] == ["user_id", "ad_id", "ad_task_id"]


def test_dense_moments(big_sample):
  config, world, columns = big_sample
  moments = world_lib.dense_moments(config, world)
  assert moments["session_depth"] == (1.5, 0.6)
  for name, (mean, std) in moments.items():
    values = columns[name].astype(np.float64)
    # Rows share users and tasks, so allow more than i.i.d. sampling error.
    assert abs(values.mean() - mean) < 0.05 * std, name
    assert abs(values.std() - std) < 0.05 * std, name
