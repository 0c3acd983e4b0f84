"""Paired bootstrap: exact point differences, degenerate intervals, coverage direction."""

import numpy as np
import pytest

from kaml_tf.evaluation import bootstrap
from kaml_tf.evaluation import metrics

ACTIONS = ("a", "b")


def test_target_columns_pick_each_rows_target_and_drop_other():
  probs = np.array([[0.1, 0.9], [0.2, 0.8], [0.3, 0.7]])
  labels = np.array([[1, 0], [0, 1], [1, 1]])
  y, p, t = bootstrap.target_columns(probs, labels, np.array([1, -1, 0]))
  np.testing.assert_array_equal(y, [0, 1])
  np.testing.assert_allclose(p, [0.9, 0.3])
  np.testing.assert_array_equal(t, [1, 0])


def test_identical_models_differ_by_exactly_zero_on_every_resample():
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 2, (200, 2))
  probs = rng.uniform(0.01, 0.99, (200, 2))
  target = rng.integers(0, 2, 200)
  out = bootstrap.paired_differences(labels, target, probs, probs, ACTIONS, num_resamples=50)
  for block in ("overall", "a", "b"):
    for metric in ("auc", "logloss"):
      assert out[block][metric]["difference"] == 0.0
      assert out[block][metric]["low"] == out[block][metric]["high"] == 0.0
      assert out[block][metric]["b_better_share"] == 0.0


def test_point_difference_is_the_full_set_difference_by_hand():
  # Targets all action 0. A ranks one positive below a negative: AUC 3/4; B ranks perfectly.
  labels = np.array([[1, 0], [1, 0], [0, 0], [0, 0]])
  target = np.zeros(4, np.int64)
  probs_a = np.array([[0.9, 0.5], [0.2, 0.5], [0.3, 0.5], [0.1, 0.5]])
  probs_b = np.array([[0.9, 0.5], [0.8, 0.5], [0.3, 0.5], [0.1, 0.5]])
  out = bootstrap.paired_differences(labels, target, probs_a, probs_b, ACTIONS, num_resamples=20)
  assert out["overall"]["auc"]["difference"] == pytest.approx(1.0 - 0.75)
  loss_a = -np.mean(np.log([0.9, 0.2, 0.7, 0.9]))
  loss_b = -np.mean(np.log([0.9, 0.8, 0.7, 0.9]))
  assert out["a"]["logloss"]["difference"] == pytest.approx(loss_b - loss_a)
  # No row targets action b: undefined, not an error.
  assert np.isnan(out["b"]["auc"]["difference"]) and np.isnan(out["b"]["auc"]["low"])


def test_a_clearly_better_model_has_an_interval_above_zero_and_is_seeded():
  rng = np.random.default_rng(1)
  n = 2000
  score = rng.normal(size=n)
  labels = (rng.uniform(size=n) < 1 / (1 + np.exp(-2 * score))).astype(int)
  good = 1 / (1 + np.exp(-2 * score))
  noisy = 1 / (1 + np.exp(-(2 * score + rng.normal(scale=3, size=n))))
  stack = lambda p: np.stack([p, p], axis=1)  # noqa: E731
  target = np.zeros(n, np.int64)
  args = (np.stack([labels, labels], axis=1), target, stack(noisy), stack(good), ACTIONS)
  out = bootstrap.paired_differences(*args, num_resamples=200, seed=3)
  assert 0 < out["overall"]["auc"]["low"] < out["overall"]["auc"]["high"]
  assert out["overall"]["auc"]["b_better_share"] == 1.0
  assert out["overall"]["logloss"]["high"] < 0
  again = bootstrap.paired_differences(*args, num_resamples=200, seed=3)
  assert again["overall"] == out["overall"] and again["a"] == out["a"]


def test_confidence_outside_the_unit_interval_is_refused():
  with pytest.raises(ValueError, match="confidence must be in"):
    bootstrap.paired_differences(
      np.zeros((1, 2)),
      np.zeros(1, np.int64),
      np.zeros((1, 2)),
      np.zeros((1, 2)),
      ACTIONS,
      confidence=1.0,
    )


def test_seed_pairs_average_their_differences():
  labels = np.array([[1, 0], [1, 0], [0, 0], [0, 0]])
  target = np.zeros(4, np.int64)
  a = np.array([[0.9, 0.5], [0.2, 0.5], [0.3, 0.5], [0.1, 0.5]])  # AUC 0.75
  b = np.array([[0.9, 0.5], [0.8, 0.5], [0.3, 0.5], [0.1, 0.5]])  # AUC 1.0
  out = bootstrap.paired_differences(labels, target, [a, a], [b, a], ACTIONS, num_resamples=10)
  assert out["overall"]["auc"]["difference"] == pytest.approx((0.25 + 0.0) / 2)
  with pytest.raises(ValueError, match="paired seeds: A has 2 runs, B has 1"):
    bootstrap.paired_differences(labels, target, [a, a], [b], ACTIONS)


def test_seed_mean_draws_average_each_configurations_seeds_on_shared_resamples():
  rng = np.random.default_rng(1)
  labels = rng.integers(0, 2, (300, 2))
  target = rng.integers(-1, 2, 300)
  p1, p2, p3 = (rng.uniform(0.01, 0.99, (300, 2)) for _ in range(3))
  out = bootstrap.seed_mean_draws(labels, target, [[p1, p2], [p3]], ACTIONS, num_resamples=40)
  y, q1, _ = bootstrap.target_columns(p1, labels, target)
  _, q2, _ = bootstrap.target_columns(p2, labels, target)
  _, q3, _ = bootstrap.target_columns(p3, labels, target)
  # Full rows: configuration 0 is the mean of its two seeds, configuration 1 its one seed.
  expected = [
    [
      (metrics.auc(y, q1) + metrics.auc(y, q2)) / 2,
      (metrics.logloss(y, q1) + metrics.logloss(y, q2)) / 2,
    ],
    [metrics.auc(y, q3), metrics.logloss(y, q3)],
  ]
  np.testing.assert_allclose(out["overall"]["point"], expected)
  assert out["overall"]["draws"].shape == (40, 2, 2)
  assert out["a"]["draws"].shape == (40, 2, 2)
  # The same configuration twice has the same value on every resample (shared rows).
  twice = bootstrap.seed_mean_draws(labels, target, [[p3], [p3]], ACTIONS, num_resamples=20)
  np.testing.assert_array_equal(twice["b"]["draws"][:, 0], twice["b"]["draws"][:, 1])


def test_percentile_interval_drops_undefined_values():
  low, high = bootstrap.percentile_interval([np.nan] + list(range(101)), confidence=0.9)
  assert (low, high) == (pytest.approx(5.0), pytest.approx(95.0))
  assert all(np.isnan(bootstrap.percentile_interval([np.nan])))
