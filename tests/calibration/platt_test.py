"""Platt scaling: the identity, exact fits, degenerate sets, target rows only, the file."""

import json
import logging
import math
import os
import types

import kaml_tf  # noqa: F401
import numpy as np
import pytest
import tensorflow as tf

from kaml_tf.calibration import platt

ACTIONS = ("install", "pay")
REF = platt.CheckpointRef(name="checkpoints/ckpt-1", sha256="ab" * 32)


def _calibration(a, b, checkpoint=REF):
  return platt.Calibration(
    actions=ACTIONS,
    a=tuple(a),
    b=tuple(b),
    checkpoint=checkpoint,
    fitted_on={
      "rows": [4, 6],
      "positives": [1, 0],
      "identity_because": [None, "no positives"],
      "files": "VAL/part-*",
      "days": None,
    },
  )


def _warnings(caplog):
  return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def _logit(p):
  return math.log(p / (1 - p))


def test_identity_parameters_give_the_models_own_sigmoid():
  logits = np.array([[0.0, math.log(3.0)], [-30.0, 7.5], [1e-3, -2.0]])
  identity = _calibration((1.0, 1.0), (0.0, 0.0))
  np.testing.assert_array_equal(identity.apply(logits), platt.sigmoid(logits))
  np.testing.assert_allclose(identity.apply(logits)[0], [0.5, 0.75], rtol=1e-15)
  in_tf = tf.constant(logits, tf.float32)
  np.testing.assert_array_equal(identity.calibrated_logits(in_tf).numpy(), in_tf.numpy())


def test_apply_is_the_sigmoid_of_each_columns_own_affine_map():
  calibration = _calibration((0.5, 2.0), (-1.0, 0.25))
  logits = np.array([[2.0, 0.0], [0.0, -0.125]])
  # Column 0: 0.5 * z - 1; column 1: 2 * z + 0.25.
  expected_logits = np.array([[0.0, 0.25], [-1.0, 0.0]])
  np.testing.assert_allclose(
    calibration.apply(logits), 1 / (1 + np.exp(-expected_logits)), rtol=1e-15
  )
  np.testing.assert_array_equal(
    calibration.calibrated_logits(tf.constant(logits, tf.float32)).numpy(), expected_logits
  )
  with pytest.raises(ValueError, match=r"logits must have shape \(n, 2\), got \(2, 3\)"):
    calibration.apply(np.zeros((2, 3)))


def test_fit_recovers_known_parameters_of_synthetic_scores():
  """200,000 logits z ~ N(0, 2^2), labels ~ Bernoulli(sigmoid(0.5 z - 1)), seed 0.

  The maximum-likelihood estimates' standard errors at this n are 0.0031 (a) and 0.0056 (b)
  (inverse Fisher information), so the tolerances are about 5 of them.
  """
  rng = np.random.default_rng(0)
  z = rng.normal(0.0, 2.0, 200_000)
  y = (rng.random(z.size) < platt.sigmoid(0.5 * z - 1.0)).astype(np.int64)
  a, b = platt.fit_platt(z, y)
  assert abs(a - 0.5) < 0.015 and abs(b + 1.0) < 0.03, (a, b)
  # It is the optimum: the gradient of mean NLL + ridge vanishes.
  residual = platt.sigmoid(a * z + b) - y
  assert abs(np.mean(residual * z) + platt.RIDGE * (a - 1.0)) < 1e-12
  assert abs(np.mean(residual) + platt.RIDGE * b) < 1e-12


def test_two_logit_values_are_fitted_to_their_empirical_rates():
  """Two distinct logits and two parameters: the fit reproduces both observed rates.

  Rate 1/4 at z = -1 and 3/4 at z = +1: -a + b = -ln 3 and a + b = ln 3, so (a, b) = (ln 3, 0);
  the ridge moves that by about 1e-6.
  """
  z = np.array([-1.0] * 4 + [1.0] * 4)
  y = np.array([1, 0, 0, 0, 1, 1, 1, 0])
  a, b = platt.fit_platt(z, y)
  np.testing.assert_allclose([a, b], [math.log(3.0), 0.0], atol=1e-5)


