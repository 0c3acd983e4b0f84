"""Tests of delayed reporting: the delays, the pending labels and their report."""

import dataclasses
import json
import numpy as np
import pytest

from kaml_tf import schema as schema_lib
from kaml_tf.datasets.simulation import delays
from kaml_tf.datasets.simulation import report as report_lib
from kaml_tf.datasets.simulation import rows
from kaml_tf.datasets.simulation import simulator
from kaml_tf.datasets.simulation import world as world_lib
from kaml_tf.datasets.simulation.config import ACTIONS
from kaml_tf.datasets.simulation.config import NUM_ACTIONS
from kaml_tf.datasets.simulation.config import SimulationConfig
from tests.datasets.simulation.conftest import small_config

_MEANS = (0.0, 1.0, 2.0, 0.5, 4.0)


def test_withhold_by_hand():
  columns = {schema_lib.DAY: np.array([0, 1, 2], np.int64)}
  for j, a in enumerate(ACTIONS):
    columns[schema_lib.LABEL_PREFIX + a] = np.array([1, 1, 0], np.int64) * (j < 2)
  delay = np.zeros((3, NUM_ACTIONS), np.int64)
  delay[:, 0] = [2, 1, 5]  # activation: day 0 + 2 = 2 > 1 pending; day 1 + 1 = 2 pending.
  delay[:, 1] = [1, 0, 0]  # re_engagement: day 0 + 1 = 1 arrived; day 1 + 0 arrived.
  pending = delays.withhold(columns, delay, observed_day=1)
  np.testing.assert_array_equal(pending[:, 0], [True, True, False])
  assert not pending[:, 1:].any()
  np.testing.assert_array_equal(columns["label_activation"], [0, 0, 0])
  np.testing.assert_array_equal(columns["label_re_engagement"], [1, 1, 0])


def test_delays_have_the_configured_means():
  config = small_config(report_delay_days=_MEANS)
  delay = delays.draw_delays(config, day=0, chunk=0, n=200_000)
  assert delay.min() == 0
  assert np.all(delay[:, 0] == 0)
  np.testing.assert_allclose(delay.mean(axis=0), _MEANS, atol=0.05)


def test_pending_labels_with_a_fixed_seed():
  config = small_config(num_rows=4_000, seed=3, report_delay_days=_MEANS, observed_through_day=2)
  plain = rows.simulate(dataclasses.replace(config, report_delay_days=(), observed_through_day=-1))
  chunks = list(rows.iter_chunks_with_pending(config))
  assert [day for day, _, _ in chunks] == [0, 1, 2, 3]  # one chunk a day: chunk index 0.
  late = np.concatenate(
    [day + delays.draw_delays(config, day, 0, len(c[schema_lib.DAY])) > 2 for day, c, _ in chunks]
  )
  got = {key: np.concatenate([c[key] for _, c, _ in chunks]) for key in chunks[0][1]}
  pending = np.concatenate([p for _, _, p in chunks])
  for j, a in enumerate(ACTIONS):
    label, truth = got["label_" + a], got["true_label_" + a]
    # Reported only where true, and only when the click day + delay is an observed day.
    assert np.all(label <= truth), a
    assert not np.any((label == 1) & late[:, j]), a
    # The simulation without delays, minus exactly the late reports.
    np.testing.assert_array_equal(pending[:, j], (plain["label_" + a] == 1) & late[:, j])
    np.testing.assert_array_equal(label + pending[:, j], plain["label_" + a], err_msg=a)
  # Activation has no delay: pending only on day 3, after the observed day, where every
  # report of every action is pending.
  day3 = got[schema_lib.DAY] == 3
  assert pending[~day3, 0].sum() == 0
  assert all(got["label_" + a][day3].sum() == 0 for a in ACTIONS)
  assert pending[day3, 0].sum() == plain["label_activation"][day3].sum() > 0
  assert pending[~day3, 1:].sum() > 0
  for key in plain:
    if not key.startswith(schema_lib.LABEL_PREFIX):
      np.testing.assert_array_equal(got[key], plain[key], err_msg=key)


def test_report_counts_pending_per_action_and_day():
  config = small_config(num_rows=4_000, seed=3, report_delay_days=_MEANS, observed_through_day=2)
  world = world_lib.build_world(config)
  counter = report_lib.ReportCounter(config, world)
  positives = np.zeros((config.num_days, NUM_ACTIONS), np.int64)
  waiting = np.zeros((config.num_days, NUM_ACTIONS), np.int64)
  for day, columns, pending in rows.iter_chunks_with_pending(config, world):
    counter.add("train", columns, pending)
    for j, a in enumerate(ACTIONS):
      positives[day, j] += columns["label_" + a].sum() + pending[:, j].sum()
      waiting[day, j] += pending[:, j].sum()
  got = counter.report()["report_delay"]
  assert got["observed_through_day"] == 2
  assert got["mean_delay_days"] == dict(zip(ACTIONS, _MEANS))
  for j, a in enumerate(ACTIONS):
    assert got["pending"][a] == waiting[:, j].tolist()
    assert got["reported_positives"][a] == positives[:, j].tolist()
    for d in range(config.num_days):
      expected = waiting[d, j] / positives[d, j] if positives[d, j] else None
      assert got["pending_share"][a][d] == pytest.approx(expected)
  assert got["pending_share"]["activation"] == [0.0, 0.0, 0.0, 1.0]
  assert all(got["pending_share"][a][3] in (1.0, None) for a in ACTIONS)


def test_no_delay_no_report_section_and_same_dict():
  config = small_config()
  assert (
    "report_delay" not in report_lib.ReportCounter(config, world_lib.build_world(config)).report()
  )
  assert "report_delay_days" not in config.to_dict()
  assert "observed_through_day" not in config.to_dict()
  delayed = small_config(report_delay_days=_MEANS, observed_through_day=1)
  assert SimulationConfig.from_dict(delayed.to_dict()) == delayed
  assert delayed.observed_day == 1 and config.observed_day == config.num_days - 1


@pytest.mark.parametrize(
  "overrides, field",
  [
    (dict(report_delay_days=(1.0, 2.0)), "report_delay_days"),
    (dict(report_delay_days=(1.0, -1.0, 0, 0, 0)), "report_delay_days"),
    (dict(observed_through_day=-2), "observed_through_day"),
  ],
)
def test_bad_delay_settings_name_the_field(overrides, field):
  with pytest.raises(ValueError, match=f"^{field}: "):
    small_config(**overrides)


def test_simulation_json_reports_the_pending_share(tmp_path):
  config = small_config(num_rows=800, report_delay_days=_MEANS, observed_through_day=2)
  simulator.write_simulation(config, str(tmp_path))
  with open(tmp_path / simulator.REPORT_FILE) as f:
    written = json.load(f)
  assert written["config"]["report_delay_days"] == list(_MEANS)
  assert written["config"]["observed_through_day"] == 2
  delay = written["report"]["report_delay"]
  assert delay["pending_share"]["activation"] == [0.0, 0.0, 0.0, 1.0]
  assert len(delay["pending"]["retention"]) == config.num_days
