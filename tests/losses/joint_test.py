"""Tests for kaml_tf.losses.joint: eq. 13 plus the model's regularization, per term."""

import math

import numpy as np
import pytest
import tensorflow as tf

from kaml_tf.losses import joint
from kaml_tf.losses import masked_bce
from kaml_tf.losses import ranking

LN2, LN3 = math.log(2.0), math.log(3.0)

# The ranking test's batch (see ranking_test.py for the pair losses).
LOGITS = [[LN3, 0.0], [0.0, LN3], [LN3, 0.0], [2 * LN3, LN3]]
LABELS = [[1.0, 1.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]]
MASK = [[1.0, 1.0], [0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]
# BCE, action 0 over samples 0, 2, 3: p = 3/4, 3/4, 9/10 with y = 1, 0, 0
#   -> ln(4/3) + ln 4 + ln 10 = ln(160/3), 3 samples.
# BCE, action 1 over samples 0, 3: p = 1/2, 3/4 with y = 1, 0 -> ln 2 + ln 4 = ln 8, 2 samples.
BCE_ACTIONS = [math.log(160.0 / 3.0) / 3.0, math.log(8.0) / 2.0]
BCE = sum(BCE_ACTIONS)
RANK_ACTIONS = [math.log(32.0 / 3.0) / 3.0, math.log(64.0 / 3.0) / 4.0]
RANK = sum(RANK_ACTIONS)
MASKED_RANK_ACTIONS = [math.log(8.0) / 2.0, math.log(4.0)]


def _t(x):
  return tf.constant(x, tf.float32)


def _numpy(terms):
  return {k: float(v.numpy()) for k, v in terms.items()}


def test_hand_computed_terms():
  terms = joint.KamlLoss(gamma=0.25)(_t(LABELS), _t(LOGITS), _t(MASK), regularization=_t(0.5))
  assert list(terms) == list(joint.TERMS)
  got = _numpy(terms)
  assert got["bce"] == pytest.approx(BCE, rel=1e-6)
  assert got["rank"] == pytest.approx(RANK, rel=1e-6)
  assert got["regularization"] == 0.5
  assert got["total"] == pytest.approx(0.25 * BCE + 0.75 * RANK + 0.5, rel=1e-6)


def test_weights_betas_and_masked_pairs_are_forwarded():
  loss = joint.KamlLoss(gamma=0.5, bce_weights=(1.0, 0.0), betas=(0.0, 1.0), masked_pairs_only=True)
  got = _numpy(loss(_t(LABELS), _t(LOGITS), _t(MASK)))
  assert got["bce"] == pytest.approx(BCE_ACTIONS[0], rel=1e-6)
  assert got["rank"] == pytest.approx(MASKED_RANK_ACTIONS[1], rel=1e-6)
  assert got["regularization"] == 0.0
  assert got["total"] == pytest.approx(0.5 * BCE_ACTIONS[0] + 0.5 * math.log(4.0), rel=1e-6)


def test_gamma_one_never_computes_the_ranking_loss(monkeypatch):
  def _fail(*args, **kwargs):
    raise AssertionError("the ranking loss was computed with gamma = 1")

  monkeypatch.setattr(ranking, "ranking_statistics", _fail)
  loss = joint.KamlLoss(gamma=1.0)
  assert not loss.uses_ranking
  stats = loss.statistics(_t(LABELS), _t(LOGITS), _t(MASK))
  np.testing.assert_array_equal(stats[joint.RANK_SUM].numpy(), [0.0, 0.0])
  np.testing.assert_array_equal(stats[joint.RANK_COUNT].numpy(), [0.0, 0.0])
  got = _numpy(loss(_t(LABELS), _t(LOGITS), _t(MASK), regularization=_t(0.25)))
  assert got["rank"] == 0.0
  assert got["total"] == pytest.approx(BCE + 0.25, rel=1e-6)


def test_gamma_zero_is_ranking_only():
  got = _numpy(joint.KamlLoss(gamma=0.0)(_t(LABELS), _t(LOGITS), _t(MASK)))
  assert got["bce"] == pytest.approx(BCE, rel=1e-6)
  assert got["total"] == pytest.approx(RANK, rel=1e-6)


def test_gradient_is_the_gamma_mix_plus_regularization():
  logits = tf.Variable(LOGITS, dtype=tf.float32)
  scale = tf.Variable(2.0)
  with tf.GradientTape(persistent=True) as tape:
    total = joint.KamlLoss(gamma=0.25)(_t(LABELS), logits, _t(MASK), regularization=scale * scale)[
      "total"
    ]
    bce = masked_bce.MaskedBinaryCrossentropy()(_t(LABELS), logits, _t(MASK))
    rank = ranking.PairwiseRankingLoss()(_t(LABELS), logits, _t(MASK))
  np.testing.assert_allclose(
    tape.gradient(total, logits).numpy(),
    0.25 * tape.gradient(bce, logits).numpy() + 0.75 * tape.gradient(rank, logits).numpy(),
    rtol=1e-6,
    atol=1e-7,
  )
  assert tape.gradient(total, scale).numpy() == pytest.approx(4.0)


def test_all_zero_mask_and_no_positives_give_zero():
  got = _numpy(joint.KamlLoss(gamma=0.5)(tf.zeros((4, 2)), _t(LOGITS), tf.zeros((4, 2))))
  assert got == {"bce": 0.0, "rank": 0.0, "regularization": 0.0, "total": 0.0}


def test_two_replicas_reduce_globally():
  # Replica A holds samples 0-1, replica B samples 2-3. Pairs form within a replica only:
  # action 0 keeps pair (0, 1) -> ln(4/3); action 1 has no zero in A and no positive in B.
  loss = joint.KamlLoss(gamma=0.25)
  stats_a = loss.statistics(_t(LABELS[:2]), _t(LOGITS[:2]), _t(MASK[:2]))
  stats_b = loss.statistics(_t(LABELS[2:]), _t(LOGITS[2:]), _t(MASK[2:]))
  summed = {k: stats_a[k] + stats_b[k] for k in joint.STATISTICS_KEYS}
  got = _numpy(loss.from_statistics(summed))
  assert got["bce"] == pytest.approx(BCE, rel=1e-6)
  assert got["rank"] == pytest.approx(math.log(4.0 / 3.0), rel=1e-6)
  # Linear in the sums: local sums with the global counts add up to the global objective.
  per_replica = []
  for local in (stats_a, stats_b):
    mixed = {
      joint.BCE_SUM: local[joint.BCE_SUM],
      joint.RANK_SUM: local[joint.RANK_SUM],
      joint.BCE_COUNT: summed[joint.BCE_COUNT],
      joint.RANK_COUNT: summed[joint.RANK_COUNT],
    }
    per_replica.append(float(loss.from_statistics(mixed)["total"].numpy()))
  assert sum(per_replica) == pytest.approx(got["total"], rel=1e-6)


def test_runs_in_a_tf_function_train_step():
  loss = joint.KamlLoss(gamma=0.25)
  spec = tf.TensorSpec([None, 2], tf.float32)

  @tf.function(input_signature=[spec, spec, spec, tf.TensorSpec([], tf.float32)])
  def step(labels, logits, mask, regularization):
    return loss(labels, logits, mask, regularization)

  got = _numpy(step(_t(LABELS), _t(LOGITS), _t(MASK), _t(0.5)))
  assert got["total"] == pytest.approx(0.25 * BCE + 0.75 * RANK + 0.5, rel=1e-6)


@pytest.mark.parametrize("gamma", [1.5, -0.1, float("nan"), True, "0.5", None])
def test_rejects_bad_gamma(gamma):
  with pytest.raises(ValueError, match="gamma must be a number in") as err:
    joint.KamlLoss(gamma=gamma)
  assert repr(gamma) in str(err.value)


def test_rejects_bad_weights_and_flags():
  with pytest.raises(ValueError, match="-2"):
    joint.KamlLoss(gamma=0.5, betas=(1.0, -2.0))
  with pytest.raises(ValueError, match="weights"):
    joint.KamlLoss(gamma=0.5, bce_weights=-1.0)
  with pytest.raises(ValueError, match="masked_pairs_only"):
    joint.KamlLoss(gamma=0.5, masked_pairs_only="no")


def test_rejects_incomplete_statistics_and_non_scalar_regularization():
  loss = joint.KamlLoss(gamma=0.5)
  with pytest.raises(ValueError, match=r"statistics lack \['rank_sum', 'rank_count'\]"):
    loss.from_statistics({joint.BCE_SUM: _t([1.0]), joint.BCE_COUNT: _t([1.0])})
  with pytest.raises(ValueError, match="regularization must be a scalar"):
    loss(_t(LABELS), _t(LOGITS), _t(MASK), regularization=_t([1.0, 2.0]))


def test_config_round_trip():
  loss = joint.KamlLoss(
    gamma=0.5, bce_weights=(1.0, 0.0), betas=(0.0, 1.0), masked_pairs_only=True, name="kaml"
  )
  assert tf.keras.utils.get_registered_name(joint.KamlLoss) == "kaml_tf>KamlLoss"
  restored = tf.keras.utils.deserialize_keras_object(tf.keras.utils.serialize_keras_object(loss))
  assert restored.get_config() == {
    "gamma": 0.5,
    "bce_weights": [1.0, 0.0],
    "betas": [0.0, 1.0],
    "masked_pairs_only": True,
    "name": "kaml",
    "extended_weight": None,
  }
  assert float(restored(_t(LABELS), _t(LOGITS), _t(MASK))["total"].numpy()) == pytest.approx(
    0.5 * BCE_ACTIONS[0] + 0.5 * math.log(4.0), rel=1e-6
  )
