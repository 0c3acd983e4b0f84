"""Tests for soft ADM (kaml_tf.losses.soft_adm through KamlLoss) on hand-computed numbers."""

import math

import numpy as np
import pytest
import tensorflow as tf

from kaml_tf.losses import joint
from kaml_tf.losses import soft_adm

LN2, LN3 = math.log(2.0), math.log(3.0)

# Row 0 targets action 0, row 1 action 1, row 2 action 0, row 3 is "Other".
IS_TARGET = [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 0.0]]
# ADM extends action 0 to rows 1 and 3 and action 1 to row 2 (the extended cells).
MASK = [[1.0, 0.0], [1.0, 1.0], [1.0, 1.0], [1.0, 0.0]]
LABELS = [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [1.0, 1.0]]
# p = sigmoid(s): ln 3 -> 3/4, 0 -> 1/2, 2 ln 3 -> 9/10.
LOGITS = [[LN3, 0.0], [0.0, 0.0], [LN3, LN3], [0.0, 2 * LN3]]
# Cell BCEs. Action 0: target rows 0 (y 1, p 3/4) ln(4/3) and 2 (y 0, p 3/4) ln 4; extended
# rows 1 (y 0, p 1/2) ln 2 and 3 (y 1, p 1/2) ln 2. Action 1: target row 1 (y 1, p 1/2) ln 2;
# extended row 2 (y 0, p 3/4) ln 4.
BASE_BCE = [math.log(16.0 / 3.0) / 2.0, LN2]  # w = 0: targets only
ADM_BCE = [math.log(64.0 / 3.0) / 4.0, math.log(8.0) / 2.0]  # w = 1: every masked cell
# w = 1/2: action 0 (ln(16/3) + (ln 2 + ln 2) / 2) / (2 + 2/2) = ln(32/3) / 3;
# action 1 (ln 2 + ln 4 / 2) / (1 + 1/2) = 4/3 ln 2.
HALF_BCE = [math.log(32.0 / 3.0) / 3.0, 4.0 / 3.0 * LN2]
# w = (1/2, 1/4): action 1 (ln 2 + ln 4 / 4) / (1 + 1/4) = 1.2 ln 2.
PER_ACTION_BCE = [HALF_BCE[0], 1.2 * LN2]

# Ranking pairs within the mask (masked_pairs_only), softplus(-(s_pos - s_zero)):
# action 0: positives 0 (target, ln 3) and 3 (extended, 0), zeros 1 (extended, 0) and
#   2 (target, ln 3): (0, 1) ln(4/3) weight w; (0, 2) ln 2 weight 1; (3, 1) ln 2 weight w;
#   (3, 2) ln 4 weight w.
# action 1: positive 1 (target, 0), zero 2 (extended, ln 3): ln 4 weight w; no base pair.
BASE_MASKED_RANK = [LN2, 0.0]
ADM_MASKED_RANK = [math.log(64.0 / 3.0) / 4.0, math.log(4.0)]
HALF_MASKED_RANK = [(LN2 + 0.5 * math.log(32.0 / 3.0)) / 2.5, math.log(4.0)]
HALF_MASKED_RANK_COUNTS = [2.5, 0.5]
# Default pairs (every row, masked or not). Action 0: the same 4 pairs as above. Action 1:
# positives 1 (0) and 3 (2 ln 3), zeros 0 (0) and 2 (ln 3): ln 2 + ln 4 + ln(10/9) + ln(4/3).
ALL_RANK = [math.log(64.0 / 3.0) / 4.0, math.log(320.0 / 27.0) / 4.0]


def _t(x):
  return tf.constant(x, tf.float32)


def _terms(extended_weight, mask=MASK, is_target=IS_TARGET, gamma=1.0, **kwargs):
  loss = joint.KamlLoss(gamma=gamma, extended_weight=extended_weight, **kwargs)
  return loss(_t(LABELS), _t(LOGITS), _t(mask), is_target=_t(is_target))


def test_cell_weights_are_one_on_targets_w_on_extended_cells_zero_elsewhere():
  got = soft_adm.cell_weights(_t(MASK), _t(IS_TARGET), (0.5, 0.25)).numpy()
  np.testing.assert_array_equal(got, [[1.0, 0.0], [0.5, 1.0], [1.0, 0.25], [0.5, 0.0]])


def test_weight_zero_is_exactly_the_base_mask_loss():
  loss = joint.KamlLoss(gamma=1.0, extended_weight=0.0)
  soft = loss.statistics(_t(LABELS), _t(LOGITS), _t(MASK), _t(IS_TARGET))
  base = joint.KamlLoss(gamma=1.0).statistics(_t(LABELS), _t(LOGITS), _t(IS_TARGET))
  for key in joint.STATISTICS_KEYS:
    np.testing.assert_array_equal(soft[key].numpy(), base[key].numpy())
  np.testing.assert_array_equal(soft[joint.BCE_COUNT].numpy(), [2.0, 1.0])
  assert _terms(0.0)["bce"].numpy() == pytest.approx(sum(BASE_BCE), rel=1e-6)


