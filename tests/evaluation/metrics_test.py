"""Tests for kaml_tf.evaluation.metrics: hand-computed cases and scikit-learn cross-checks."""

import json
import math

import numpy as np
import pytest
from sklearn import metrics as sk_metrics

from kaml_tf.evaluation import metrics


def _ll(*probs_of_true_label):
  return -sum(math.log(p) for p in probs_of_true_label) / len(probs_of_true_label)


def test_auc_hand_computed():
  # Positives 0.35, 0.8 vs negatives 0.1, 0.4: 3 of 4 pairs ordered.
  assert metrics.auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75


def test_auc_ties_count_one_half():
  # Positives 0.5, 0.9 vs negatives 0.5, 0.2: pairs 0.5/0.5 tie (1/2), the other three win.
  assert metrics.auc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]) == 0.875
  assert metrics.auc([0, 1, 1, 0, 1], [0.3] * 5) == 0.5


@pytest.mark.parametrize("labels", [[1, 1, 1], [0, 0], []])
def test_auc_is_nan_without_both_classes(labels):
  assert math.isnan(metrics.auc(labels, np.linspace(0, 1, len(labels))))


@pytest.mark.parametrize("ties", [False, True])
def test_auc_matches_sklearn(ties):
  rng = np.random.default_rng(3)
  labels = (rng.random(500) < 0.2).astype(np.int64)
  scores = rng.random(500) + 0.3 * labels
  if ties:
    scores = np.round(scores, 1)  # ~13 distinct values: many tied pairs across classes
  assert metrics.auc(labels, scores) == pytest.approx(
    sk_metrics.roc_auc_score(labels, scores), abs=1e-12
  )


def test_logloss_hand_computed_and_clipped():
  assert metrics.logloss([1, 0], [0.75, 0.25]) == pytest.approx(math.log(4.0 / 3.0), rel=1e-12)
  assert metrics.logloss([1, 0], [0.0, 1.0]) == pytest.approx(-math.log(1e-7), rel=1e-6)
  assert metrics.logloss([1], [0.0], eps=1e-3) == pytest.approx(-math.log(1e-3), rel=1e-12)
  assert math.isnan(metrics.logloss([], []))


def test_logloss_matches_sklearn():
  rng = np.random.default_rng(4)
  labels = (rng.random(300) < 0.3).astype(np.int64)
  probs = rng.uniform(0.01, 0.99, 300)
  assert metrics.logloss(labels, probs) == pytest.approx(
    sk_metrics.log_loss(labels, probs), rel=1e-12
  )


@pytest.mark.parametrize(
  "call, message",
  [
    (lambda: metrics.auc([0, 2], [0.1, 0.2]), r"labels must be 0 or 1, got 2 at index \(1,\)"),
    (lambda: metrics.auc([0, 1], [0.1, float("nan")]), r"scores must be finite, got nan"),
    (lambda: metrics.auc([0, 1], [0.1, 0.2, 0.3]), r"shapes \(2,\) and \(3,\)"),
    (lambda: metrics.logloss([0, 1], [0.1, 1.5]), r"\[0, 1\], got 1.5 at index 1"),
    (lambda: metrics.logloss([0, 1], [0.1, 0.5], eps=0.0), r"eps must lie in \(0, 0.5\), got 0.0"),
  ],
)
def test_bad_inputs_are_named(call, message):
  with pytest.raises(ValueError, match=message):
    call()


# Hand-computed per-target example: 6 samples, actions a, b, c; sample 2 targets "Other".
PROBS = [
  [0.9, 0.2, 0.5],
  [0.3, 0.8, 0.5],
  [0.6, 0.4, 0.5],
  [0.2, 0.1, 0.5],
  [0.5, 0.85, 0.5],
  [0.4, 0.6, 0.5],
]
LABELS = [[1, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 0], [1, 0, 0], [0, 0, 0]]
TARGET = [0, 1, -1, 0, 1, 0]