def test_constant_logits_move_the_least_from_the_identity():
  """One logit value (-1) with rate 1/10 fixes only -a + b = logit(0.1); the ridge picks the
  point of that line closest to (1, 0): (a, b) = (1 - t, t), t = (logit(0.1) + 1) / 2."""
  a, b = platt.fit_platt(np.full(10, -1.0), np.array([1] + [0] * 9))
  t = (_logit(0.1) + 1.0) / 2.0
  np.testing.assert_allclose([a, b], [1.0 - t, t], atol=1e-5)


@pytest.mark.parametrize("z", [np.array([3.0] * 10), np.array([-2.0, -1.0, 1.0, 2.0] * 3)])
def test_a_fit_never_reverses_the_ranking(z):
  """Constant logits at 3 with rate 1/10 would be nearest (1, 0) at a < 0, and labels that
  fall as the logit rises would need a < 0: both get a = 0 and the base rate, a constant."""
  y = np.array([1] + [0] * 9) if z.size == 10 else np.array([1, 1, 0, 0] * 3)
  a, b = platt.fit_platt(z, y)
  assert a == 0.0
  assert b == pytest.approx(_logit(y.mean()))


def test_separable_labels_give_finite_parameters():
  z = np.array([-2.0, -1.0, 1.0, 2.0])
  y = np.array([0, 0, 1, 1])
  a, b = platt.fit_platt(z, y)
  # The likelihood alone would push a to infinity; the ridge stops it where the two gradients
  # cancel. The set is symmetric, so b = 0.
  assert 5.0 < a < 50.0 and abs(b) < 1e-9, (a, b)
  assert abs(np.mean((platt.sigmoid(a * z + b) - y) * z) + platt.RIDGE * (a - 1.0)) < 1e-12


@pytest.mark.parametrize(
  "labels, reason", [([], "no rows"), ([0, 0, 0], "no positives"), ([1, 1], "no negatives")]
)
def test_degenerate_sets_keep_the_identity(labels, reason):
  logits = np.linspace(-1.0, 1.0, len(labels))
  assert platt.identity_reason(np.array(labels)) == reason
  assert platt.fit_platt(logits, np.array(labels, dtype=np.int64)) == (1.0, 0.0)


@pytest.mark.parametrize(
  "logits, labels, match",
  [
    ([0.0, np.nan], [0, 1], "logits must be finite, got nan"),
    ([0.0, 1.0], [0, 2], "labels must be 0 or 1, got 2"),
    ([0.0], [0, 1], r"1-D of equal length, got shapes \(1,\) and \(2,\)"),
  ],
)
def test_bad_inputs_are_named(logits, labels, match):
  with pytest.raises(ValueError, match=match):
    platt.fit_platt(np.array(logits), np.array(labels))


def test_each_action_is_fitted_on_its_own_target_rows_only(caplog):
  """Rows of other targets (and "Other") carry head j's logits too, with labels that would
  pull the fit far away; they must not count."""
  own_0 = ([-1.0] * 4 + [1.0] * 4, [1, 0, 0, 0, 1, 1, 1, 0])  # -> (ln 3, 0), as above.
  own_1 = ([0.0] * 4 + [2.0] * 4, [1, 1, 0, 0, 1, 1, 1, 0])  # 2 a = ln 3, b = 0.
  rows = []  # (target, logit 0, logit 1, label 0, label 1)
  rows += [(0, z, -5.0, y, 1) for z, y in zip(*own_0)]
  rows += [(1, 5.0, z, 0, y) for z, y in zip(*own_1)]
  rows += [(-1, 3.0, 3.0, 0, 0)] * 20
  target, z0, z1, y0, y1 = (np.array(c) for c in zip(*rows))
  predictions = types.SimpleNamespace(
    logits=np.stack([z0, z1], 1), labels=np.stack([y0, y1], 1), target_action=target
  )
  with caplog.at_level(logging.WARNING):
    calibration = platt.fit(
      predictions, ACTIONS, REF, {"files": "VAL/*", "days": None}, min_positives_for_slope=1
    )
  np.testing.assert_allclose(calibration.a, [math.log(3.0), math.log(3.0) / 2], atol=1e-5)
  np.testing.assert_allclose(calibration.b, [0.0, 0.0], atol=1e-5)
  assert calibration.fitted_on == {
    "rows": [8, 8],
    "positives": [4, 5],
    "identity_because": [None, None],
    "slope_fixed_because": [None, None],
    "files": "VAL/*",
    "days": None,
  }
  assert calibration.checkpoint == REF and calibration.actions == ACTIONS
  assert not _warnings(caplog)
  # Fitted on every row of column 0 instead, the answer would be far off.
  a_all, _ = platt.fit_platt(z0, y0)
  assert a_all < 0.5


