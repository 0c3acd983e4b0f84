"""`pipelines.train --calibrate` on a tiny real run, then evaluation of the calibrated model.

The validation set is the training logs themselves (the shared simulated logs' test day has
31 rows, too few to fit on); what is checked is the machinery, and the LogLoss inequality,
which holds on the set the calibration was fitted on.
"""

import json
import logging
import os
import shutil

from absl import app
from absl.testing import flagsaver
import kaml_tf  # noqa: F401
import numpy as np
import pytest

from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.calibration import fitting
from kaml_tf.calibration import platt
from kaml_tf.logs import validation
from kaml_tf.evaluation import evaluator
from kaml_tf.evaluation import metrics as metrics_lib
from kaml_tf.training import config as config_lib
from kaml_tf.training import trained_model
from pipelines import evaluate
from pipelines import train

TINY = dict(
  expert_units=["8"],
  num_experts=2,
  tower_units=["4"],
  embedding_dim=4,
  batch_size=128,
  shuffle_buffer=500,
  mask="adm",
  hke=True,
  rank_gamma=0.9,
)


def _train_flags(logs, directory, **overrides):
  values = dict(
    schema=logs["schema"],
    train=logs["train"],
    stats=logs["stats_daily"],
    validation=logs["train"],
    model_dir=directory,
    calibrate=True,
    **TINY,
  )
  values.update(overrides)
  return values


@pytest.fixture(scope="module")
def calibrated_dir(small_logs, tmp_path_factory):
  directory = str(tmp_path_factory.mktemp("calibrate") / "kaml")
  with flagsaver.flagsaver(**_train_flags(small_logs, directory)):
    train.main([])
  return directory


def _target_counts(logs, schema):
  rows = records.read_columns(logs, schema)
  target = rows[schema_lib.TARGET_ACTION]
  return (
    [int(np.sum(target == j)) for j in range(schema.num_actions)],
    [int(rows[k][target == j].sum()) for j, k in enumerate(schema.label_keys)],
  )


def test_a_calibrated_run_writes_calibration_json_for_its_checkpoint(small_logs, calibrated_dir):
  with open(os.path.join(calibrated_dir, "calibration.json"), encoding="utf-8") as f:
    data = json.load(f)
  model = trained_model.load(calibrated_dir)
  schema = model.schema
  assert list(data) == ["checkpoint", "checkpoint_sha256", "actions", "a", "b", "fitted_on"]
  # Fitted for the best checkpoint (one epoch of 7 steps, evaluated at its end), which
  # evaluation and export restore by default.
  assert data["checkpoint"] == model.checkpoint_name == "best/ckpt-7"
  assert (
    data["checkpoint_sha256"] == platt.CheckpointRef.of(calibrated_dir, model.checkpoint).sha256
  )
  assert data["actions"] == list(schema.actions)
  rows, positives = _target_counts(small_logs["train"], schema)
  # retention is the target of 3 training rows, none converted: nothing to fit.
  assert rows[-1] == 3 and positives[-1] == 0
  few = [
    None
    if p >= platt.MIN_POSITIVES_FOR_SLOPE or p == 0
    else f"{p} positives < {platt.MIN_POSITIVES_FOR_SLOPE}"
    for p in positives
  ]
  assert data["fitted_on"] == {
    "rows": rows,
    "positives": positives,
    "identity_because": [None] * 4 + ["no positives"],
    "slope_fixed_because": few,
    "files": small_logs["train"],
    "days": None,
  }
  assert (data["a"][-1], data["b"][-1]) == (1.0, 0.0)
  # Exactly the fit of the validation rows' raw logits, action by action.
  predictions = evaluator.predict(model, small_logs["train"])
  for j in range(4):
    own = predictions.target_action == j
    z, y = predictions.logits[own, j], predictions.labels[own, j]
    expected = platt.fit_platt(z, y) if few[j] is None else (1.0, platt.fit_intercept(z, y))
    np.testing.assert_allclose([data["a"][j], data["b"][j]], expected, rtol=1e-9)
    assert (data["a"][j], data["b"][j]) != (1.0, 0.0)
  assert model.calibration == platt.load(
    os.path.join(calibrated_dir, "calibration.json"), schema.actions
  )


