"""Tests for kaml_tf.losses.masked_bce on hand-computed numbers (eq. 12)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from kaml_tf.losses import masked_bce

LN2, LN3 = math.log(2.0), math.log(3.0)

# sigmoid(ln 3) = 3/4, sigmoid(0) = 1/2, sigmoid(-ln 3) = 1/4.
LOGITS = [[LN3, 0.0], [0.0, -LN3], [-LN3, LN3]]
LABELS = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
MASK = [[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]]
# Action 0: sample 0 (y=1, p=3/4) -> ln(4/3); sample 1 (y=0, p=1/2) -> ln 2; sample 2 unmasked.
# Action 1: sample 0 (y=0, p=1/2) -> ln 2; samples 1 and 2 unmasked.
EXPECTED_SUMS = [math.log(8.0 / 3.0), LN2]
EXPECTED_COUNTS = [2.0, 1.0]
EXPECTED_LOSS = math.log(8.0 / 3.0) / 2.0 + LN2


def _t(x):
  return tf.constant(x, tf.float32)


def test_statistics_hand_computed():
  sums, counts = masked_bce.masked_bce_statistics(_t(LABELS), _t(LOGITS), _t(MASK))
  np.testing.assert_allclose(sums.numpy(), EXPECTED_SUMS, rtol=1e-6)
  np.testing.assert_array_equal(counts.numpy(), EXPECTED_COUNTS)


def test_loss_hand_computed():
  loss = masked_bce.MaskedBinaryCrossentropy()
  assert loss(_t(LABELS), _t(LOGITS), _t(MASK)).numpy() == pytest.approx(EXPECTED_LOSS, rel=1e-6)


@pytest.mark.parametrize(
  "weights, expected",
  [
    ((2.0, 0.5), math.log(8.0 / 3.0) + 0.5 * LN2),
    (3.0, 3.0 * EXPECTED_LOSS),
    ((1.0, 0.0), math.log(8.0 / 3.0) / 2.0),
  ],
)
def test_per_action_weights(weights, expected):
  loss = masked_bce.MaskedBinaryCrossentropy(weights=weights)
  assert loss(_t(LABELS), _t(LOGITS), _t(MASK)).numpy() == pytest.approx(expected, rel=1e-6)


def test_gradients_reach_only_masked_samples():
  logits = tf.Variable(LOGITS, dtype=tf.float32)
  with tf.GradientTape() as tape:
    value = masked_bce.MaskedBinaryCrossentropy()(_t(LABELS), logits, _t(MASK))
  grad = tape.gradient(value, logits).numpy()
  # d BCE / d s = sigmoid(s) - y, divided by the action's masked count.
  expected = [[(0.75 - 1.0) / 2.0, (0.5 - 0.0) / 1.0], [(0.5 - 0.0) / 2.0, 0.0], [0.0, 0.0]]
  np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=0.0)
  assert grad[2, 0] == 0.0 and grad[1, 1] == 0.0 and grad[2, 1] == 0.0


def test_unmasked_extreme_logits_do_not_leak():
  logits = tf.Variable([[LN3, 1e4], [0.0, -1e4]], dtype=tf.float32)
  labels = _t([[1.0, 0.0], [0.0, 1.0]])
  mask = _t([[1.0, 0.0], [1.0, 0.0]])
  with tf.GradientTape() as tape:
    value = masked_bce.MaskedBinaryCrossentropy()(labels, logits, mask)
  grad = tape.gradient(value, logits).numpy()
  assert value.numpy() == pytest.approx((math.log(4.0 / 3.0) + LN2) / 2.0, rel=1e-6)
  np.testing.assert_array_equal(grad[:, 1], [0.0, 0.0])


def test_all_zero_mask_gives_zero_not_nan():
  logits = tf.Variable(LOGITS, dtype=tf.float32)
  zero_mask = tf.zeros((3, 2))
  with tf.GradientTape() as tape:
    value = masked_bce.MaskedBinaryCrossentropy()(_t(LABELS), logits, zero_mask)
  sums, counts = masked_bce.masked_bce_statistics(_t(LABELS), logits, zero_mask)
  assert value.numpy() == 0.0
  np.testing.assert_array_equal(sums.numpy(), [0.0, 0.0])
  np.testing.assert_array_equal(counts.numpy(), [0.0, 0.0])
  np.testing.assert_array_equal(tape.gradient(value, logits).numpy(), np.zeros((3, 2)))


def test_action_without_masked_samples_contributes_zero():
  mask = _t([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
  value = masked_bce.MaskedBinaryCrossentropy()(_t(LABELS), _t(LOGITS), mask)
  assert value.numpy() == pytest.approx(math.log(8.0 / 3.0) / 2.0, rel=1e-6)


def test_numerically_stable_for_large_logits():
  # A confident wrong logit of +-100 costs softplus(100) = 100; a confident right one ~0.
  labels = _t([[1.0, 0.0], [0.0, 1.0]])
  logits = _t([[-100.0, 100.0], [-100.0, 100.0]])
  sums, _ = masked_bce.masked_bce_statistics(labels, logits, tf.ones((2, 2)))
  np.testing.assert_allclose(sums.numpy(), [100.0, 100.0], rtol=1e-6)


def test_split_batch_statistics_equal_full_batch():
  loss = masked_bce.MaskedBinaryCrossentropy()
  s1, c1 = loss.statistics(_t(LABELS[:1]), _t(LOGITS[:1]), _t(MASK[:1]))
  s2, c2 = loss.statistics(_t(LABELS[1:]), _t(LOGITS[1:]), _t(MASK[1:]))
  assert loss.reduce(s1 + s2, c1 + c2).numpy() == pytest.approx(EXPECTED_LOSS, rel=1e-6)


def test_works_inside_tf_function_with_unknown_batch():
  loss = masked_bce.MaskedBinaryCrossentropy(weights=(1.0, 1.0))
  spec = tf.TensorSpec([None, 2], tf.float32)
  fn = tf.function(loss.__call__, input_signature=[spec, spec, spec])
  assert fn(_t(LABELS), _t(LOGITS), _t(MASK)).numpy() == pytest.approx(EXPECTED_LOSS, rel=1e-6)


@pytest.mark.parametrize(
  "weights, quoted",
  [
    ((1.0, -1.0), "-1.0"),
    (float("nan"), "nan"),
    ((), "()"),
    ("abc", "'abc'"),
    ((1.0, True), "True"),
  ],
)
def test_rejects_bad_weights(weights, quoted):
  with pytest.raises(ValueError, match="weights") as err:
    masked_bce.MaskedBinaryCrossentropy(weights=weights)
  assert quoted in str(err.value)


def test_rejects_weight_count_mismatch():
  loss = masked_bce.MaskedBinaryCrossentropy(weights=(1.0, 2.0, 3.0))
  with pytest.raises(ValueError, match=r"3 per-action weights \[1.0, 2.0, 3.0\] for 2 actions"):
    loss(_t(LABELS), _t(LOGITS), _t(MASK))


def test_rejects_bad_shapes():
  loss = masked_bce.MaskedBinaryCrossentropy()
  with pytest.raises(ValueError, match=r"mask shape \(3, 3\) does not match logits"):
    loss(_t(LABELS), _t(LOGITS), tf.ones((3, 3)))
  with pytest.raises(ValueError, match="logits must have shape"):
    loss(_t(LABELS), tf.ones((3,)), _t(MASK))


def test_config_round_trip():
  loss = masked_bce.MaskedBinaryCrossentropy(weights=(2.0, 0.5), name="bce")
  assert tf.keras.utils.get_registered_name(type(loss)) == "kaml_tf>MaskedBinaryCrossentropy"
  restored = tf.keras.utils.deserialize_keras_object(tf.keras.utils.serialize_keras_object(loss))
  assert isinstance(restored, masked_bce.MaskedBinaryCrossentropy)
  assert restored.get_config() == {"weights": [2.0, 0.5], "name": "bce"}
  assert restored(_t(LABELS), _t(LOGITS), _t(MASK)).numpy() == pytest.approx(
    math.log(8.0 / 3.0) + 0.5 * LN2, rel=1e-6
  )


def test_needs_a_mask():
  with pytest.raises(ValueError, match="needs a mask"):
    masked_bce.MaskedBinaryCrossentropy()(_t(LABELS), _t(LOGITS))