def test_fit_intercept_matches_the_base_rate_by_hand():
  """Logits all 0 and a rate of 1/4: sigmoid(b) = 1/4, so b = -ln 3 (the ridge moves it by
  about 1e-5); logits all 1 shift it by -1."""
  y = np.array([1, 0, 0, 0] * 5)
  assert platt.fit_intercept(np.zeros(20), y) == pytest.approx(-math.log(3.0), abs=1e-4)
  assert platt.fit_intercept(np.ones(20), y) == pytest.approx(-math.log(3.0) - 1, abs=1e-4)
  assert platt.fit_intercept(np.ones(3), np.zeros(3)) == 0.0


def test_few_positives_fit_the_intercept_only_and_keep_the_ranking():
  """10 positives, all on the lowest logits: the full fit would need a < 0 (clamped to a flat
  0), but 10 < 30 positives fit only b with a = 1, so the head keeps its ranking."""
  z = np.linspace(-3.0, 3.0, 100)
  y = (np.arange(100) < 10).astype(int)
  predictions = types.SimpleNamespace(
    logits=np.stack([z, z], 1), labels=np.stack([y, y], 1), target_action=np.zeros(100, np.int64)
  )
  calibration = platt.fit(predictions, ACTIONS, REF)
  assert calibration.a[0] == 1.0
  assert calibration.b[0] == pytest.approx(platt.fit_intercept(z, y))
  assert calibration.fitted_on["slope_fixed_because"] == ["10 positives < 30", None]
  assert platt.fit(predictions, ACTIONS, REF, min_positives_for_slope=10).a[0] == 0.0


def test_an_action_without_positives_keeps_the_identity_and_says_why(caplog):
  predictions = types.SimpleNamespace(
    logits=np.array([[0.5, -1.0], [-0.5, 1.0], [0.0, 2.0]]),
    labels=np.array([[1, 0], [0, 0], [1, 0]]),
    target_action=np.array([0, 0, 1]),
  )
  with caplog.at_level(logging.WARNING):
    calibration = platt.fit(predictions, ACTIONS, REF)
  assert calibration.a[1] == 1.0 and calibration.b[1] == 0.0
  assert calibration.fitted_on == {
    "rows": [2, 1],
    "positives": [1, 0],
    "identity_because": [None, "no positives"],
    "slope_fixed_because": ["1 positives < 30", None],
  }
  assert "calibration of pay: no positives among its 1 target rows; keeping (a, b) = (1, 0)" in (
    caplog.text
  )


def test_save_load_round_trip(tmp_path):
  calibration = _calibration((0.5, 1.0), (-1.0, 0.0))
  path = calibration.save(str(tmp_path))
  assert path == str(tmp_path / "calibration.json")
  assert os.listdir(tmp_path) == ["calibration.json"]  # Written atomically: no temp left.
  with open(path, encoding="utf-8") as f:
    assert json.load(f) == {
      "checkpoint": "checkpoints/ckpt-1",
      "checkpoint_sha256": "ab" * 32,
      "actions": ["install", "pay"],
      "a": [0.5, 1.0],
      "b": [-1.0, 0.0],
      "fitted_on": {
        "rows": [4, 6],
        "positives": [1, 0],
        "identity_because": [None, "no positives"],
        "files": "VAL/part-*",
        "days": None,
      },
    }
  assert platt.load(path, ACTIONS) == calibration


