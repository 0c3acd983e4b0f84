"""Tests of `joining.StatsJoin`: known masks for tiny statistics tables, and the counts."""

import kaml_tf  # noqa: F401
import numpy as np
import pytest

import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.data import counters as counters_lib
from kaml_tf.data import joining
from kaml_tf.data import masks
from kaml_tf.data import point_in_time
from kaml_tf.data import stats as stats_lib


def _schema(has_true_labels=False):
  return schema_lib.Schema(
    actions=("A", "B"),
    sparse_features=(schema_lib.SparseFeature("ad_task_id"), schema_lib.SparseFeature("user")),
    dense_features=(schema_lib.DenseFeature("x"),),
    has_true_labels=has_true_labels,
  )


SCHEMA = _schema()
ALPHA = (2, 3)
# ad task -> reported (A, B) conversions in the window. With alpha (2, 3): task 1 extends to
# A and B, task 2 to A only, task 3 to B only; task 9 is missing.
STATIC = {1: (5, 4), 2: (5, 2), 3: (0, 7)}
# One row per sample: (ad_task_id, target_action, label_A, label_B).
ROWS = [(1, 1, 0, 1), (2, 1, 1, 0), (3, 0, 1, 1), (9, 1, 0, 1), (2, -1, 0, 0)]
# The target cell, or'ed with the ad task's extension; the unknown task 9 keeps its target.
STATIC_MASK = [[1, 1], [1, 1], [1, 1], [0, 1], [1, 0]]
IS_TARGET = [[0, 1], [0, 1], [1, 0], [0, 1], [0, 0]]


def _static(schema=SCHEMA):
  ids = sorted(STATIC)
  return stats_lib.ConversionStats(
    ad_task_ids=np.array(ids, np.int64),
    counts=np.array([STATIC[i] for i in ids], np.int64),
    clicks=np.ones(len(ids), np.int64),
    actions=schema.actions,
    schema_fingerprint=schema.fingerprint(),
    window_start=0,
    window_end=6,
  )


def _columns(rows=ROWS, schema=SCHEMA, days=None):
  a = np.asarray(rows, np.int64)
  columns = {
    "ad_task_id": a[:, 0],
    "target_action": a[:, 1],
    "user": 100 + np.arange(len(a), dtype=np.int64),
    "x": np.zeros(len(a), np.float32),
    "label_A": a[:, 2],
    "label_B": a[:, 3],
  }
  if schema.has_true_labels:
    columns["true_label_A"] = np.ones(len(a), np.int64)
    columns["true_label_B"] = np.zeros(len(a), np.int64)
  if days is not None:
    columns["day"] = np.asarray(days, np.int64)
  return {k: tf.constant(v) for k, v in columns.items()}


def _join(policy="adm", stats="static", schema=SCHEMA, mode=point_in_time.STATIC):
  stats = _static(schema) if stats == "static" else stats
  mask = masks.MaskConfig(policy, ALPHA).resolve(schema)
  counters = counters_lib.InputCounters()
  return joining.StatsJoin(schema, stats, mask, mode, counters), counters


def test_static_join_gives_the_known_mask():
  join, counters = _join()
  assert not join.by_day
  features, targets = join(_columns())
  np.testing.assert_array_equal(targets[joining.MASK], STATIC_MASK)
  np.testing.assert_array_equal(targets[joining.IS_TARGET], IS_TARGET)
  np.testing.assert_array_equal(features[joining.HKE_INDICATOR], IS_TARGET)
  np.testing.assert_array_equal(targets[joining.LABELS], np.asarray(ROWS)[:, 2:])
  assert set(features) == {"ad_task_id", "user", "x", joining.HKE_INDICATOR}
  assert set(targets) == {joining.LABELS, joining.MASK, joining.IS_TARGET}
  assert targets[joining.MASK].dtype == tf.float32
  # Task 9 is unknown: counted, given the base mask above.
  assert (counters.unknown_ad_task_samples, counters.samples_read) == (1, 5)


@pytest.mark.parametrize("policy,expected", [("base", IS_TARGET), ("all", np.ones([5, 2]))])
def test_policies_without_statistics(policy, expected):
  join, counters = _join(policy, stats=None)
  _, targets = join(_columns())
  np.testing.assert_array_equal(targets[joining.MASK], expected)
  assert (counters.unknown_ad_task_samples, counters.samples_read) == (0, 5)


def test_oracle_labels_are_the_true_labels():
  schema = _schema(has_true_labels=True)
  join, _ = _join("oracle", stats=None, schema=schema)
  _, targets = join(_columns(schema=schema))
  true = np.stack([np.ones(5), np.zeros(5)], axis=1)
  np.testing.assert_array_equal(targets[joining.LABELS], true)
  np.testing.assert_array_equal(targets[joining.TRUE_LABELS], true)
  np.testing.assert_array_equal(targets[joining.MASK], np.ones([5, 2]))


def test_point_in_time_join_counts_cold_starts():
  # Daily statistics of task 1 for days 5 and 6 (window T = 2): on day 5 it had A 2, B 0 in
  # the days before; on day 6, B 3. Task 1 on day 4 has no row: a cold start.
  daily = stats_lib.ConversionStats(
    ad_task_ids=np.array([1, 1], np.int64),
    counts=np.array([[2, 0], [0, 3]], np.int64),
    clicks=np.ones(2, np.int64),
    actions=SCHEMA.actions,
    schema_fingerprint=SCHEMA.fingerprint(),
    window_start=4,
    window_end=6,
    days=np.array([5, 6], np.int64),
    lookback_days=2,
  )
  join, counters = _join(stats=daily, mode=point_in_time.POINT_IN_TIME)
  assert join.by_day
  rows = [(1, -1, 0, 0)] * 3
  _, targets = join(_columns(rows, days=[4, 5, 6]))
  np.testing.assert_array_equal(targets[joining.MASK], [[0, 0], [1, 0], [0, 1]])
  assert (counters.cold_start_samples, counters.unknown_ad_task_samples) == (1, 0)