def test_fit_for_a_restored_model_writes_what_the_trainer_wrote(
  small_logs, calibrated_dir, tmp_path
):
  copy = str(tmp_path / "model")
  shutil.copytree(calibrated_dir, copy)
  os.remove(os.path.join(copy, "calibration.json"))
  model = trained_model.load(copy)
  assert model.calibration is None
  with pytest.raises(
    ValueError, match="fit_for: model_dir is required when model is a restored model"
  ):
    fitting.fit_for(model, small_logs["train"])
  calibration = fitting.fit_for(model, small_logs["train"], model_dir=copy)
  with open(os.path.join(calibrated_dir, "calibration.json"), encoding="utf-8") as f:
    assert calibration.to_dict() == json.load(f)
  assert trained_model.load(copy).calibration == calibration


def test_fit_for_names_a_malformed_record_or_skips_and_counts_it(
  small_logs, calibrated_dir, tmp_path, broken_log
):
  model = trained_model.load(calibrated_dir)
  first, second = records.list_files(small_logs["train"])
  bad_file = str(tmp_path / "logs" / os.path.basename(first))
  os.makedirs(os.path.dirname(bad_file))
  field = model.schema.dense_features[0].name
  broken_log(bad_file, model.schema, records.read_columns(first, model.schema), "nan", record=2)
  shutil.copy(second, tmp_path / "logs")
  copy = str(tmp_path / "model")
  shutil.copytree(calibrated_dir, copy)
  logs = str(tmp_path / "logs" / "train-*")
  with pytest.raises(
    validation.BadRecordError,
    match=f"{bad_file}: record #2 field '{field}' is nan, expected a finite",
  ):
    fitting.fit_for(model, logs, model_dir=copy)
  calibration = fitting.fit_for(model, logs, model_dir=copy, skip_bad_records=True)
  skipped = calibration.fitted_on["skipped_bad_records"]
  assert skipped["total_records"] == 1 and skipped["by_reason"] == {"not_finite": 1}
  rows, _ = _target_counts(small_logs["train"], model.schema)
  skipped_target = int(records.read_columns(first, model.schema)[schema_lib.TARGET_ACTION][2])
  assert sum(calibration.fitted_on["rows"]) == sum(rows) - (skipped_target >= 0)