def test_per_target_metrics_hand_computed():
  got = metrics.per_target_metrics(PROBS, LABELS, TARGET, ["a", "b", "c"])
  assert list(got) == ["actions", "overall", "skipped_other"]
  assert list(got["actions"]) == ["a", "b", "c"]
  assert got["skipped_other"] == 1
  # a: samples 0 (0.9, y=1), 3 (0.2, y=0), 5 (0.4, y=0).
  a = got["actions"]["a"]
  assert (a["auc"], a["count"], a["positives"]) == (1.0, 3, 1)
  assert a["logloss"] == pytest.approx(_ll(0.9, 0.8, 0.6), rel=1e-12)
  # b: samples 1 (0.8, y=1), 4 (0.85, y=0): the only pair is misordered.
  b = got["actions"]["b"]
  assert (b["auc"], b["count"], b["positives"]) == (0.0, 2, 1)
  assert b["logloss"] == pytest.approx(_ll(0.8, 0.15), rel=1e-12)
  # c: no sample targets it.
  c = got["actions"]["c"]
  assert (c["count"], c["positives"]) == (0, 0)
  assert math.isnan(c["auc"]) and math.isnan(c["logloss"])
  # Overall: positives 0.9, 0.8 vs negatives 0.2, 0.85, 0.4 -> 5 of 6 pairs ordered.
  overall = got["overall"]
  assert overall["auc"] == pytest.approx(5.0 / 6.0, rel=1e-12)
  assert (overall["count"], overall["positives"]) == (5, 2)
  assert overall["logloss"] == pytest.approx(_ll(0.9, 0.8, 0.6, 0.8, 0.15), rel=1e-12)
  json.dumps(got)  # plain Python types only


def test_per_target_metrics_match_sklearn_on_random_data():
  rng = np.random.default_rng(5)
  probs = rng.uniform(0.01, 0.99, (400, 3))
  labels = (rng.random((400, 3)) < probs).astype(np.int64)
  target = rng.integers(-1, 3, 400)
  got = metrics.per_target_metrics(probs, labels, target, ["a", "b", "c"])
  for k, name in enumerate(["a", "b", "c"]):
    rows = target == k
    assert got["actions"][name]["auc"] == pytest.approx(
      sk_metrics.roc_auc_score(labels[rows, k], probs[rows, k]), abs=1e-12
    )
    assert got["actions"][name]["logloss"] == pytest.approx(
      sk_metrics.log_loss(labels[rows, k], probs[rows, k]), rel=1e-12
    )
  rows = np.flatnonzero(target >= 0)
  assert got["overall"]["auc"] == pytest.approx(
    sk_metrics.roc_auc_score(labels[rows, target[rows]], probs[rows, target[rows]]), abs=1e-12
  )
  assert got["skipped_other"] == int((target == -1).sum())


@pytest.mark.parametrize(
  "kwargs, message",
  [
    (dict(target_action=[0, 1, 3, 0, 1, 0]), r"got 3 at index 2"),
    (dict(target_action=[0, 1, -2, 0, 1, 0]), r"got -2 at index 2"),
    (dict(target_action=[0.0, 1.0, 0.0, 0.0, 1.0, 0.0]), "must be integers"),
    (dict(target_action=[0, 1]), r"shape \(6,\)"),
    (dict(action_names=["a", "b"]), r"name the 3 columns"),
    (dict(labels=[[1, 0]] * 6), r"labels shape \(6, 2\) does not match probs shape \(6, 3\)"),
  ],
)
def test_per_target_metrics_rejects_bad_inputs(kwargs, message):
  args = dict(probs=PROBS, labels=LABELS, target_action=TARGET, action_names=["a", "b", "c"])
  args.update(kwargs)
  with pytest.raises(ValueError, match=message):
    metrics.per_target_metrics(**args)


def test_all_action_metrics_hand_computed():
  probs = [[0.9, 0.2], [0.3, 0.8], [0.6, 0.25]]
  true_labels = [[1, 0], [0, 1], [1, 1]]
  got = metrics.all_action_metrics(probs, true_labels, ["a", "b"])
  assert list(got) == ["actions", "overall"]
  assert got["actions"]["a"]["auc"] == 1.0
  assert got["actions"]["b"]["auc"] == 1.0
  assert (got["actions"]["b"]["count"], got["actions"]["b"]["positives"]) == (3, 2)
  assert got["actions"]["a"]["logloss"] == pytest.approx(_ll(0.9, 0.7, 0.6), rel=1e-12)
  # Pooled: positives 0.9, 0.8, 0.6, 0.25 vs negatives 0.2, 0.3: only 0.25 < 0.3 -> 7/8.
  assert got["overall"]["auc"] == 0.875
  assert (got["overall"]["count"], got["overall"]["positives"]) == (6, 4)
  assert got["overall"]["logloss"] == pytest.approx(_ll(0.9, 0.8, 0.7, 0.8, 0.6, 0.25), rel=1e-12)