def test_weight_one_is_exactly_todays_adm_loss():
  soft = joint.KamlLoss(gamma=0.5, extended_weight=1.0).statistics(
    _t(LABELS), _t(LOGITS), _t(MASK), _t(IS_TARGET)
  )
  adm = joint.KamlLoss(gamma=0.5).statistics(_t(LABELS), _t(LOGITS), _t(MASK))
  for key in joint.STATISTICS_KEYS:
    np.testing.assert_array_equal(soft[key].numpy(), adm[key].numpy())
  assert _terms(1.0)["bce"].numpy() == pytest.approx(sum(ADM_BCE), rel=1e-6)


@pytest.mark.parametrize(
  "extended_weight, expected",
  [
    (0.5, HALF_BCE),
    ([0.5], HALF_BCE),
    ((0.5, 0.25), PER_ACTION_BCE),
  ],
)
def test_intermediate_weights_hand_computed(extended_weight, expected):
  loss = joint.KamlLoss(gamma=1.0, extended_weight=extended_weight)
  stats = loss.statistics(_t(LABELS), _t(LOGITS), _t(MASK), _t(IS_TARGET))
  per_action = (stats[joint.BCE_SUM] / stats[joint.BCE_COUNT]).numpy()
  np.testing.assert_allclose(per_action, expected, rtol=1e-6)
  assert loss(_t(LABELS), _t(LOGITS), _t(MASK), is_target=_t(IS_TARGET))["bce"].numpy() == (
    pytest.approx(sum(expected), rel=1e-6)
  )


def test_default_ranking_pairs_ignore_the_extended_weight():
  for w in (0.0, 0.5, 1.0):
    assert _terms(w, gamma=0.0)["rank"].numpy() == pytest.approx(sum(ALL_RANK), rel=1e-6)


@pytest.mark.parametrize(
  "extended_weight, expected",
  [
    (0.0, BASE_MASKED_RANK),
    (0.5, HALF_MASKED_RANK),
    (1.0, ADM_MASKED_RANK),
  ],
)
def test_masked_pairs_weigh_w_when_they_involve_an_extended_cell(extended_weight, expected):
  loss = joint.KamlLoss(gamma=0.0, extended_weight=extended_weight, masked_pairs_only=True)
  stats = loss.statistics(_t(LABELS), _t(LOGITS), _t(MASK), _t(IS_TARGET))
  per_action = tf.math.divide_no_nan(stats[joint.RANK_SUM], stats[joint.RANK_COUNT]).numpy()
  np.testing.assert_allclose(per_action, expected, rtol=1e-6)
  if extended_weight == 0.5:
    np.testing.assert_allclose(stats[joint.RANK_COUNT].numpy(), HALF_MASKED_RANK_COUNTS)


def test_gradient_of_an_extended_cell_scales_with_w():
  logits = tf.Variable(LOGITS)
  grads = []
  for w in (0.0, 0.5, 1.0):
    loss = joint.KamlLoss(gamma=1.0, extended_weight=w)
    with tf.GradientTape() as tape:
      stats = loss.statistics(_t(LABELS), logits, _t(MASK), _t(IS_TARGET))
      bce_sum = tf.reduce_sum(stats[joint.BCE_SUM])  # the sums alone, before the averaging
    grads.append(tape.gradient(bce_sum, logits).numpy())
  # Extended cell (row 1, action 0): d BCE / ds = p - y = 1/2, times its weight.
  assert [g[1, 0] for g in grads] == pytest.approx([0.0, 0.25, 0.5])
  # Target cell (row 0, action 0): p - y = -1/4 whatever w; unmasked (row 0, action 1): 0.
  assert [g[0, 0] for g in grads] == pytest.approx([-0.25] * 3)
  assert [g[0, 1] for g in grads] == [0.0] * 3


def test_config_round_trip_keeps_the_weights():
  loss = joint.KamlLoss(gamma=0.5, extended_weight=(0.5, 0.25))
  restored = tf.keras.utils.deserialize_keras_object(tf.keras.utils.serialize_keras_object(loss))
  assert restored.get_config()["extended_weight"] == [0.5, 0.25]
  old = dict(loss.get_config())
  del old["extended_weight"]  # a config saved before soft ADM: ADM as is
  assert joint.KamlLoss.from_config(old).extended_weight is None


@pytest.mark.parametrize("value", [1.5, -0.1, float("nan"), (0.5, 2.0), (), "0.5", True])
def test_bad_weights_name_extended_weight(value):
  with pytest.raises(ValueError, match=r"extended_weight must be .* in \[0, 1\]"):
    joint.KamlLoss(gamma=1.0, extended_weight=value)


def test_wrong_number_of_weights_and_missing_is_target_are_refused():
  with pytest.raises(ValueError, match=r"extended_weight has 3 values \[0.1, 0.2, 0.3\] for 2"):
    _terms((0.1, 0.2, 0.3))
  loss = joint.KamlLoss(gamma=1.0, extended_weight=0.5)
  with pytest.raises(ValueError, match="extended_weight=0.5 needs is_target"):
    loss(_t(LABELS), _t(LOGITS), _t(MASK))
  # ADM as is never needs it.
  joint.KamlLoss(gamma=1.0, extended_weight=1.0)(_t(LABELS), _t(LOGITS), _t(MASK))
