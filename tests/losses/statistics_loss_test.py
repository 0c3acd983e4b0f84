"""Tests for kaml_tf.losses.statistics_loss: the base class, and the arithmetic across replicas.

The replica tests run a `tf.distribute.MirroredStrategy` over 2 logical CPU devices. Logical
devices can only be configured before TensorFlow initialises its devices, which other tests
of the same pytest process do first, so the replicated step runs in a fresh interpreter: this
file run as a script (`_replicated_results`) prints the replicas' values and gradients as
JSON, and the tests compare them with hand-computed numbers and with one device.
"""

import json
import math
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import kaml_tf  # noqa: F401
import tensorflow as tf

from kaml_tf.losses import joint
from kaml_tf.losses import masked_bce
from kaml_tf.losses import ranking
from kaml_tf.losses import statistics_loss

ROOT = pathlib.Path(__file__).resolve().parents[2]
LN2, LN3 = math.log(2.0), math.log(3.0)


def _t(x):
  return tf.constant(x, tf.float32)


class MaskedMean(statistics_loss.StatisticsLoss):
  """A minimal subclass: per action, the mean of the masked logits."""

  def __init__(self, weights=None, name="masked_mean"):
    super().__init__(statistics_loss.check_action_weights(weights, "weights"), name)

  def statistics(self, labels, logits, mask):
    del labels  # Only the base class's contract matters here.
    return tf.reduce_sum(logits * mask, axis=0), tf.reduce_sum(mask, axis=0)

  def get_config(self):
    return {"weights": statistics_loss.weights_config(self.action_weights), **super().get_config()}


# Action 0 averages 1 and 3 -> 2; action 1 has an empty mask -> 0; action 2 averages 5 -> 5.
VALUES = [[1.0, 2.0, 5.0], [3.0, 4.0, 6.0]]
VALUES_MASK = [[1.0, 0.0, 1.0], [1.0, 0.0, 0.0]]


def test_call_is_reduce_of_statistics():
  loss = MaskedMean()
  sums, counts = loss.statistics(None, _t(VALUES), _t(VALUES_MASK))
  np.testing.assert_array_equal(sums.numpy(), [4.0, 0.0, 5.0])
  np.testing.assert_array_equal(counts.numpy(), [2.0, 0.0, 1.0])
  assert loss.reduce(sums, counts).numpy() == 7.0
  assert loss(None, _t(VALUES), _t(VALUES_MASK)).numpy() == 7.0


def test_reduce_applies_the_action_weights():
  # 0.5 * 2 + 3 * 0 + 2 * 5.
  loss = MaskedMean(weights=(0.5, 3.0, 2.0))
  assert loss(None, _t(VALUES), _t(VALUES_MASK)).numpy() == 11.0
  assert MaskedMean(weights=2.0)(None, _t(VALUES), _t(VALUES_MASK)).numpy() == 14.0


def test_statistics_is_abstract():
  class NoStatistics(statistics_loss.StatisticsLoss):
    pass

  with pytest.raises(TypeError, match="statistics"):
    NoStatistics(None, "x")


def test_config_round_trip_keeps_the_name_last():
  loss = MaskedMean(weights=(1.0, 2.0, 0.0), name="m")
  config = loss.get_config()
  assert list(config.items()) == [("weights", [1.0, 2.0, 0.0]), ("name", "m")]
  restored = MaskedMean.from_config(config)
  assert restored.action_weights == (1.0, 2.0, 0.0) and restored.name == "m"
  assert restored(None, _t(VALUES), _t(VALUES_MASK)).numpy() == 2.0


def test_subclasses_share_the_base():
  assert issubclass(masked_bce.MaskedBinaryCrossentropy, statistics_loss.StatisticsLoss)
  assert issubclass(ranking.PairwiseRankingLoss, statistics_loss.StatisticsLoss)


def test_dynamic_average_zero_count_and_weights():
  value = statistics_loss.dynamic_average(_t([3.0, 5.0, 0.0]), _t([2.0, 0.0, 0.0]), (2.0, 7.0, 1.0))
  assert value.numpy() == pytest.approx(3.0)


