"""Tests for MaskedStreamingAUC: hand-computed values, masks, ties and batching."""

import numpy as np
import pytest
import tensorflow as tf

from kaml_tf.evaluation import metrics as exact
from kaml_tf.evaluation import streaming_auc


def _auc(labels, probs, mask=None, num_buckets=1000):
  metric = streaming_auc.MaskedStreamingAUC(np.shape(labels)[1], num_buckets)
  metric.update_state(
    np.asarray(labels, np.float32),
    np.asarray(probs, np.float32),
    None if mask is None else np.asarray(mask, np.float32),
  )
  return metric.result().numpy()


def test_hand_computed_per_action():
  # Action 0: positives 0.8, 0.35 vs negatives 0.1, 0.4 -> 3 of 4 pairs ordered = 0.75.
  # Action 1: positive 0.5 vs negatives 0.5 (tie: half), 0.9 (loss), 0.2 (win) -> 1.5 / 3.
  labels = [[1, 1], [0, 0], [1, 0], [0, 0]]
  probs = [[0.8, 0.5], [0.1, 0.5], [0.35, 0.9], [0.4, 0.2]]
  np.testing.assert_allclose(_auc(labels, probs), [0.75, 0.5], atol=0)


def test_mask_excludes_samples():
  labels = [[1], [0], [0]]
  probs = [[0.5], [0.9], [0.1]]
  np.testing.assert_allclose(_auc(labels, probs), [0.5])
  np.testing.assert_allclose(_auc(labels, probs, mask=[[1], [0], [1]]), [1.0])


def test_undefined_action_is_nan():
  result = _auc([[1, 0], [1, 0]], [[0.2, 0.3], [0.4, 0.5]])
  assert np.isnan(result).all()


def test_matches_exact_auc_when_buckets_are_fine():
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 2, (2000, 3))
  # Scores at bucket centres: distinct scores never share a bucket, so the AUC is exact.
  probs = (rng.integers(0, 1000, (2000, 3)) + 0.5) / 1000
  got = _auc(labels, probs)
  for k in range(3):
    assert got[k] == pytest.approx(exact.auc(labels[:, k], probs[:, k]), abs=1e-6)


def test_accumulates_across_batches_and_resets():
  metric = streaming_auc.MaskedStreamingAUC(1, 10)
  metric.update_state(tf.constant([[1.0]]), tf.constant([[0.95]]))
  metric.update_state(tf.constant([[0.0]]), tf.constant([[0.05]]))
  assert metric.result().numpy()[0] == 1.0
  metric.reset_state()
  assert np.isnan(metric.result().numpy()[0])


@pytest.mark.parametrize(
  "kwargs, message",
  [
    (dict(num_actions=0), "num_actions must be >= 1, got 0"),
    (dict(num_actions=2, num_buckets=1), "num_buckets must be >= 2, got 1"),
  ],
)
def test_validates_arguments(kwargs, message):
  with pytest.raises(ValueError, match=message):
    streaming_auc.MaskedStreamingAUC(**kwargs)


def test_get_config_round_trip():
  metric = streaming_auc.MaskedStreamingAUC(3, 50, name="auc")
  clone = streaming_auc.MaskedStreamingAUC.from_config(metric.get_config())
  assert (clone.num_actions, clone.num_buckets, clone.name) == (3, 50, "auc")
