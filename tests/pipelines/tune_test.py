"""pipelines.tune run in-process on a few hundred records: real trials, report, resolved config."""

import json
import os

from absl import app
from absl.testing import flagsaver
import pytest

from kaml_tf.training import config as config_lib
from pipelines import tune

TINY = dict(
  expert_units=["8"],
  num_experts=2,
  tower_units=["4"],
  embedding_dim=4,
  batch_size=128,
  shuffle_buffer=500,
  epochs=2,
  validation_days=3,
  early_stopping_patience=1,
)


def _flags(logs, tune_dir, **overrides):
  values = dict(
    schema=logs["schema"],
    train=logs["train"],
    stats=logs["stats_daily"],
    mask="adm",
    hke=True,
    rank_gamma=0.9,
    tune_dir=tune_dir,
    tune_budget=3,
    tune_learning_rate=["1e-3"],
    tune_rank_gamma=["0.9"],
    tune_extended_weight=["1", "0"],
    tune_alpha=[],
    tune_dropout=[],
    tune_embedding_l2=[],
    **TINY,
  )
  values.update(overrides)
  return values


def test_tune_trains_real_trials_and_writes_the_best_config(small_logs, tmp_path, capsys):
  tune_dir = str(tmp_path / "tune")
  with flagsaver.flagsaver(**_flags(small_logs, tune_dir)):
    tune.main([])
  with open(os.path.join(tune_dir, "tuning_report.json"), encoding="utf-8") as f:
    report = json.load(f)
  trials = report["trials"]
  # Base, then activation's extended weight 0, then re_engagement's (3 trials in all).
  assert len(trials) == 3
  assert trials[1]["point"]["extended_weight/activation"] == 0.0
  for trial in trials:
    with open(os.path.join(tune_dir, "trials", trial["id"], "train_summary.json")) as f:
      summary = json.load(f)
    assert trial["score"] == summary["best"]["score"]
    assert summary["validation_days"] == [25, 27]
  best = max(trials, key=lambda t: t["score"])
  assert report["best"]["id"] == best["id"]
  resolved = config_lib.RunConfig.load(tune_dir)
  assert resolved == config_lib.RunConfig.from_dict(best["config"])
  assert "best: trial " + best["id"] in capsys.readouterr().out
  # A rerun reuses every finished trial.
  with flagsaver.flagsaver(**_flags(small_logs, tune_dir)):
    tune.main([])
  with open(os.path.join(tune_dir, "tuning_report.json"), encoding="utf-8") as f:
    assert all(t["reused"] for t in json.load(f)["trials"])


@pytest.mark.parametrize(
  "overrides, message",
  [
    (dict(validation_days=0), "--validation_days: tuning scores trials on validation data"),
    (dict(early_stopping_patience=0), "--early_stopping_patience: tuning compares"),
    (dict(tune_dropout=["1.5"]), "--tune_dropout: values must be in [0, 1)"),
    (dict(tune_budget=0), "--tune_budget: must be >= 1"),
  ],
)
def test_flag_errors_fail_before_any_trial(small_logs, tmp_path, overrides, message):
  tune_dir = str(tmp_path / "never")
  with flagsaver.flagsaver(**_flags(small_logs, tune_dir, **overrides)):
    with pytest.raises(app.UsageError) as e:
      tune.main([])
  assert message in str(e.value)
  assert not os.path.exists(tune_dir)


def test_tune_dir_is_required(small_logs):
  with flagsaver.flagsaver(**_flags(small_logs, "")):
    with pytest.raises(app.UsageError, match="--tune_dir is required"):
      tune.main([])