def test_dynamic_average_is_linear_in_sums():
  # Two replicas with local sums and the global counts add up to the global loss.
  counts = _t([4.0, 1.0])
  a = statistics_loss.dynamic_average(_t([1.0, 2.0]), counts, (1.0, 0.5))
  b = statistics_loss.dynamic_average(_t([3.0, 0.0]), counts, (1.0, 0.5))
  total = statistics_loss.dynamic_average(_t([4.0, 2.0]), counts, (1.0, 0.5))
  assert (a + b).numpy() == pytest.approx(total.numpy()) == pytest.approx(2.0)


@pytest.mark.parametrize(
  "value, expected",
  [(None, None), (2, 2.0), ((1, 0.5), (1.0, 0.5)), ([0.0], (0.0,))],
)
def test_check_action_weights(value, expected):
  assert statistics_loss.check_action_weights(value, "w") == expected


def test_weights_config():
  assert statistics_loss.weights_config((1.0, 0.5)) == [1.0, 0.5]
  assert statistics_loss.weights_config(0.5) == 0.5
  assert statistics_loss.weights_config(None) is None


def test_check_inputs_casts_and_names_the_bad_argument():
  labels, logits, mask = statistics_loss.check_inputs(
    tf.ones((2, 3), tf.int32), tf.ones((2, 3), tf.float16), tf.ones((2, 3), tf.bool)
  )
  assert (labels.dtype, logits.dtype, mask.dtype) == (tf.float32,) * 3
  with pytest.raises(ValueError, match=r"labels shape \(2, 2\) does not match logits"):
    statistics_loss.check_inputs(tf.ones((2, 2)), tf.ones((2, 3)), tf.ones((2, 3)))
  with pytest.raises(ValueError, match="mask must have shape"):
    statistics_loss.check_inputs(tf.ones((2, 3)), tf.ones((2, 3)), tf.ones((6,)))


def test_all_reduce_statistics_is_the_identity_on_one_device():
  local = {"sums": _t([1.0, 2.0]), "counts": _t([2.0, 0.0])}
  share, total = statistics_loss.all_reduce_statistics(local, ("counts",), {"penalty": _t(0.5)})
  for got in (share, total):
    assert sorted(got) == ["counts", "penalty", "sums"]
    np.testing.assert_array_equal(got["sums"].numpy(), [1.0, 2.0])
    np.testing.assert_array_equal(got["counts"].numpy(), [2.0, 0.0])
    assert got["penalty"].numpy() == 0.5


def test_all_reduce_statistics_keeps_the_gradient_of_the_share_only():
  sums = tf.Variable([1.0, 2.0])
  penalty = tf.Variable(0.5)
  with tf.GradientTape(persistent=True) as tape:
    local = {"sums": sums * 3.0, "counts": sums * 0.0 + 2.0}
    share, total = statistics_loss.all_reduce_statistics(local, ("counts",), {"p": penalty * 4.0})
    share_value = statistics_loss.dynamic_average(share["sums"], share["counts"]) + share["p"]
    total_value = statistics_loss.dynamic_average(total["sums"], total["counts"]) + total["p"]
  # d/dsums_k of 3 sums_k / 2 is 3/2; the counts pass no gradient back.
  np.testing.assert_array_equal(tape.gradient(share_value, sums).numpy(), [1.5, 1.5])
  assert tape.gradient(share_value, penalty).numpy() == 4.0
  assert tape.gradient(total_value, [sums, penalty]) == [None, None]


def test_all_reduce_statistics_rejects_bad_keys():
  local = {"sums": _t([1.0]), "counts": _t([1.0])}
  with pytest.raises(ValueError, match=r"count keys \['count'\] are not among"):
    statistics_loss.all_reduce_statistics(local, ("count",))
  with pytest.raises(ValueError, match=r"keys \['sums'\] are both statistics and means"):
    statistics_loss.all_reduce_statistics(local, ("counts",), {"sums": _t(1.0)})