def test_evaluation_serves_calibrated_probabilities_and_keeps_raw_logits(
  small_logs, calibrated_dir
):
  model = trained_model.load(calibrated_dir)
  predictions = evaluator.predict(model, small_logs["train"], batch_size=100)
  rows = records.read_columns(small_logs["train"], model.schema)
  features = {k: rows[k] for k in model.schema.feature_names}
  features[schema_lib.HKE_INDICATOR] = np.ones((len(rows["day"]), 5), np.float32)
  raw = model.network(features).numpy()
  np.testing.assert_allclose(predictions.logits, raw, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(predictions.raw_probabilities, platt.sigmoid(raw), atol=1e-6)
  np.testing.assert_allclose(predictions.probabilities, model.calibration.apply(raw), atol=1e-6)
  assert np.abs(predictions.probabilities - predictions.raw_probabilities).max() > 0.05


def test_metrics_json_has_raw_and_calibrated_figures(small_logs, calibrated_dir, tmp_path, capsys):
  output = str(tmp_path / "metrics.json")
  with flagsaver.flagsaver(
    model_dir=calibrated_dir, test=small_logs["train"], output=output, oracle=False, base_metrics=""
  ):
    evaluate.main([])
  with open(output, encoding="utf-8") as f:
    metrics = json.load(f)
  assert list(metrics) == [
    "actions",
    "overall",
    "skipped_other",
    "calibration",
    "raw",
    "checkpoint",
  ]
  assert metrics["checkpoint"] == "best/ckpt-7"
  calibration = platt.load(
    os.path.join(calibrated_dir, "calibration.json"), list(metrics["actions"])
  )
  assert metrics["calibration"] == {
    "checkpoint": "best/ckpt-7",
    "a": dict(zip(calibration.actions, calibration.a)),
    "b": dict(zip(calibration.actions, calibration.b)),
  }
  predictions = evaluator.predict(trained_model.load(calibrated_dir), small_logs["train"])
  names = list(metrics["actions"])
  served = metrics_lib.per_target_metrics(
    predictions.probabilities, predictions.labels, predictions.target_action, names
  )
  raw = metrics_lib.per_target_metrics(
    predictions.raw_probabilities, predictions.labels, predictions.target_action, names
  )
  assert metrics["overall"] == served["overall"] and metrics["raw"]["overall"] == raw["overall"]
  # On the rows it was fitted on, maximum likelihood over a family that contains the identity
  # cannot do worse than the identity (up to float32 scoring).
  for name in names[:4]:
    assert metrics["actions"][name]["logloss"] <= metrics["raw"]["actions"][name]["logloss"] + (
      1e-6
    ), name
  assert metrics["overall"]["logloss"] < metrics["raw"]["overall"]["logloss"] - 1e-3
  # Within an action the calibration never reverses the ranking: a positive slope keeps the
  # action's own AUC; a head that ranks its target rows worse than chance (as some heads of
  # this 7-step model do) gets a = 0, the base rate, so every row ties (AUC 1/2).
  slopes = dict(zip(names, calibration.a))
  assert min(slopes.values()) >= 0
  assert 0.0 in slopes.values()
  for name in names[:4]:
    served_auc, raw_auc = (m["actions"][name]["auc"] for m in (metrics, metrics["raw"]))
    expected = raw_auc if slopes[name] > 0 else 0.5
    assert served_auc == pytest.approx(expected, abs=1e-9), name
  out = capsys.readouterr().out
  assert "| per-target | overall |" in out and "| raw per-target | overall |" in out


def test_a_calibration_of_other_weights_is_ignored_with_a_warning(
  small_logs, calibrated_dir, tmp_path, caplog
):
  copy = str(tmp_path / "model")
  shutil.copytree(calibrated_dir, copy)
  path = os.path.join(copy, "calibration.json")
  with open(path, encoding="utf-8") as f:
    data = json.load(f)
  data["checkpoint_sha256"] = "0" * 64
  with open(path, "w", encoding="utf-8") as f:
    json.dump(data, f)
  with caplog.at_level(logging.WARNING):
    model = trained_model.load(copy)
  assert model.calibration is None
  assert f"{path} was fitted for checkpoint best/ckpt-7 (index sha256 000000000000)" in (
    caplog.text
  )
  result = evaluator.evaluate(model, small_logs["test"])
  assert result["calibration"] is None
  assert result["overall"] == result["raw"]["overall"]


def test_calibration_of_another_models_actions_is_an_error_naming_the_file(
  calibrated_dir, tmp_path
):
  copy = str(tmp_path / "model")
  shutil.copytree(calibrated_dir, copy)
  path = os.path.join(copy, "calibration.json")
  with open(path, encoding="utf-8") as f:
    data = json.load(f)
  data["actions"] = data["actions"][::-1]
  with open(path, "w", encoding="utf-8") as f:
    json.dump(data, f)
  with pytest.raises(platt.CalibrationError, match=f"{path}: calibrated actions "):
    trained_model.load(copy)


def test_rerunning_a_finished_run_with_calibrate_calibrates_it(small_logs, tmp_path):
  directory = str(tmp_path / "kaml")
  with flagsaver.flagsaver(**_train_flags(small_logs, directory, calibrate=False)):
    train.main([])
  assert not os.path.exists(os.path.join(directory, "calibration.json"))
  steps = trained_model.load(directory).checkpoint_name
  with flagsaver.flagsaver(**_train_flags(small_logs, directory)):
    train.main([])
  assert trained_model.load(directory).checkpoint_name == steps  # no further training
  assert trained_model.load(directory).calibration is not None


def test_calibrate_without_a_validation_set_is_a_flag_error(small_logs, tmp_path):
  directory = str(tmp_path / "never")
  with flagsaver.flagsaver(**_train_flags(small_logs, directory, validation="")):
    with pytest.raises(app.UsageError) as error:
      train.main([])
  assert str(error.value) == (
    "--calibrate: the calibration is fitted on the validation set; "
    "give one with --validation_days or --validation"
  )
  assert not os.path.exists(directory)


def test_an_old_config_without_the_field_is_not_calibrated(calibrated_dir):
  with open(os.path.join(calibrated_dir, "config.json"), encoding="utf-8") as f:
    data = json.load(f)
  assert data["optim"].pop("calibrate") is True
  assert config_lib.RunConfig.from_dict(data).optim.calibrate is False
