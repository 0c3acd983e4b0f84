"""The tuner: validation-only guard, best config and report written, resumable by replay."""

import json
import os

import pytest

from kaml_tf.models import config as model_config_lib
from kaml_tf.training import config as config_lib
from kaml_tf.training import model_dir as model_dir_lib
from kaml_tf.tuning import search_space
from kaml_tf.tuning import tuner


def _run(small_logs, **optim):
  optim = dict(dict(early_stopping_patience=1, epochs=3), **optim)
  return config_lib.RunConfig(
    data=config_lib.DataConfig(
      schema_path=small_logs["schema"],
      train_files=small_logs["train"],
      mask_policy="base",
      validation_days=1,
    ),
    model=model_config_lib.ModelConfig(backbone="mmoe"),
    optim=config_lib.OptimConfig(**optim),
  )


class _ScoredByLearningRate:
  """Writes what a finished trial leaves (config + summary); the score peaks at lr 2e-3."""

  def __init__(self):
    self.calls = 0

  def __call__(self, run_config, trial_dir):
    self.calls += 1
    os.makedirs(trial_dir, exist_ok=True)
    run_config.save(trial_dir)
    score = 0.7 - abs(run_config.optim.learning_rate - 2e-3) * 10
    summary = {
      "epochs": 2,
      "seconds": 1.0,
      "best": {"score": score, "metric": "per_target_overall_auc", "epoch": 1},
    }
    with open(os.path.join(trial_dir, model_dir_lib.SUMMARY_FILE), "w") as f:
      json.dump(summary, f)
    return summary


def test_tune_writes_the_best_config_and_replays_finished_trials(small_logs, tmp_path):
  space = search_space.SearchSpace(learning_rate=(5e-4, 2e-3, 4e-3))
  config = tuner.TuneConfig(space=space, budget=4)
  runner = _ScoredByLearningRate()
  report = tuner.tune(_run(small_logs), config, str(tmp_path), run_trial=runner)
  assert runner.calls == 4
  assert [t["point"]["learning_rate"] for t in report["trials"]] == [1e-3, 5e-4, 2e-3, 4e-3]
  assert report["best"]["point"]["learning_rate"] == 2e-3
  assert report["best"]["score"] == pytest.approx(0.7)
  assert config_lib.RunConfig.load(str(tmp_path)).optim.learning_rate == 2e-3
  markdown = (tmp_path / tuner.REPORT_MD).read_text()
  assert "learning_rate=0.002" in markdown and "**best**" in markdown
  again = tuner.tune(_run(small_logs), config, str(tmp_path), run_trial=runner)
  assert runner.calls == 4
  assert all(t["reused"] for t in again["trials"])
  assert json.loads((tmp_path / tuner.REPORT_JSON).read_text())["best"] == again["best"]


def test_searches_from_different_base_runs_never_share_a_trial(small_logs, tmp_path):
  space = search_space.SearchSpace(learning_rate=(2e-3,))
  runner = _ScoredByLearningRate()
  first = tuner.tune(
    _run(small_logs), tuner.TuneConfig(space=space, budget=2), str(tmp_path), run_trial=runner
  )
  second = tuner.tune(
    _run(small_logs, seed=5),
    tuner.TuneConfig(space=space, budget=2),
    str(tmp_path),
    run_trial=runner,
  )
  assert runner.calls == 4
  assert not {t["id"] for t in first["trials"]} & {t["id"] for t in second["trials"]}
  assert len(os.listdir(tmp_path / tuner.TRIALS_DIR)) == 4


@pytest.mark.parametrize(
  "data, optim, message",
  [
    (dict(validation_days=0), {}, "validation_days: tuning scores trials on validation"),
    ({}, dict(early_stopping_patience=0), "early_stopping_patience: tuning compares"),
  ],
)
def test_tuning_refuses_runs_that_do_not_select_on_validation(
  small_logs, tmp_path, data, optim, message
):
  run = _run(small_logs, **optim)
  if data:
    run = config_lib.RunConfig(
      data=config_lib.DataConfig(
        schema_path=small_logs["schema"],
        train_files=small_logs["train"],
        mask_policy="base",
        **data,
      ),
      model=run.model,
      optim=run.optim,
    )
  with pytest.raises(config_lib.ConfigError, match=message):
    tuner.tune(
      run,
      tuner.TuneConfig(space=search_space.SearchSpace()),
      str(tmp_path),
      run_trial=_ScoredByLearningRate(),
    )
  assert not os.listdir(tmp_path)


def test_trial_ids_name_the_whole_config(small_logs):
  assert tuner.trial_id(_run(small_logs)) == tuner.trial_id(_run(small_logs))
  assert tuner.trial_id(_run(small_logs)) != tuner.trial_id(_run(small_logs, seed=1))
  assert len(tuner.trial_id(_run(small_logs))) == 12