# The replicated batch: replica 0 holds rows 0-1, replica 1 rows 2-3. The model is
# logits = X * w + b with w = (1, 1), b = (0, 0), so the logits are X at the step.
# sigmoid(ln 3) = 3/4, sigmoid(0) = 1/2, sigmoid(-ln 3) = 1/4.
X = [[LN3, 0.0], [0.0, LN3], [-LN3, 0.0], [0.0, -LN3]]
LABELS = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]]
# Action 0 is masked on both replicas (rows 0, 1, 2), action 1 on replica 0 only (row 0).
MASK = [[1.0, 1.0], [1.0, 0.0], [1.0, 0.0], [0.0, 0.0]]
# Each action masked on one replica only: action 0 on rows 0-1, action 1 on rows 2-3. With
# masked pairs only, every pair of the whole batch then lies within one replica.
PAIR_MASK = [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]
REPLICA_ROWS = (slice(0, 2), slice(2, 4))
# The joint case's regularization: 0.1 * the mean over the rows of sum_k logits_ik^2.
L2 = 0.1

# The cases: a loss, its mask, and whether the network's regularization is added.
CASES = {
  "bce": (lambda: masked_bce.MaskedBinaryCrossentropy(weights=(1.0, 2.0)), MASK),
  "rank": (lambda: ranking.PairwiseRankingLoss(), MASK),
  "rank_masked_pairs": (lambda: ranking.PairwiseRankingLoss(masked_pairs_only=True), PAIR_MASK),
  "joint": (lambda: joint.KamlLoss(gamma=0.5, masked_pairs_only=True), PAIR_MASK),
}

# BCE (weights 1, 2). Action 0: rows 0, 1, 2 -> ln(4/3) + ln 2 + ln 4 = ln(32/3) over 3.
# Action 1: row 0 -> ln 2 over 1, weighed 2.
# d/db_k = w_k * sum_i mask_ik (p_ik - y_ik) / count_k: action 0 (-1/4 + 1/2 - 3/4) / 3 = -1/6,
# action 1 2 * (1/2) = 1. d/dw_k multiplies each term by x_ik: action 0 (-1/4 ln 3 + 3/4 ln 3)
# / 3 = ln 3 / 6; action 1 2 * (1/2) * 0 = 0.
BCE = math.log(32.0 / 3.0) / 3.0 + 2.0 * LN2
# Each replica's own loss, averaged: what dividing per replica would give instead.
BCE_MEAN_OF_REPLICAS = ((math.log(8.0 / 3.0) / 2.0 + 2.0 * LN2) + 2.0 * LN2) / 2.0
BCE_GRADIENTS = {"w": [LN3 / 6.0, 0.0], "b": [-1.0 / 6.0, 1.0]}
# Ranking, pairs within each replica: softplus(s_zero - s_positive).
# Replica 0: action 0 (row 0 vs row 1) ln(4/3); action 1 (row 1 vs row 0) ln(4/3).
# Replica 1: action 0 (row 2 vs row 3) softplus(ln 3) = ln 4; action 1 (row 2 vs row 3) ln(4/3).
# Shifting both logits of a pair by b_k changes nothing: d/db = 0. d/dw_k of a pair is
# sigmoid(d) * d with d = x_zero - x_positive: action 0 (-ln 3 / 4 + 3 ln 3 / 4) / 2 = ln 3 / 4,
# action 1 (-ln 3 / 4 - ln 3 / 4) / 2 = -ln 3 / 4.
RANK = math.log(16.0 / 3.0) / 2.0 + math.log(4.0 / 3.0)
RANK_GRADIENTS = {"w": [LN3 / 4.0, -LN3 / 4.0], "b": [0.0, 0.0]}
# Masked pairs only: action 0 (row 0 vs row 1) and action 1 (row 2 vs row 3), ln(4/3) each;
# d/dw = -ln 3 / 4 each.
RANK_MASKED = 2.0 * math.log(4.0 / 3.0)
RANK_MASKED_GRADIENTS = {"w": [-LN3 / 4.0, -LN3 / 4.0], "b": [0.0, 0.0]}
# Joint, gamma 0.5, PAIR_MASK. BCE: action 0 rows 0, 1 -> ln(4/3) + ln 2 over 2; action 1 rows
# 2, 3 -> ln 2 + ln(4/3) over 2: ln(8/3) in all. d/db (1/8, -1/8), d/dw (-ln 3 / 8) each.
# Regularization: sum_k x_ik^2 is ln^2 3 on every row, so 0.1 ln^2 3 on each replica and over
# the batch; each replica contributes half. d/db_k = 0.2 * mean_i x_ik = 0, and
# d/dw_k = 0.2 * mean_i x_ik^2 = 0.1 ln^2 3 (twice that if the replicas did not halve it).
JOINT = 0.5 * math.log(8.0 / 3.0) + 0.5 * RANK_MASKED + L2 * LN3**2
JOINT_W = 0.5 * (-LN3 / 8.0) + 0.5 * (-LN3 / 4.0) + L2 * LN3**2
JOINT_GRADIENTS = {"w": [JOINT_W, JOINT_W], "b": [1.0 / 16.0, -1.0 / 16.0]}
EXPECTED = {
  "bce": (BCE, BCE_GRADIENTS),
  "rank": (RANK, RANK_GRADIENTS),
  "rank_masked_pairs": (RANK_MASKED, RANK_MASKED_GRADIENTS),
  "joint": (JOINT, JOINT_GRADIENTS),
}


