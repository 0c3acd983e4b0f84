"""Tests for kaml_tf.losses.ranking on hand-computed numbers (eq. 11)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from kaml_tf.losses import ranking

LN2, LN3 = math.log(2.0), math.log(3.0)

# softplus(-(s_i - s_j)): difference ln 3 -> ln(4/3); 0 -> ln 2; -ln 3 -> ln 4.
LOGITS = [[LN3, 0.0], [0.0, LN3], [LN3, 0.0], [2 * LN3, LN3]]
LABELS = [[1.0, 1.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]]
MASK = [[1.0, 1.0], [0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]
# All samples. Action 0: positive 0 vs zeros 1, 2, 3 -> ln(4/3) + ln 2 + ln 4 = ln(32/3), 3 pairs.
# Action 1: positives 0, 1 vs zeros 2, 3 -> ln 2 + ln 4 + ln(4/3) + ln 2 = ln(64/3), 4 pairs.
ALL_SUMS = [math.log(32.0 / 3.0), math.log(64.0 / 3.0)]
ALL_COUNTS = [3.0, 4.0]
ALL_LOSS = math.log(32.0 / 3.0) / 3.0 + math.log(64.0 / 3.0) / 4.0
# Masked only. Action 0: positive 0 vs zeros 2, 3 -> ln 2 + ln 4 = ln 8, 2 pairs.
# Action 1: positive 0 (1 is unmasked) vs zero 3 (2 is unmasked) -> ln 4, 1 pair.
MASKED_SUMS = [math.log(8.0), math.log(4.0)]
MASKED_COUNTS = [2.0, 1.0]
MASKED_LOSS = 3.5 * LN2


def _t(x):
  return tf.constant(x, tf.float32)


@pytest.mark.parametrize(
  "masked_pairs_only, sums, counts, loss",
  [
    (False, ALL_SUMS, ALL_COUNTS, ALL_LOSS),
    (True, MASKED_SUMS, MASKED_COUNTS, MASKED_LOSS),
  ],
)
def test_hand_computed(masked_pairs_only, sums, counts, loss):
  rank = ranking.PairwiseRankingLoss(masked_pairs_only=masked_pairs_only)
  got_sums, got_counts = rank.statistics(_t(LABELS), _t(LOGITS), _t(MASK))
  np.testing.assert_allclose(got_sums.numpy(), sums, rtol=1e-6)
  np.testing.assert_array_equal(got_counts.numpy(), counts)
  assert rank(_t(LABELS), _t(LOGITS), _t(MASK)).numpy() == pytest.approx(loss, rel=1e-6)


def test_default_ignores_mask_so_unlabelled_samples_count():
  rank = ranking.PairwiseRankingLoss()
  no_mask = rank(_t(LABELS), _t(LOGITS), tf.zeros((4, 2)))
  without = rank(_t(LABELS), _t(LOGITS))
  assert no_mask.numpy() == pytest.approx(ALL_LOSS, rel=1e-6)
  assert without.numpy() == pytest.approx(ALL_LOSS, rel=1e-6)


@pytest.mark.parametrize(
  "betas, expected",
  [
    ((1.0, 0.5), math.log(32.0 / 3.0) / 3.0 + math.log(64.0 / 3.0) / 8.0),
    (2.0, 2.0 * ALL_LOSS),
    ((0.0, 1.0), math.log(64.0 / 3.0) / 4.0),
  ],
)
def test_betas(betas, expected):
  rank = ranking.PairwiseRankingLoss(betas=betas)
  assert rank(_t(LABELS), _t(LOGITS), _t(MASK)).numpy() == pytest.approx(expected, rel=1e-6)


def test_batch_without_positives_is_zero_not_nan():
  logits = tf.Variable(LOGITS, dtype=tf.float32)
  with tf.GradientTape() as tape:
    value = ranking.PairwiseRankingLoss()(tf.zeros((4, 2)), logits, _t(MASK))
  sums, counts = ranking.ranking_statistics(tf.zeros((4, 2)), logits, _t(MASK))
  assert value.numpy() == 0.0
  np.testing.assert_array_equal(sums.numpy(), [0.0, 0.0])
  np.testing.assert_array_equal(counts.numpy(), [0.0, 0.0])
  np.testing.assert_array_equal(tape.gradient(value, logits).numpy(), np.zeros((4, 2)))


def test_batch_without_zeros_is_zero():
  value = ranking.PairwiseRankingLoss()(tf.ones((4, 2)), _t(LOGITS), _t(MASK))
  assert value.numpy() == 0.0


def test_all_zero_mask_with_masked_pairs_only_is_zero():
  rank = ranking.PairwiseRankingLoss(masked_pairs_only=True)
  sums, counts = rank.statistics(_t(LABELS), _t(LOGITS), tf.zeros((4, 2)))
  np.testing.assert_array_equal(sums.numpy(), [0.0, 0.0])
  np.testing.assert_array_equal(counts.numpy(), [0.0, 0.0])
  assert rank(_t(LABELS), _t(LOGITS), tf.zeros((4, 2))).numpy() == 0.0


def test_gradient_hand_computed():
  # One positive (s=0) against two zeros (s=0): each pair costs ln 2 and has
  # d/ds_i = -sigmoid(0) = -1/2, d/ds_j = +1/2; the average halves both.
  logits = tf.Variable([[0.0], [0.0], [0.0]], dtype=tf.float32)
  with tf.GradientTape() as tape:
    value = ranking.PairwiseRankingLoss()(_t([[1.0], [0.0], [0.0]]), logits)
  assert value.numpy() == pytest.approx(LN2, rel=1e-6)
  np.testing.assert_allclose(
    tape.gradient(value, logits).numpy(), [[-0.5], [0.25], [0.25]], rtol=1e-6
  )


def test_masked_pairs_only_gradient_skips_unmasked_samples():
  logits = tf.Variable(LOGITS, dtype=tf.float32)
  with tf.GradientTape() as tape:
    value = ranking.PairwiseRankingLoss(masked_pairs_only=True)(_t(LABELS), logits, _t(MASK))
  grad = tape.gradient(value, logits).numpy()
  np.testing.assert_array_equal(grad[np.array(MASK) == 0.0], 0.0)
  assert np.all(grad[np.array(MASK) == 1.0] != 0.0)


def test_numerically_stable_for_large_logit_gaps():
  sums, _ = ranking.ranking_statistics(_t([[1.0], [0.0]]), _t([[-100.0], [100.0]]))
  np.testing.assert_allclose(sums.numpy(), [200.0], rtol=1e-6)


def _brute_force(labels, logits, mask, masked_pairs_only):
  """The B x B x N definition of eq. 11, in float64."""
  b, n = labels.shape
  sums, counts = np.zeros(n), np.zeros(n)
  for k in range(n):
    for i in range(b):
      for j in range(b):
        ok = labels[i, k] == 1 and labels[j, k] == 0
        if masked_pairs_only:
          ok = ok and mask[i, k] == 1 and mask[j, k] == 1
        if ok:
          sums[k] += np.logaddexp(0.0, -(logits[i, k] - logits[j, k]))
          counts[k] += 1
  return sums, counts


@pytest.mark.parametrize("masked_pairs_only", [False, True])
def test_matches_brute_force_on_random_batch(masked_pairs_only):
  rng = np.random.default_rng(7)
  labels = (rng.random((12, 3)) < 0.3).astype(np.float32)
  logits = rng.normal(size=(12, 3)).astype(np.float32)
  mask = (rng.random((12, 3)) < 0.6).astype(np.float32)
  sums, counts = ranking.ranking_statistics(labels, logits, mask, masked_pairs_only)
  want_sums, want_counts = _brute_force(labels, logits.astype(np.float64), mask, masked_pairs_only)
  np.testing.assert_allclose(sums.numpy(), want_sums, rtol=1e-5)
  np.testing.assert_array_equal(counts.numpy(), want_counts)


def test_paper_batch_of_5000_runs_in_positives_times_batch_memory():
  # 5000 samples x 5 actions at ~2% positives: ~500 positives x 5000 = 2.5M pair terms,
  # where a B x B x N tensor would hold 125M.
  rng = np.random.default_rng(0)
  labels = (rng.random((5000, 5)) < 0.02).astype(np.float32)
  logits = tf.Variable(rng.normal(size=(5000, 5)).astype(np.float32))
  rank = ranking.PairwiseRankingLoss(betas=(1.0, 1.0, 1.0, 1.0, 1.0))
  with tf.GradientTape() as tape:
    sums, counts = rank.statistics(labels, logits, tf.ones((5000, 5)))
    value = rank.reduce(sums, counts)
  grad = tape.gradient(value, logits)
  positives = labels.sum(axis=0)
  np.testing.assert_array_equal(counts.numpy(), positives * (5000 - positives))
  x = logits.numpy().astype(np.float64)
  want = [
    np.logaddexp(0.0, x[labels[:, k] == 0, k][None, :] - x[labels[:, k] == 1, k][:, None]).sum()
    for k in range(5)
  ]
  np.testing.assert_allclose(sums.numpy(), want, rtol=1e-4)
  assert np.isfinite(value.numpy()) and np.all(np.isfinite(grad.numpy()))


def test_works_inside_tf_function_with_unknown_batch():
  rank = ranking.PairwiseRankingLoss(masked_pairs_only=True)
  spec = tf.TensorSpec([None, 2], tf.float32)
  fn = tf.function(rank.__call__, input_signature=[spec, spec, spec])
  assert fn(_t(LABELS), _t(LOGITS), _t(MASK)).numpy() == pytest.approx(MASKED_LOSS, rel=1e-6)
  assert fn(tf.zeros((0, 2)), tf.zeros((0, 2)), tf.zeros((0, 2))).numpy() == 0.0


@pytest.mark.parametrize(
  "kwargs, quoted",
  [
    (dict(betas=(1.0, -0.5)), "-0.5"),
    (dict(betas=float("inf")), "inf"),
    (dict(masked_pairs_only=1), "got 1"),
    (dict(masked_pairs_only="yes"), "'yes'"),
  ],
)
def test_rejects_bad_hyper_parameters(kwargs, quoted):
  with pytest.raises(ValueError) as err:
    ranking.PairwiseRankingLoss(**kwargs)
  assert quoted in str(err.value)


def test_masked_pairs_only_needs_a_mask():
  with pytest.raises(ValueError, match="needs a mask"):
    ranking.PairwiseRankingLoss(masked_pairs_only=True)(_t(LABELS), _t(LOGITS))


def test_config_round_trip():
  rank = ranking.PairwiseRankingLoss(betas=(1.0, 0.5), masked_pairs_only=True, name="r")
  assert tf.keras.utils.get_registered_name(type(rank)) == "kaml_tf>PairwiseRankingLoss"
  restored = tf.keras.utils.deserialize_keras_object(tf.keras.utils.serialize_keras_object(rank))
  assert restored.get_config() == {"betas": [1.0, 0.5], "masked_pairs_only": True, "name": "r"}
  assert restored(_t(LABELS), _t(LOGITS), _t(MASK)).numpy() == pytest.approx(
    math.log(8.0) / 2.0 + 0.5 * math.log(4.0), rel=1e-6
  )