def _write(path, **changes):
  data = _calibration((0.5, 1.0), (-1.0, 0.0)).to_dict()
  data.update(changes)
  path.write_text(json.dumps(data))
  return str(path)


@pytest.mark.parametrize(
  "changes, message",
  [
    (
      dict(actions=["pay", "install"]),
      "calibrated actions ['pay', 'install'] are not the "
      "model's actions ['install', 'pay']; it belongs to another model",
    ),
    (dict(a=[0.5]), "'a' must be a list of 2 finite numbers (one per action), got [0.5]"),
    (
      dict(b=[0.0, float("nan")]),
      "'b' must be a list of 2 finite numbers (one per action), got [0.0, nan]",
    ),
    (dict(a=[True, 1.0]), "'a' must be a list of 2 finite numbers"),
  ],
)
def test_load_refuses_a_file_that_does_not_fit_the_model_naming_it(tmp_path, changes, message):
  path = _write(tmp_path / "calibration.json", **changes)
  with pytest.raises(platt.CalibrationError) as error:
    platt.load(path, ACTIONS)
  assert str(error.value).startswith(f"{path}: {message}")


def test_load_refuses_what_is_not_a_calibration_file(tmp_path):
  path = tmp_path / "calibration.json"
  path.write_text('{"a": [1, 1]}')
  with pytest.raises(
    platt.CalibrationError,
    match=r"calibration.json: not a calibration file, it lacks \['checkpoint', "
    r"'checkpoint_sha256', 'actions', 'b', 'fitted_on'\]",
  ):
    platt.load(str(path), ACTIONS)
  path.write_text("{")
  with pytest.raises(platt.CalibrationError, match="calibration.json: not valid JSON"):
    platt.load(str(path), ACTIONS)


def _checkpoint(model_dir, value):
  """A real checkpoint of one variable under MODEL_DIR/checkpoints; returns its path."""
  checkpoint = tf.train.Checkpoint(w=tf.Variable([value, 2.0]))
  manager = tf.train.CheckpointManager(checkpoint, os.path.join(model_dir, "checkpoints"), 3)
  return manager.save()


def test_applied_only_to_the_checkpoint_it_was_fitted_for(tmp_path, caplog):
  model_dir = str(tmp_path)
  first = _checkpoint(model_dir, 1.0)
  assert platt.for_checkpoint(model_dir, ACTIONS, first) is None  # No file: raw scores.
  ref = platt.CheckpointRef.of(model_dir, first)
  assert ref.name == "checkpoints/ckpt-1" and len(ref.sha256) == 64
  calibration = _calibration((0.5, 1.0), (-1.0, 0.0), checkpoint=ref)
  calibration.save(model_dir)
  with caplog.at_level(logging.WARNING):
    assert platt.for_checkpoint(model_dir, ACTIONS, first) == calibration
  assert not _warnings(caplog)
  # Other weights under the same name (a new manager numbers from 1 again, as in a directory
  # trained again from scratch): the name alone would match, the weights do not.
  second = _checkpoint(model_dir, 1.5)
  assert second == first
  with caplog.at_level(logging.WARNING):
    assert platt.for_checkpoint(model_dir, ACTIONS, second) is None
  other = platt.CheckpointRef.of(model_dir, second).sha256
  assert (
    f"{model_dir}/calibration.json was fitted for checkpoint checkpoints/ckpt-1 (index "
    f"sha256 {ref.sha256[:12]}), not for the restored checkpoints/ckpt-1 "
    f"({other[:12]})"
  ) in caplog.text
  assert "IGNORED, scores are the raw, uncalibrated probabilities" in caplog.text