def _objective(loss, labels, logits, mask):
  """(this replica's share to differentiate, the global value to log), as the task does."""
  if isinstance(loss, joint.KamlLoss):
    regularization = L2 * tf.reduce_mean(tf.reduce_sum(tf.square(logits), axis=1))
    local = loss.statistics(labels, logits, mask)
    share, total = statistics_loss.all_reduce_statistics(
      local, joint.COUNT_KEYS, {"regularization": regularization}
    )
    return (
      loss.from_statistics(share, share["regularization"])["total"],
      loss.from_statistics(total, total["regularization"])["total"],
    )
  sums, counts = loss.statistics(labels, logits, mask)
  share, total = statistics_loss.all_reduce_statistics({"sums": sums, "counts": counts}, ["counts"])
  return loss.reduce(share["sums"], share["counts"]), loss.reduce(total["sums"], total["counts"])


def _single_device(name, rows=slice(0, 4)):
  """(value, {"w": d/dw, "b": d/db}) of the loss on `rows` of the batch, on one device."""
  make_loss, mask = CASES[name]
  w, b = tf.Variable(tf.ones(2)), tf.Variable(tf.zeros(2))
  with tf.GradientTape() as tape:
    share, value = _objective(make_loss(), _t(LABELS[rows]), _t(X[rows]) * w + b, _t(mask[rows]))
  np.testing.assert_array_equal(share.numpy(), value.numpy())
  gradient_w, gradient_b = tape.gradient(share, [w, b])
  return float(value), {"w": gradient_w.numpy().tolist(), "b": gradient_b.numpy().tolist()}


