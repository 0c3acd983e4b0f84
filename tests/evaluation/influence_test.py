"""Tests of kaml_tf.evaluation.influence: hand-computed influences, and agreement with the
row bootstrap it approximates."""

import numpy as np
import pytest

from kaml_tf.evaluation import bootstrap
from kaml_tf.evaluation import influence
from kaml_tf.evaluation import metrics

ACTIONS = ("a", "b")


def test_auc_influence_by_hand():
  # Positives 0.9 (both negatives below: V10 = 1) and 0.2 (one of two: 0.5); negatives 0.3
  # (one positive above: V01 = 0.5) and 0.1 (both: 1). AUC 0.75; phi = (V - 0.75) / 2.
  auc, phi = influence.auc_influence(np.array([1, 1, 0, 0]), np.array([0.9, 0.2, 0.3, 0.1]))
  assert auc == pytest.approx(0.75)
  np.testing.assert_allclose(phi, [0.125, -0.125, -0.125, 0.125])
  assert np.sum(phi**2) == pytest.approx(0.0625)


def test_auc_influence_counts_ties_as_half():
  # One tie across the classes: the positive 0.5 has half a negative below, the negative 0.5
  # half a positive above; the other pairs are ordered.
  labels = np.array([1, 0, 1, 0])
  scores = np.array([0.5, 0.5, 0.9, 0.1])
  auc, phi = influence.auc_influence(labels, scores)
  assert auc == pytest.approx(metrics.auc(labels, scores)) and auc == pytest.approx(0.875)
  # V10 = (1 + 0.5) / 2 = 0.75 for 0.5 and 1 for 0.9; V01 = 0.75 for 0.5 and 1 for 0.1.
  np.testing.assert_allclose(phi, [(0.75 - 0.875) / 2, (0.75 - 0.875) / 2, 0.0625, 0.0625])


def test_auc_influence_without_both_classes_is_undefined():
  auc, phi = influence.auc_influence(np.array([1, 1]), np.array([0.2, 0.3]))
  assert np.isnan(auc)
  np.testing.assert_array_equal(phi, [0.0, 0.0])


def test_logloss_influence_is_the_centred_row_loss():
  labels, probs = np.array([1, 0]), np.array([0.5, 0.25])
  loss, phi = influence.logloss_influence(labels, probs)
  rows = np.array([np.log(2), -np.log(0.75)])
  assert loss == pytest.approx(metrics.logloss(labels, probs))
  np.testing.assert_allclose(phi, (rows - rows.mean()) / 2)


def test_seed_mean_draws_points_equal_the_exact_metrics():
  rng = np.random.default_rng(1)
  labels = rng.integers(0, 2, (300, 2))
  target = rng.integers(-1, 2, 300)
  p1, p2, p3 = (rng.uniform(0.01, 0.99, (300, 2)) for _ in range(3))
  out = influence.seed_mean_draws(labels, target, [[p1, p2], [p3]], ACTIONS, num_draws=40)
  exact = bootstrap.seed_mean_draws(labels, target, [[p1, p2], [p3]], ACTIONS, num_resamples=0)
  for block in ("overall", "a", "b"):
    np.testing.assert_allclose(out[block]["point"], exact[block]["point"])
    assert out[block]["draws"].shape == (40, 2, 2)
  # Two identical configurations have identical draws (a singular covariance).
  twice = influence.seed_mean_draws(labels, target, [[p3], [p3]], ACTIONS, num_draws=20)
  np.testing.assert_allclose(twice["b"]["draws"][:, 0], twice["b"]["draws"][:, 1])


def test_seed_mean_draws_match_the_row_bootstrap_spread():
  # Two correlated models on 1,500 rows: the normal draws' standard deviations of each AUC,
  # each LogLoss and of the AUC difference agree with 500 row resamples to within 15 %.
  rng = np.random.default_rng(5)
  n = 1500
  labels = (rng.random((n, 2)) < 0.2).astype(int)
  signal = labels + rng.normal(0, 1.2, (n, 2))
  p_a = 1 / (1 + np.exp(-signal))
  p_b = 1 / (1 + np.exp(-(signal + rng.normal(0, 0.5, (n, 2)))))
  target = np.zeros(n, np.int64)
  args = (labels, target, [[p_a], [p_b]], ACTIONS)
  normal = influence.seed_mean_draws(*args, num_draws=4000, seed=2)["overall"]["draws"]
  boot = bootstrap.seed_mean_draws(*args, num_resamples=500, seed=2)["overall"]["draws"]
  for draws_a, draws_b in (
    (normal[:, 0, 0], boot[:, 0, 0]),
    (normal[:, 1, 1], boot[:, 1, 1]),
    (normal[:, 1, 0] - normal[:, 0, 0], boot[:, 1, 0] - boot[:, 0, 0]),
  ):
    assert np.std(draws_a) == pytest.approx(np.std(draws_b), rel=0.15)
