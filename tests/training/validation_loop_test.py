"""Validation while training, for real: a tiny run that stops early and keeps its best network.

`early_stopped` (tests/conftest.py) trained KAML on the first 25 of the 28 training days of
`small_logs`, validating on days 25-27 every 5 steps and at epoch ends, with patience 2. The
checks recompute what the run claims: the split of the days, the stopping decision from the
recorded scores, and the best score from the network restored out of MODEL_DIR/best/.
"""

import dataclasses
import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.data import stats as stats_lib
from kaml_tf.evaluation import evaluator
from kaml_tf.models import config as model_config_lib
from kaml_tf.training import config as config_lib
from kaml_tf.training import early_stopping
from kaml_tf.training import trained_model
from kaml_tf.training import trainer
from kaml_tf.training import validation_loop

METRIC = "per_target_overall_auc"
VALIDATION_DAYS = [25, 27]


def _validate(model, logs):
  """The flat validation metrics of a restored model, as the training loop computes them."""
  predictions = evaluator.predict(model, logs["train"], days=tuple(VALIDATION_DAYS))
  return validation_loop.flat_metrics(
    evaluator.metrics_of(predictions, model.schema.actions), model.schema.actions
  )


def _metrics_of(entry):
  return {k: v for k, v in entry.items() if k not in ("epoch", "step", "global_step")}


def test_run_stops_after_patience_evaluations_without_improvement(early_stopped):
  summary = early_stopped["summary"]
  history = summary["validation_history"]
  assert summary["stopped_early"] and summary["validation_days"] == VALIDATION_DAYS
  # Evaluations every 5 global steps and at the end of each 13-step epoch, until the stop.
  steps = [e["global_step"] for e in history]
  last = steps[-1]
  assert steps == sorted(set(range(5, last + 1, 5)) | {s for s in (13, 26, 39) if s <= last})
  assert summary["steps"] == last < 4 * 13
  # The recorded scores, replayed through the rule, stop at the last one with the same best.
  replay = early_stopping.EarlyStopping(patience=2)
  for entry in history:
    assert not replay.stopped
    replay.update(entry)
  assert replay.stopped and replay.best == summary["best"]
  assert summary["best"]["score"] == max(e[METRIC] for e in history)
  best_entry = next(e for e in history if e["global_step"] == summary["best"]["global_step"])
  assert summary["best"]["checkpoint"] == f"best/ckpt-{best_entry['global_step']}"
  assert (best_entry["epoch"], best_entry["step"]) == (
    summary["best"]["epoch"],
    summary["best"]["step"],
  )


def test_best_checkpoint_restores_the_network_that_scored_best(early_stopped):
  model_dir, summary = early_stopped["model_dir"], early_stopped["summary"]
  best = trained_model.load(model_dir)  # "best" is the default
  assert best.checkpoint_name == summary["best"]["checkpoint"]
  with open(os.path.join(model_dir, "best", "best.json")) as f:
    assert json.load(f) == summary["best"]
  entry = next(
    e for e in summary["validation_history"] if e["global_step"] == summary["best"]["global_step"]
  )
  assert _validate(best, early_stopped["logs"]) == _metrics_of(entry)
  # The latest checkpoint holds the network of the last evaluation, a worse one.
  latest = trained_model.load(model_dir, "latest")
  assert latest.checkpoint_name.startswith("checkpoints/ckpt-")
  recomputed = _validate(latest, early_stopped["logs"])
  assert recomputed == _metrics_of(summary["validation_history"][-1])
  assert recomputed[METRIC] < summary["best"]["score"]
  assert sorted(os.listdir(os.path.join(model_dir, "best"))) == [
    "best.json",
    f"ckpt-{entry['global_step']}.data-00000-of-00001",
    f"ckpt-{entry['global_step']}.index",
  ]


def test_checkpoint_choice_is_checked(early_stopped, tmp_path):
  model_dir = early_stopped["model_dir"]
  assert trained_model.checkpoint_path(model_dir) == os.path.join(
    model_dir, early_stopped["summary"]["best"]["checkpoint"]
  )
  with pytest.raises(
    ValueError,
    match=r"^checkpoint: expected one of \['best', 'latest'\], "
    r"got 'newest'",
  ):
    trained_model.load(model_dir, "newest")
  assert trained_model.checkpoint_path(str(tmp_path)) is None


def test_validation_days_are_held_out_of_training(early_stopped):
  logs, summary = early_stopped["logs"], early_stopped["summary"]
  days = records.read_columns(logs["train"], schema_lib.Schema.load(logs["schema"]))["day"]
  assert sorted(set(days.tolist())) == list(range(28))
  # Every full epoch read exactly the rows of days 0-24; the last one was cut by the stop.
  read = [e["samples_read"] for e in summary["history"]]
  assert len(read) >= 2
  assert read[:-1] == [int(np.sum(days <= 24))] * (len(read) - 1)
  assert 0 < read[-1] < int(np.sum(days <= 24))
  assert int(np.sum(days <= 24)) == 776 and len(days) == 869


