"""Tests of the ad-log simulator: sampling primitives, skew, reporting, funnel and schema."""

import math

import numpy as np
import pytest

from kaml_tf import schema as schema_lib
from kaml_tf.datasets.simulation import simulator

ACTIONS = simulator.ACTIONS


def small_config(**overrides) -> simulator.SimulationConfig:
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
  return simulator.SimulationConfig(**params)


@pytest.fixture(scope="module")
def big_sample():
  """50k rows of a small world, with the world they came from."""
  config = small_config(num_rows=50_000, chunk_rows=20_000, seed=7)
  world = simulator.build_world(config)
  return config, world, simulator.simulate(config, world)


def test_zipf_probs_by_hand():
  np.testing.assert_allclose(simulator.zipf_probs(3, 1.0), [6 / 11, 3 / 11, 2 / 11])
  np.testing.assert_allclose(simulator.zipf_probs(4, 0.0), [0.25] * 4)
  np.testing.assert_allclose(simulator.zipf_probs(2, 2.0), [0.8, 0.2])


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
    (simulator.TABLE1_TARGET_SHARES, 2000, (1382, 105, 198, 230, 11, 74)),
  ],
)
def test_allocate_tasks(shares, num_tasks, expected):
  np.testing.assert_array_equal(simulator.allocate_tasks(shares, num_tasks), expected)


def test_grouped_sampler_by_hand():
  sampler = simulator._GroupedSampler.build(
    [np.array([10, 11]), np.array([20])], [np.array([0.25, 0.75]), np.array([1.0])]
  )
  groups = np.array([0, 0, 0, 1, 1])
  u = np.array([0.1, 0.25, 0.9, 0.0, math.nextafter(1.0, 0.0)])
  # u = 0.25 sits on the first CDF step and belongs to the second item; 1 + (1 - 2^-53)
  # rounds to 2.0, which must stay in group 1.
  np.testing.assert_array_equal(sampler.draw(groups, u), [10, 11, 11, 20, 20])


def test_rows_per_day_and_splits():
  config = small_config(num_rows=10, train_days=2, test_days=1)
  assert config.rows_per_day() == [4, 3, 3]
  assert [config.is_test_day(d) for d in range(3)] == [False, False, True]


def test_expected_reporting_share_by_hand():
  shares = simulator.expected_reporting_share(simulator.SimulationConfig())
  # share_j + (1 - share_j) * (complete_j + partial_j)
  assert shares["activation"] == pytest.approx(0.6908 + 0.3092 * 0.95)
  assert shares["re_engagement"] == pytest.approx(0.0526 + 0.9474 * 0.03)
  assert shares["retention"] == pytest.approx(0.0056 + 0.9944 * 0.53)


def test_config_dict_round_trip():
  config = small_config(target_shares=[0.5, 0.1, 0.1, 0.1, 0.1, 0.1], seed=3)
  assert config.target_shares == (0.5, 0.1, 0.1, 0.1, 0.1, 0.1)
  assert simulator.SimulationConfig.from_dict(config.to_dict()) == config


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
    (dict(funnel_leak=1.5), "funnel_leak"),
    (dict(target_shares=("a", 0, 0, 0, 0, 0)), "target_shares"),
  ],
)
def test_config_rejects_bad_values(overrides, field):
  with pytest.raises(ValueError, match=field):
    small_config(**overrides)


def test_deterministic_for_a_seed():
  config = small_config(num_rows=500, chunk_rows=200)
  first, second = simulator.simulate(config), simulator.simulate(config)
  assert first.keys() == second.keys()
  for key in first:
    np.testing.assert_array_equal(first[key], second[key], err_msg=key)
  other = simulator.simulate(small_config(num_rows=500, chunk_rows=200, seed=1))
  assert not np.array_equal(first["user_id"], other["user_id"])


