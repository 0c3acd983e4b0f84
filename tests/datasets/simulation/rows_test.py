"""Tests of the simulated rows: determinism, skew, fixed task attributes, reporting, funnel."""

import math

import numpy as np

from kaml_tf import schema as schema_lib
from kaml_tf.datasets.simulation import rows
from kaml_tf.datasets.simulation import world as world_lib
from kaml_tf.datasets.simulation.config import ACTIONS
from kaml_tf.datasets.simulation.config import ACTIVATION
from kaml_tf.datasets.simulation.config import GROUP_NAMES
from kaml_tf.datasets.simulation.config import NUM_GROUPS
from kaml_tf.datasets.simulation.config import OTHER_GROUP
from kaml_tf.datasets.simulation.config import PAYMENT
from kaml_tf.datasets.simulation.config import TABLE1_TARGET_SHARES
from tests.datasets.simulation.conftest import small_config


def test_deterministic_for_a_seed():
  config = small_config(num_rows=500, chunk_rows=200)
  first, second = rows.simulate(config), rows.simulate(config)
  assert first.keys() == second.keys()
  for key in first:
    np.testing.assert_array_equal(first[key], second[key], err_msg=key)
  other = rows.simulate(small_config(num_rows=500, chunk_rows=200, seed=1))
  assert not np.array_equal(first["user_id"], other["user_id"])


def test_target_shares_match_the_skew(big_sample):
  config, _, columns = big_sample
  n = config.num_rows
  target = columns[schema_lib.TARGET_ACTION]
  counts = np.bincount(np.where(target < 0, OTHER_GROUP, target), minlength=NUM_GROUPS)
  for g, p in enumerate(TABLE1_TARGET_SHARES):
    std = math.sqrt(p * (1 - p) / n)
    assert abs(counts[g] / n - p) < 4 * std, (GROUP_NAMES[g], counts[g] / n, p)


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
  pay, act = target == PAYMENT, target == ACTIVATION
  # Payment advertisers bid more and reach deeper users than activation advertisers.
  assert columns["bid_log"][pay].mean() - columns["bid_log"][act].mean() > 1.5
  assert (columns["user_pay_history"][pay].mean() - columns["user_pay_history"][act].mean()) > 0.5
  # Base rates: an action converts more on the traffic targeting it than on the rest.
  for j, a in enumerate(ACTIONS):
    on_target = target == j
    truth = columns["true_label_" + a]
    assert truth[on_target].mean() > truth[~on_target].mean(), a


def test_iter_chunks_cut_each_day_into_chunk_rows():
  config = small_config(num_rows=1_000, chunk_rows=150, train_days=3, test_days=1)
  chunks = list(rows.iter_chunks(config))
  # 250 rows a day: a chunk of 150, then one of 100.
  assert [(day, len(c[schema_lib.DAY])) for day, c in chunks] == [
    (d, n) for d in range(4) for n in (150, 100)
  ]
  assert all(np.all(c[schema_lib.DAY] == day) for day, c in chunks)
  # Chunk 1 of day 2 comes from its own stream, whatever came before it.
  world = world_lib.build_world(config)
  alone = rows.generate_rows(
    config, world, 2, 100, np.random.default_rng(np.random.SeedSequence(0, spawn_key=(1, 2, 1)))
  )
  for key, values in alone.items():
    np.testing.assert_array_equal(chunks[5][1][key], values, err_msg=key)