def test_validation_metrics_are_in_tensorboard(early_stopped):
  (events,) = glob.glob(
    os.path.join(early_stopped["model_dir"], "logs", "validation", "events.out.tfevents.*")
  )
  logged = {}
  for event in tf.compat.v1.train.summary_iterator(events):
    for value in event.summary.value:
      logged.setdefault(value.tag, []).append((event.step, float(tf.make_ndarray(value.tensor))))
  history = early_stopped["summary"]["validation_history"]
  assert logged[METRIC] == [(e["global_step"], pytest.approx(e[METRIC], rel=1e-6)) for e in history]
  assert set(logged) == {
    k
    for e in history
    for k, v in e.items()
    if v is not None and k not in ("epoch", "step", "global_step")
  }


def test_rerun_of_a_stopped_run_trains_no_further(early_stopped):
  model_dir, summary = early_stopped["model_dir"], early_stopped["summary"]
  run_config = config_lib.RunConfig.load(model_dir)
  longer = dataclasses.replace(run_config, optim=dataclasses.replace(run_config.optim, epochs=6))
  again = trainer.train(longer, model_dir, verbose=0)
  assert again.steps == summary["steps"] and again.history == []
  assert again.stopped_early and again.best == summary["best"]
  assert again.validation_history == summary["validation_history"]


TINY = dict(
  expert_units=(8,),
  num_experts=2,
  tower_units=(4,),
  embedding_dim=4,
  hke_sub_tower_units=(4,),
  hke_final_units=(),
)


def _config(logs, validation_days=3, validation_files="", label_delay_days=0, **optim):
  return config_lib.RunConfig(
    data=config_lib.DataConfig(
      schema_path=logs["schema"],
      train_files=logs["train"],
      stats_path=logs["stats_daily"],
      mask_policy="adm",
      shuffle_buffer=1000,
      validation_days=validation_days,
      validation_files=validation_files,
      label_delay_days=label_delay_days,
    ),
    model=model_config_lib.ModelConfig(hke=True, **TINY),
    loss=config_lib.LossConfig(gamma=0.9),
    optim=config_lib.OptimConfig(**{"batch_size": 64, "epochs": 1, "seed": 3, **optim}),
  )


class _Killed(Exception):
  pass


def test_kill_between_the_checkpoint_and_the_best_write_rewrites_it(
  small_logs, tmp_path, monkeypatch
):
  """The first evaluation (step 5) always improves; the job dies before writing best/."""
  model_dir = str(tmp_path / "m")
  config = _config(small_logs, eval_every_steps=5)

  def die(*args):
    raise _Killed()

  with monkeypatch.context() as patch:
    patch.setattr(early_stopping, "save_best", die)
    with pytest.raises(_Killed):
      trainer.train(config, model_dir, verbose=0)
  assert not os.path.exists(os.path.join(model_dir, "best"))
  latest = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
  reader = tf.train.load_checkpoint(latest)
  assert reader.get_tensor("global_step/.ATTRIBUTES/VARIABLE_VALUE") == 5
  state = json.loads(reader.get_tensor("early_stopping/.ATTRIBUTES/VARIABLE_VALUE"))
  assert state["best"]["global_step"] == 5 and len(state["history"]) == 1
  at_kill = _validate(trained_model.load(model_dir, "latest"), small_logs)

  resumed = trainer.train(config, model_dir, verbose=0)
  assert resumed.resumed_from == latest
  assert [e["global_step"] for e in resumed.validation_history] == [5, 10, 13]
  assert _metrics_of(resumed.validation_history[0]) == at_kill
  best = trained_model.load(model_dir)
  assert best.checkpoint_name == resumed.best["checkpoint"]
  assert _validate(best, small_logs)[METRIC] == resumed.best["score"]


def test_explicit_validation_files_are_evaluated_after_each_epoch(small_logs, tmp_path):
  config = _config(small_logs, validation_days=0, validation_files=small_logs["test"], epochs=2)
  result = trainer.train(config, str(tmp_path / "m"), verbose=0)
  steps = result.steps // 2
  assert [(e["epoch"], e["step"], e["global_step"]) for e in result.validation_history] == [
    (0, steps, steps),
    (1, steps, 2 * steps),
  ]
  assert result.validation_days is None and not result.stopped_early
  schema = schema_lib.Schema.load(small_logs["schema"])
  assert set(result.validation_history[0]) == (
    {"epoch", "step", "global_step", METRIC, "per_target_overall_logloss"}
    | {f"per_target_{m}_{a}" for m in ("auc", "logloss") for a in schema.actions}
  )
  # No second pass over the validation set by Keras.
  assert not any(k.startswith("val_") for k in result.history[0])
  # The full epoch's samples: no validation day is held out.
  assert result.history[0]["samples_read"] == 869


def test_validation_days_must_leave_a_training_day(small_logs, tmp_path):
  with pytest.raises(
    config_lib.ConfigError,
    match=r"^validation_days: cannot hold out the last 28 day\(s\): the logs "
    r"hold 28 distinct day\(s\) \(days 0\.\.27\)",
  ):
    trainer.train(_config(small_logs, validation_days=28), str(tmp_path / "never"), verbose=0)
  assert not (tmp_path / "never").exists()