def test_columns_follow_the_schema(big_sample):
  config, world, columns = big_sample
  schema = simulator.default_schema(config, world)
  dtypes = schema.record_dtypes()
  assert list(columns) == list(dtypes)
  for key, dtype in dtypes.items():
    assert columns[key].dtype == dtype.as_numpy_dtype, key
    assert columns[key].shape == (config.num_rows,), key
  for feature in schema.sparse_features:
    ids = columns[feature.name]
    assert ids.min() >= 0 and ids.max() < feature.num_buckets, feature.name
  days = columns[schema_lib.DAY]
  np.testing.assert_array_equal(np.bincount(days), config.rows_per_day())
  assert np.all(np.diff(days) >= 0)


def test_target_shares_match_the_skew(big_sample):
  config, _, columns = big_sample
  n = config.num_rows
  target = columns[schema_lib.TARGET_ACTION]
  counts = np.bincount(
    np.where(target < 0, simulator.OTHER_GROUP, target), minlength=simulator.NUM_GROUPS
  )
  for g, p in enumerate(simulator.TABLE1_TARGET_SHARES):
    std = math.sqrt(p * (1 - p) / n)
    assert abs(counts[g] / n - p) < 4 * std, (simulator.GROUP_NAMES[g], counts[g] / n, p)


