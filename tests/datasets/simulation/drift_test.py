"""Tests of the drifting world (`drift`): tasks launched on a day, reporting that switches."""

import numpy as np
import pytest

from kaml_tf import schema as schema_lib
from kaml_tf.datasets.simulation import report as report_lib
from kaml_tf.datasets.simulation import rows
from kaml_tf.datasets.simulation import world as world_lib
from kaml_tf.datasets.simulation.config import ACTIONS
from tests.datasets.simulation.conftest import small_config

DRIFT = dict(drift_day=2, new_task_share=0.3, report_switch_share=0.2)


@pytest.fixture(scope="module")
def drifted():
  config = small_config(num_rows=4_000, chunk_rows=700, seed=5, **DRIFT)
  world = world_lib.build_world(config)
  return config, world, rows.simulate(config, world)


def test_without_drift_every_column_and_the_config_keep_their_form():
  plain = small_config(num_rows=600, chunk_rows=250)
  assert "drift_day" not in plain.to_dict() and world_lib.build_world(plain).drift is None
  # Reporting that switches after the last day changes nothing in the rows.
  late = small_config(num_rows=600, chunk_rows=250, drift_day=9, report_switch_share=0.5)
  for key, values in rows.simulate(plain).items():
    np.testing.assert_array_equal(rows.simulate(late)[key], values, err_msg=key)
  assert type(late).from_dict(late.to_dict()) == late


def test_new_tasks_have_no_traffic_before_the_drift_day(drifted):
  config, world, columns = drifted
  new = world.drift.new_tasks
  # 30 % of each group, rounded down, never a whole group.
  counts = np.bincount(world.task_group, minlength=6)
  new_counts = np.bincount(world.task_group[new], minlength=6)
  np.testing.assert_array_equal(new_counts, np.minimum((0.3 * counts).astype(int), counts - 1))
  task, day = columns[schema_lib.AD_TASK_ID], columns[schema_lib.DAY]
  assert not new[task[day < 2]].any()
  assert new[task[day >= 2]].mean() > 0.05


def test_reporting_flips_on_the_drift_day_and_targets_stay_reported(drifted):
  _, world, columns = drifted
  before, after = world.report_rate, world.drift.report_rate_after
  flipped = (before > 0) != (after > 0)
  assert 0.1 < flipped.mean() < 0.3
  np.testing.assert_array_equal(after[flipped & (before > 0)], 0.0)
  np.testing.assert_array_equal(after[flipped & (before == 0)], 1.0)
  targeted = np.flatnonzero(world.task_target >= 0)
  np.testing.assert_array_equal(after[targeted, world.task_target[targeted]], 1.0)
  # A reported label is 1 only where the day's rate reports it.
  task, day = columns[schema_lib.AD_TASK_ID], columns[schema_lib.DAY]
  for j, action in enumerate(ACTIONS):
    label = columns[schema_lib.LABEL_PREFIX + action] == 1
    assert not label[(day < 2) & (before[task, j] == 0)].any(), action
    assert not label[(day >= 2) & (after[task, j] == 0)].any(), action


def test_report_counts_what_changed(drifted):
  config, world, columns = drifted
  counter = report_lib.ReportCounter(config, world)
  for d in range(config.num_days):
    counter.add("all", {k: v[columns[schema_lib.DAY] == d] for k, v in columns.items()})
  drift = counter.report()["drift"]
  before, after = world.report_rate > 0, world.drift.report_rate_after > 0
  assert drift == {
    "drift_day": 2,
    "new_ad_tasks": int(world.drift.new_tasks.sum()),
    "report_pairs_switched_on": int((after & ~before).sum()),
    "report_pairs_switched_off": int((before & ~after).sum()),
  }


@pytest.mark.parametrize(
  "overrides, message",
  [
    (dict(new_task_share=0.2), "^new_task_share: needs drift_day"),
    (dict(drift_day=1, report_switch_share=1.5), "^report_switch_share: must be in"),
    (dict(drift_day=-2), "^drift_day: must be a day >= 0"),
  ],
)
def test_bad_drift_settings_name_the_field(overrides, message):
  with pytest.raises(ValueError, match=message):
    small_config(**overrides)