def _replicated_case(strategy, name):
  """One SGD step (learning rate 1) of the case on 2 replicas; the values as JSON-able lists."""
  make_loss, mask = CASES[name]
  loss = make_loss()
  with strategy.scope():
    w, b = tf.Variable(tf.ones(2)), tf.Variable(tf.zeros(2))
    optimizer = tf.keras.optimizers.SGD(learning_rate=1.0)
    optimizer.build([w, b])

  def replica_batch(context):
    rows = REPLICA_ROWS[context.replica_id_in_sync_group]
    return _t(LABELS[rows]), _t(X[rows]), _t(mask[rows])

  batch = strategy.experimental_distribute_values_from_function(replica_batch)

  def replica_step(labels, x, replica_mask):
    with tf.GradientTape() as tape:
      share, value = _objective(loss, labels, x * w + b, replica_mask)
    gradients = tape.gradient(share, [w, b])
    # tf-keras sums the replicas' gradients here, as in KamlTask.train_step.
    optimizer.apply_gradients(zip(gradients, [w, b]))
    return share, value, gradients

  shares, values, gradients = tf.function(lambda: strategy.run(replica_step, args=batch))()
  summed = strategy.reduce(tf.distribute.ReduceOp.SUM, gradients, axis=None)
  local = strategy.experimental_local_results
  return {
    "shares": [float(v) for v in local(shares)],
    "values": [float(v) for v in local(values)],
    "gradients": {"w": summed[0].numpy().tolist(), "b": summed[1].numpy().tolist()},
    # SGD at learning rate 1 from w = 1, b = 0: the applied gradient is 1 - w and -b.
    "applied": {"w": (1.0 - w.numpy()).tolist(), "b": (-b.numpy()).tolist()},
  }


def _replicated_results():
  """Every case on a MirroredStrategy over 2 logical CPUs; call before TF initialises devices."""
  cpu = tf.config.list_physical_devices("CPU")[0]
  tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
  strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
  assert strategy.num_replicas_in_sync == 2
  return {name: _replicated_case(strategy, name) for name in CASES}


@pytest.fixture(scope="module")
def replicated():
  env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
  result = subprocess.run(
    [sys.executable, __file__], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
  )
  assert result.returncode == 0, result.stderr[-3000:]
  return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", list(CASES))
def test_replicas_log_the_global_value_and_their_shares_add_up_to_it(replicated, name):
  got = replicated[name]
  want, _ = EXPECTED[name]
  assert got["values"] == pytest.approx([want, want], rel=1e-6)
  assert sum(got["shares"]) == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("name", list(CASES))
def test_summed_replica_gradients_are_the_hand_computed_ones(replicated, name):
  _, want = EXPECTED[name]
  for key in ("gradients", "applied"):
    for variable in ("w", "b"):
      np.testing.assert_allclose(
        replicated[name][key][variable], want[variable], rtol=1e-5, atol=1e-6
      )


@pytest.mark.parametrize("name", ["bce", "rank_masked_pairs", "joint"])
def test_replicas_equal_one_device_on_the_whole_batch(replicated, name):
  value, gradients = _single_device(name)
  want, want_gradients = EXPECTED[name]
  assert value == pytest.approx(want, rel=1e-6)
  assert replicated[name]["values"][0] == pytest.approx(value, rel=1e-6)
  for variable in ("w", "b"):
    np.testing.assert_allclose(gradients[variable], want_gradients[variable], atol=1e-6)
    np.testing.assert_allclose(
      replicated[name]["gradients"][variable], gradients[variable], rtol=1e-5, atol=1e-6
    )


def test_dividing_per_replica_would_differ(replicated):
  # The empty action-1 mask of replica 1 is what makes the average of replica losses wrong.
  halves = [_single_device("bce", rows)[0] for rows in REPLICA_ROWS]
  assert np.mean(halves) == pytest.approx(BCE_MEAN_OF_REPLICAS, rel=1e-6)
  assert abs(BCE_MEAN_OF_REPLICAS - replicated["bce"]["values"][0]) > 0.1


def test_default_ranking_pairs_stay_within_a_replica(replicated):
  # Pairs across replicas are not formed: the replicated loss is the one-device loss of the
  # two slices' statistics added, not of the whole batch (action 1 gains 2 cross pairs).
  loss = ranking.PairwiseRankingLoss()
  slices = [loss.statistics(_t(LABELS[r]), _t(X[r])) for r in REPLICA_ROWS]
  per_slice = loss.reduce(slices[0][0] + slices[1][0], slices[0][1] + slices[1][1])
  assert replicated["rank"]["values"][0] == pytest.approx(float(per_slice), rel=1e-6)
  whole, _ = _single_device("rank")
  assert abs(whole - RANK) > 0.01


if __name__ == "__main__":
  print(json.dumps(_replicated_results()))
