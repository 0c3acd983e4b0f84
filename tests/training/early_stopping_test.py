"""The early-stopping rule on stubbed score sequences, and the best checkpoint's files."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from kaml_tf.training import checkpointing
from kaml_tf.training import early_stopping

SCORES = [0.5, 0.6, 0.55, 0.58, 0.57]


def _entry(k, score):
  """Evaluation k (0-based), every 10 global steps, 30 steps an epoch."""
  step = 10 * (k + 1)
  return {
    "epoch": (step - 1) // 30,
    "step": (step - 1) % 30 + 1,
    "global_step": step,
    early_stopping.SELECTION_METRIC: score,
    "per_target_overall_logloss": 0.3,
  }


def _run(scores, patience):
  """Feeds `scores` until the rule stops; returns (rule, improved flags)."""
  rule = early_stopping.EarlyStopping(patience)
  improved = []
  for k, score in enumerate(scores):
    improved.append(rule.update(_entry(k, score)))
    if rule.stopped:
      break
  return rule, improved


def test_patience_three_stops_after_the_fifth_evaluation_keeping_the_second():
  rule, improved = _run(SCORES, patience=3)
  assert improved == [True, True, False, False, False]
  assert rule.stopped and rule.evaluations_since_best == 3
  assert rule.best == {
    "score": 0.6,
    "metric": "per_target_overall_auc",
    "epoch": 0,
    "step": 20,
    "global_step": 20,
    "checkpoint": "best/ckpt-20",
  }
  assert [e["per_target_overall_auc"] for e in rule.history] == SCORES
  assert rule.last_global_step == 50


def test_patience_two_stops_after_two_evaluations_without_improvement():
  # 0.55 and 0.58 are both below the best 0.6: the fourth evaluation is the second miss.
  rule, improved = _run(SCORES, patience=2)
  assert improved == [True, True, False, False]
  assert rule.stopped and rule.best["global_step"] == 20 and len(rule.history) == 4


def test_an_improvement_resets_the_count():
  rule, improved = _run([0.5, 0.4, 0.6, 0.5, 0.55, 0.7, 0.1], patience=3)
  assert improved == [True, False, True, False, False, True, False]
  assert not rule.stopped and rule.evaluations_since_best == 1
  assert rule.best["score"] == 0.7 and rule.best["global_step"] == 60


def test_patience_zero_never_stops():
  rule, _ = _run([0.9] + [0.1] * 20, patience=0)
  assert not rule.stopped and rule.evaluations_since_best == 20 and len(rule.history) == 21


def test_equal_and_undefined_scores_never_improve():
  rule, improved = _run([None, float("nan"), 0.5, 0.5, None], patience=0)
  assert improved == [False, False, True, False, False]
  assert rule.best["global_step"] == 30 and rule.evaluations_since_best == 2


def test_state_survives_json():
  rule, _ = _run(SCORES[:4], patience=3)
  again = early_stopping.EarlyStopping.from_json(rule.to_json(), patience=3)
  assert again == rule
  # The restored rule goes on where the original would.
  assert again.update(_entry(4, SCORES[4])) is False and again.stopped
  fresh = early_stopping.EarlyStopping.from_json("", patience=3)
  assert fresh == early_stopping.EarlyStopping(3)


def _network(seed):
  tf.keras.utils.set_random_seed(seed)
  inputs = tf.keras.Input(shape=(2,))
  return tf.keras.Model(inputs, tf.keras.layers.Dense(1)(inputs))


def test_best_checkpoint_replaces_the_previous_one_and_restores_strictly(tmp_path):
  model_dir = str(tmp_path)
  assert early_stopping.read_best(model_dir) is None
  first, second = _network(1), _network(2)
  rule, _ = _run(SCORES[:2], patience=0)
  early_stopping.save_best(
    first, model_dir, {**rule.best, "global_step": 10, "checkpoint": "best/ckpt-10"}
  )
  # What a write killed midway leaves behind, to be cleaned up by the next one.
  os.makedirs(tmp_path / "best" / "ckpt-15_temp")
  prefix = early_stopping.save_best(second, model_dir, rule.best)
  assert prefix == os.path.join(model_dir, "best", "ckpt-20")
  assert sorted(os.listdir(tmp_path / "best")) == [
    "best.json",
    "ckpt-20.data-00000-of-00001",
    "ckpt-20.index",
  ]
  with open(tmp_path / "best" / "best.json") as f:
    assert json.load(f) == rule.best == early_stopping.read_best(model_dir)
  restored = _network(3)
  assert checkpointing.restore_network(restored, model_dir, path=prefix) == prefix
  for got, want in zip(restored.weights, second.weights):
    np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_best_checkpoint_of_another_network_is_refused(tmp_path):
  rule, _ = _run(SCORES[:1], patience=0)
  prefix = early_stopping.save_best(_network(1), str(tmp_path), rule.best)
  inputs = tf.keras.Input(shape=(3,))
  other = tf.keras.Model(inputs, tf.keras.layers.Dense(1)(inputs))
  with pytest.raises(checkpointing.CheckpointMismatchError, match=f"the checkpoint {prefix}"):
    checkpointing.restore_network(other, str(tmp_path), path=prefix)