def test_validation_files_and_days_are_exclusive(small_logs):
  with pytest.raises(
    config_lib.ConfigError, match=r"^validation_days: give either --validation .* not both"
  ):
    _config(small_logs, validation_files=small_logs["test"])


@pytest.mark.parametrize("flag", ["early_stopping_patience", "eval_every_steps"])
def test_early_stopping_needs_a_validation_set(small_logs, tmp_path, flag):
  with pytest.raises(config_lib.ConfigError, match=f"^{flag}: needs a validation set"):
    trainer.train(
      _config(small_logs, validation_days=0, **{flag: 2}), str(tmp_path / "never"), verbose=0
    )
  assert not (tmp_path / "never").exists()


def test_model_dir_written_before_these_fields_resumes_and_loads(small_logs, tmp_path):
  """A config.json without validation_days, early_stopping_patience, eval_every_steps."""
  model_dir = str(tmp_path / "old")
  config = _config(small_logs, validation_days=0)
  first = trainer.train(config, model_dir, verbose=0)
  path = os.path.join(model_dir, "config.json")
  with open(path) as f:
    saved = json.load(f)
  del saved["data"]["validation_days"]
  for name in ("early_stopping_patience", "eval_every_steps"):
    del saved["optim"][name]
  with open(path, "w") as f:
    json.dump(saved, f)
  assert config_lib.RunConfig.load(model_dir) == config
  model = trained_model.load(model_dir)  # no best/: the latest checkpoint
  assert model.checkpoint_name == "checkpoints/ckpt-1"
  again = trainer.train(config, model_dir, verbose=0)
  assert again.resumed_from.endswith("checkpoints/ckpt-1") and again.steps == first.steps
  assert again.best is None and again.validation_history == []


def test_static_statistics_that_count_a_validation_day_are_refused(small_logs, tmp_path):
  config = _config(small_logs)
  config = dataclasses.replace(
    config, data=dataclasses.replace(config.data, stats_path=small_logs["stats"])
  )
  with pytest.raises(
    config_lib.ConfigError,
    match=r"^stats: .*stats.parquet counts days 0\.\.27, which include the first "
    r"validation day 25: .* `compute_stats --end_day=24`",
  ):
    trainer.train(config, str(tmp_path / "never"), verbose=0)
  assert not os.path.exists(tmp_path / "never")


def test_static_statistics_ending_before_the_validation_days_are_accepted(small_logs, tmp_path):
  schema = schema_lib.Schema.load(small_logs["schema"])
  path = str(tmp_path / "stats_end24.parquet")
  stats_lib.compute_stats(
    small_logs["train"], schema, stats_lib.StatsConfig(window_days=28, end_day=24)
  ).save(path)
  config = _config(small_logs, steps_per_epoch=1)
  config = dataclasses.replace(
    config, data=dataclasses.replace(config.data, stats_path=path, stats_mode="static")
  )
  result = trainer.train(config, str(tmp_path / "run"), verbose=0)
  assert result.validation_days == [25, 27] and result.steps == 1


@pytest.mark.parametrize(
  "validation_days, delay, train, validation",
  [
    # small_logs' train split holds days 0..27: the last L are excluded, the K before them
    # validate, the rest train.
    (0, 0, None, None),
    (3, 0, (0, 24), (25, 27)),
    (0, 1, (0, 26), None),
    (0, 2, (0, 25), None),
    (3, 2, (0, 22), (23, 25)),
  ],
)
def test_label_delay_days_are_excluded_after_the_validation_days(
  small_logs, validation_days, delay, train, validation
):
  config = _config(small_logs, validation_days=validation_days, label_delay_days=delay)
  held_out = validation_loop.validation_set(config)
  assert (held_out.days if held_out else None) == validation
  assert validation_loop.training_days(config, held_out) == train


def test_label_delay_with_validation_files_trims_the_training_days_only(small_logs):
  config = _config(
    small_logs, validation_days=0, validation_files=small_logs["test"], label_delay_days=2
  )
  held_out = validation_loop.validation_set(config)
  assert held_out.days is None
  assert validation_loop.training_days(config, held_out) == (0, 25)


def test_label_delay_must_leave_a_day(small_logs, tmp_path):
  with pytest.raises(
    config_lib.ConfigError,
    match=r"^label_delay_days: cannot exclude the last 28 day\(s\): the logs hold 28 "
    r"distinct day\(s\) \(days 0\.\.27\)",
  ):
    trainer.train(
      _config(small_logs, validation_days=0, label_delay_days=28),
      str(tmp_path / "never"),
      verbose=0,
    )
  assert not (tmp_path / "never").exists()


def test_a_run_with_label_delay_reads_only_the_final_days(small_logs, tmp_path):
  logs = small_logs
  days = records.read_columns(logs["train"], schema_lib.Schema.load(logs["schema"]))["day"]
  result = trainer.train(
    _config(logs, validation_days=0, label_delay_days=2), str(tmp_path / "run"), verbose=0
  )
  # One epoch over days 0..25 (days 26 and 27 are not final).
  assert result.history[0]["samples_read"] == int(np.sum(days <= 25)) < len(days)