def test_rela_impr_hand_computed():
  assert metrics.rela_impr(0.8, 0.75) == pytest.approx(0.2, rel=1e-12)
  assert metrics.rela_impr(0.7, 0.75) == pytest.approx(-0.2, rel=1e-12)
  assert metrics.rela_impr(0.75, 0.75) == 0.0
  assert math.isnan(metrics.rela_impr(0.8, 0.5))
  assert math.isnan(metrics.rela_impr(float("nan"), 0.7))


def _block(auc_a, auc_b, auc_overall):
  return {
    "actions": {
      "a": {"auc": auc_a, "logloss": 0.1, "count": 1, "positives": 1},
      "b": {"auc": auc_b, "logloss": 0.1, "count": 1, "positives": 1},
    },
    "overall": {"auc": auc_overall, "logloss": 0.1, "count": 2, "positives": 2},
  }


def test_rela_impr_between_blocks():
  got = metrics.rela_impr_between(_block(0.8, 0.6, 0.7), _block(0.75, 0.55, 0.6))
  assert got["actions"]["a"] == pytest.approx(0.2)
  assert got["actions"]["b"] == pytest.approx(1.0)
  assert got["overall"] == pytest.approx(1.0)


def test_rela_impr_between_dict_of_blocks():
  got = metrics.rela_impr_between(
    {"x": _block(0.8, 0.6, 0.7), "note": "ignored"},
    {"x": _block(0.75, 0.55, 0.6), "y": _block(0.6, 0.6, 0.6)},
  )
  assert list(got) == ["x"]
  assert got["x"]["actions"]["b"] == pytest.approx(1.0)


def test_rela_impr_files(tmp_path):
  # The evaluator's metrics.json: the per-target block, with the oracle block nested in it.
  model = dict(_block(0.8, 0.6, 0.7), skipped_other=3, oracle=_block(0.9, 0.9, 0.9))
  base = dict(_block(0.75, 0.55, 0.6), skipped_other=3, oracle=_block(0.7, 0.5, 0.75))
  path, base_path = tmp_path / "metrics.json", tmp_path / "base.json"
  path.write_text(json.dumps(model))
  base_path.write_text(json.dumps(base))
  got = metrics.rela_impr_files(str(path), str(base_path))
  assert sorted(got) == ["actions", "oracle", "overall"]
  assert got["actions"]["a"] == pytest.approx(0.2)
  assert got["actions"]["b"] == pytest.approx(1.0)
  assert got["overall"] == pytest.approx(1.0)
  assert got["oracle"]["actions"]["a"] == pytest.approx(1.0)
  assert math.isnan(got["oracle"]["actions"]["b"])
  assert got["oracle"]["overall"] == pytest.approx(0.6)
  # Without an oracle block in the baseline, only the per-target block is compared.
  base_path.write_text(json.dumps(dict(_block(0.75, 0.55, 0.6), skipped_other=3)))
  assert sorted(metrics.rela_impr_files(str(path), str(base_path))) == ["actions", "overall"]


def test_rela_impr_errors_name_the_files(tmp_path):
  path, base_path = tmp_path / "metrics.json", tmp_path / "base.json"
  path.write_text(json.dumps(_block(0.8, 0.6, 0.7)))
  base_path.write_text("{not json")
  with pytest.raises(ValueError, match=f"{base_path}: not valid JSON"):
    metrics.rela_impr_files(str(path), str(base_path))
  other = _block(0.8, 0.6, 0.7)
  other["actions"]["z"] = other["actions"].pop("b")
  base_path.write_text(json.dumps(other))
  with pytest.raises(ValueError, match=r"metrics.json vs .*: top-level block: .*different"):
    metrics.rela_impr_files(str(path), str(base_path))
  base_path.write_text(json.dumps({"something": 1}))
  with pytest.raises(ValueError, match="no metrics block"):
    metrics.rela_impr_files(str(path), str(base_path))
