"""Tests of the simulation's data report: expected shares, the counts, the markdown table."""

import numpy as np
import pytest

from kaml_tf import schema as schema_lib
from kaml_tf.datasets.simulation import report as report_lib
from kaml_tf.datasets.simulation import world as world_lib
from kaml_tf.datasets.simulation.config import ACTIONS
from kaml_tf.datasets.simulation.config import GROUP_NAMES
from kaml_tf.datasets.simulation.config import NUM_GROUPS
from kaml_tf.datasets.simulation.config import SimulationConfig
from tests.datasets.simulation.conftest import small_config


def test_expected_reporting_share_by_hand():
  shares = report_lib.expected_reporting_share(SimulationConfig())
  # share_j + (1 - share_j) * (complete_j + partial_j)
  assert shares["activation"] == pytest.approx(0.6908 + 0.3092 * 0.95)
  assert shares["re_engagement"] == pytest.approx(0.0526 + 0.9474 * 0.03)
  assert shares["retention"] == pytest.approx(0.0056 + 0.9944 * 0.53)


def test_report_counter_by_hand():
  config = small_config()
  world = world_lib.build_world(config)
  # Pick a task targeting activation and one of "other" (target -1).
  act = int(np.flatnonzero(world.task_target == 0)[0])
  other = int(np.flatnonzero(world.task_target == -1)[0])
  task = np.array([act, act, other, act])
  columns = {
    schema_lib.AD_TASK_ID: task,
    schema_lib.TARGET_ACTION: world.task_target[task],
  }
  truth = np.zeros((4, len(ACTIONS)), np.int64)
  truth[[0, 2], 0] = 1  # activations on rows 0 (activation traffic) and 2 (other traffic).
  for j, a in enumerate(ACTIONS):
    columns[schema_lib.TRUE_LABEL_PREFIX + a] = truth[:, j]
    columns[schema_lib.LABEL_PREFIX + a] = truth[:, j] * (j == 0) * np.array([1, 1, 0, 1])
  counter = report_lib.ReportCounter(config, world)
  counter.add("train", {k: v[:3] for k, v in columns.items()})
  counter.add("test", {k: v[3:] for k, v in columns.items()})
  got = counter.report()
  assert got["actions"] == list(ACTIONS)
  assert got["configured_target_share"]["other"] == config.target_shares[-1]
  assert got["expected_reporting_share"] == report_lib.expected_reporting_share(config)
  everything = got["splits"]["all"]
  assert (everything["rows"], got["splits"]["train"]["rows"], got["splits"]["test"]["rows"]) == (
    4,
    3,
    1,
  )
  assert everything["target_share"]["activation"] == 0.75
  assert everything["target_share"]["other"] == 0.25
  assert everything["true_positive_rate"]["activation"] == 0.5
  assert everything["reported_positive_rate"]["activation"] == 0.25  # row 2 hides it.
  # 1 activation on the 3 rows of activation traffic; no payment traffic at all.
  assert everything["target_traffic_true_positive_rate"]["activation"] == pytest.approx(1 / 3)
  assert everything["target_traffic_true_positive_rate"]["payment"] is None
  reporting = (world.report_rate[task] > 0).mean(axis=0)
  assert everything["reporting_share"] == dict(zip(ACTIONS, reporting.tolist()))


def _per_action(values):
  return dict(zip(ACTIONS, values))


def test_format_report_by_hand():
  report = {
    "configured_target_share": dict(zip(GROUP_NAMES, (0.5, 0.1, 0.1, 0.1, 0.1, 0.1))),
    "expected_reporting_share": _per_action((1.0, 0.2, 0.3, 0.4, 0.5)),
    "splits": {
      "all": {
        "target_share": dict(zip(GROUP_NAMES, (0.5, 0.125, 0.125, 0.125, 0.0, 0.125))),
        "reporting_share": _per_action((1.0, 0.25, 0.25, 0.5, 0.5)),
        "true_positive_rate": _per_action((0.25, 0.0, 0.125, 0.0, 0.0)),
        "reported_positive_rate": _per_action((0.125, 0.0, 0.0, 0.0, 0.0)),
        "target_traffic_true_positive_rate": _per_action((0.25, 0.0, 1.0, 0.0, None)),
      }
    },
  }
  lines = report_lib.format_report(report).splitlines()
  assert len(lines) == 2 + NUM_GROUPS
  assert lines[2] == (
    "| activation | 50.00% (50.00%) | 100.00% (100.00%) | 25.00% | 12.50% | 25.00% |"
  )
  assert lines[6] == "| retention | 0.00% (10.00%) | 50.00% (50.00%) | 0.00% | 0.00% | - |"
  assert lines[7] == "| other | 12.50% (10.00%) | - | - | - | - |"