def test_ad_task_attributes_are_fixed(big_sample):
  _, world, columns = big_sample
  task = columns[schema_lib.AD_TASK_ID]
  np.testing.assert_array_equal(columns[schema_lib.TARGET_ACTION], world.task_target[task])
  np.testing.assert_array_equal(columns["app_id"], world.task_app[task])
  np.testing.assert_array_equal(columns["advertiser_id"], world.task_advertiser[task])
  np.testing.assert_array_equal(columns["category_id"], world.task_category[task])
  np.testing.assert_array_equal(columns["ad_id"] // 5, task)


def test_reported_labels_are_a_subset_of_the_truth(big_sample):
  _, world, columns = big_sample
  task = columns[schema_lib.AD_TASK_ID]
  target = columns[schema_lib.TARGET_ACTION]
  labels = np.stack([columns["label_" + a] for a in ACTIONS], axis=1)
  truth = np.stack([columns["true_label_" + a] for a in ACTIONS], axis=1)
  assert np.all(labels <= truth)
  assert np.all(labels[world.report_rate[task] == 0] == 0)
  rows = np.flatnonzero(target >= 0)
  np.testing.assert_array_equal(labels[rows, target[rows]], truth[rows, target[rows]])
  # The three reporting modes all occur, and partial reporting loses conversions.
  rate = world.report_rate[task]
  partial = (rate > 0) & (rate < 1) & (truth == 1)
  assert partial.sum() > 100
  kept = labels[partial].mean()
  assert 0.1 < kept < 0.6
  assert np.all(labels[(rate == 1)] == truth[(rate == 1)])


def test_each_task_reports_its_target():
  world = simulator.build_world(small_config())
  targeted = np.flatnonzero(world.task_target >= 0)
  np.testing.assert_array_equal(world.report_rate[targeted, world.task_target[targeted]], 1.0)
  counts = np.bincount(world.task_group, minlength=simulator.NUM_GROUPS)
  np.testing.assert_array_equal(
    counts, simulator.allocate_tasks(simulator.TABLE1_TARGET_SHARES, 300)
  )


def test_funnel(big_sample):
  _, _, columns = big_sample
  t = {a: columns["true_label_" + a].astype(bool) for a in ACTIONS}
  rate = {a: t[a].mean() for a in ACTIONS}
  assert not np.any(t["activation"] & t["re_engagement"])
  engaged = t["activation"] | t["re_engagement"]
  for deep, prerequisite in [
    ("registration", engaged),
    ("payment", t["registration"]),
    ("retention", t["activation"]),
  ]:
    with_it = t[deep][prerequisite].mean()
    without = t[deep][~prerequisite].mean()
    assert without < 0.1 * with_it, (deep, with_it, without)
  assert rate["activation"] > rate["registration"] > rate["payment"]
  assert rate["activation"] > 5 * rate["retention"]
  assert 0.08 < rate["activation"] < 0.25
  assert 0.003 < rate["retention"] < 0.03


def test_target_traffic_differs(big_sample):
  _, _, columns = big_sample
  target = columns[schema_lib.TARGET_ACTION]
  pay, act = target == simulator.PAYMENT, target == simulator.ACTIVATION
  # Payment advertisers bid more and reach deeper users than activation advertisers.
  assert columns["bid_log"][pay].mean() - columns["bid_log"][act].mean() > 1.5
  assert (columns["user_pay_history"][pay].mean() - columns["user_pay_history"][act].mean()) > 0.5
  # Base rates: an action converts more on the traffic targeting it than on the rest.
  for j, a in enumerate(ACTIONS):
    on_target = target == j
    truth = columns["true_label_" + a]
    assert truth[on_target].mean() > truth[~on_target].mean(), a


def test_default_schema_round_trip(tmp_path):
  config = small_config()
  schema = simulator.default_schema(config)
  path = str(tmp_path / "schema.json")
  schema.save(path)
  loaded = schema_lib.Schema.load(path)
  assert loaded == schema
  assert loaded.fingerprint() == schema.fingerprint()
  assert loaded.actions == ACTIONS
  assert loaded.has_true_labels
  assert len(loaded.feature_names) == 20
  ad_task = [f for f in loaded.sparse_features if f.name == schema_lib.AD_TASK_ID]
  assert ad_task == [schema_lib.SparseFeature(schema_lib.AD_TASK_ID, "int64", 300, 16)]
  assert all(f.dtype == "int64" for f in loaded.sparse_features)


def test_dense_moments(big_sample):
  config, world, columns = big_sample
  moments = simulator.dense_moments(config, world)
  assert moments["session_depth"] == (1.5, 0.6)
  for name, (mean, std) in moments.items():
    values = columns[name].astype(np.float64)
    # Rows share users and tasks, so allow more than i.i.d. sampling error.
    assert abs(values.mean() - mean) < 0.05 * std, name
    assert abs(values.std() - std) < 0.05 * std, name
  schema = simulator.default_schema(config, world)
  assert {f.name: (f.mean, f.std) for f in schema.dense_features} == moments


def _per_action(values):
  return dict(zip(ACTIONS, values))


def test_format_report_by_hand():
  report = {
    "configured_target_share": dict(zip(simulator.GROUP_NAMES, (0.5, 0.1, 0.1, 0.1, 0.1, 0.1))),
    "expected_reporting_share": _per_action((1.0, 0.2, 0.3, 0.4, 0.5)),
    "splits": {
      "all": {
        "target_share": dict(zip(simulator.GROUP_NAMES, (0.5, 0.125, 0.125, 0.125, 0.0, 0.125))),
        "reporting_share": _per_action((1.0, 0.25, 0.25, 0.5, 0.5)),
        "true_positive_rate": _per_action((0.25, 0.0, 0.125, 0.0, 0.0)),
        "reported_positive_rate": _per_action((0.125, 0.0, 0.0, 0.0, 0.0)),
        "target_traffic_true_positive_rate": _per_action((0.25, 0.0, 1.0, 0.0, None)),
      }
    },
  }
  lines = simulator.format_report(report).splitlines()
  assert len(lines) == 2 + simulator.NUM_GROUPS
  assert lines[2] == (
    "| activation | 50.00% (50.00%) | 100.00% (100.00%) | 25.00% | 12.50% | 25.00% |"
  )
  assert lines[6] == "| retention | 0.00% (10.00%) | 50.00% (50.00%) | 0.00% | 0.00% | - |"
  assert lines[7] == "| other | 12.50% (10.00%) | - | - | - | - |"
