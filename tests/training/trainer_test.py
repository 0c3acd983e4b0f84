"""End-to-end tests of kaml_tf.training.trainer on a few hundred simulated records."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from kaml_tf.models import config as model_config_lib
from kaml_tf.training import checkpointing
from kaml_tf.training import config as config_lib
from kaml_tf.training import model_dir as model_dir_lib
from kaml_tf.training import trained_model
from kaml_tf.training import trainer

TINY = dict(
  expert_units=(8,),
  num_experts=2,
  tower_units=(4,),
  embedding_dim=4,
  hke_sub_tower_units=(4,),
  hke_final_units=(),
)


def _config(logs, **optim):
  optim = {"batch_size": 64, "epochs": 1, "seed": 3, **optim}
  return config_lib.RunConfig(
    data=config_lib.DataConfig(
      schema_path=logs["schema"],
      train_files=logs["train"],
      stats_path=logs["stats"],
      mask_policy="adm",
      shuffle_buffer=1000,
    ),
    model=model_config_lib.ModelConfig(hke=True, **TINY),
    loss=config_lib.LossConfig(gamma=0.9),
    optim=config_lib.OptimConfig(**optim),
  )


def _weights(model_dir):
  return [v.numpy() for v in trained_model.load(model_dir).network.weights]


def test_trains_and_writes_model_dir(small_logs, tmp_path):
  model_dir = str(tmp_path / "kaml")
  result = trainer.train(_config(small_logs, checkpoint_every_steps=4), model_dir, verbose=0)
  steps_per_epoch = -(-result.history[0]["samples_read"] // 64)
  assert result.steps == steps_per_epoch
  assert result.resumed_from is None
  assert set(result.history[0]) >= {
    "bce",
    "rank",
    "total",
    "auc_activation",
    "unknown_ad_task_samples",
  }
  assert np.isfinite(result.history[0]["total"])
  assert result.history[0]["unknown_ad_task_samples"] == 0
  assert sorted(os.listdir(model_dir)) == [
    ".lock",
    "checkpoints",
    "config.json",
    "logs",
    "schema.json",
    "train_summary.json",
  ]
  assert config_lib.RunConfig.load(model_dir) == _config(small_logs, checkpoint_every_steps=4)
  # One Adam (the default): the checkpoint holds what it held before embedding optimizers.
  checkpoint = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
  assert {key.split("/")[0] for key, _ in tf.train.list_variables(checkpoint)} == {
    "_CHECKPOINTABLE_OBJECT_GRAPH",
    "epoch",
    "global_step",
    "network",
    "optimizer",
    "save_counter",
    "step_in_epoch",
  }
  assert os.listdir(os.path.join(model_dir, "logs", "train"))  # TensorBoard events


def test_rerun_after_finish_does_no_more_work_and_more_epochs_resume(small_logs, tmp_path):
  model_dir = str(tmp_path / "m")
  first = trainer.train(_config(small_logs), model_dir, verbose=0)
  again = trainer.train(_config(small_logs), model_dir, verbose=0)
  assert again.steps == first.steps and again.history == []
  assert again.resumed_from is not None
  more = trainer.train(_config(small_logs, epochs=2), model_dir, verbose=0)
  assert more.epochs == 2 and more.steps == 2 * first.steps


class _Killed(Exception):
  pass


def test_crash_mid_epoch_resumes_to_the_uninterrupted_result(small_logs, tmp_path, monkeypatch):
  reference_dir = str(tmp_path / "reference")
  reference = trainer.train(
    _config(small_logs, epochs=2, checkpoint_every_steps=3), reference_dir, verbose=0
  )

  original = checkpointing.CheckpointCallback.on_train_batch_end
  calls = {"n": 0}

  def crash_after_five(self, batch, logs=None):
    original(self, batch, logs)
    calls["n"] += 1
    if calls["n"] == reference.steps // 2 + 2:
      raise _Killed()

  model_dir = str(tmp_path / "crashed")
  config = _config(small_logs, epochs=2, checkpoint_every_steps=3)
  monkeypatch.setattr(checkpointing.CheckpointCallback, "on_train_batch_end", crash_after_five)
  with pytest.raises(_Killed):
    trainer.train(config, model_dir, verbose=0)
  monkeypatch.setattr(checkpointing.CheckpointCallback, "on_train_batch_end", original)
  resumed = trainer.train(config, model_dir, verbose=0)
  assert resumed.resumed_from is not None
  assert resumed.steps == reference.steps
  for got, want in zip(_weights(model_dir), _weights(reference_dir)):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_different_config_in_same_model_dir_is_refused(small_logs, tmp_path):
  model_dir = str(tmp_path / "m")
  trainer.train(_config(small_logs), model_dir, verbose=0)
  with pytest.raises(
    model_dir_lib.ModelDirError,
    match=r"different configuration.*optim.learning_rate: 0.001 -> 0.01",
  ):
    trainer.train(_config(small_logs, learning_rate=0.01), model_dir, verbose=0)


def test_model_dir_in_use_is_refused(small_logs, tmp_path):
  model_dir = str(tmp_path / "busy")
  with model_dir_lib.DirectoryLock(model_dir):
    with pytest.raises(model_dir_lib.ModelDirError, match=r"is in use by a training job \(pid"):
      trainer.train(_config(small_logs), model_dir, verbose=0)
  assert not os.path.exists(os.path.join(model_dir, "config.json"))


def test_alpha_of_wrong_length_fails_before_any_work(small_logs, tmp_path):
  config = _config(small_logs)
  bad = config_lib.RunConfig(
    data=config_lib.DataConfig(
      schema_path=small_logs["schema"],
      train_files="x",
      stats_path=small_logs["stats"],
      alpha=(1, 2),
    ),
    model=config.model,
  )
  with pytest.raises(config_lib.ConfigError, match=r"alpha: expected 5 values"):
    trainer.train(bad, str(tmp_path / "never"), verbose=0)
  assert not os.path.exists(tmp_path / "never")


def test_summary_file_matches_result(small_logs, tmp_path):
  model_dir = str(tmp_path / "m")
  result = trainer.train(_config(small_logs), model_dir, verbose=0)
  with open(os.path.join(model_dir, "train_summary.json")) as f:
    summary = json.load(f)
  assert summary["steps"] == result.steps
  assert summary["history"] == result.history


@pytest.mark.parametrize("name, refused", [("train-0.parquet", True), ("train-0.tfrecord", False)])
def test_parameter_server_refuses_parquet_training_logs(tmp_path, name, refused):
  (tmp_path / name).write_bytes(b"")
  data = config_lib.DataConfig(schema_path="s.json", train_files=str(tmp_path / "train-*"))
  run_config = config_lib.RunConfig(data=data, model=model_config_lib.ModelConfig())
  if not refused:
    trainer.check_parameter_server_inputs(run_config)
    return
  with pytest.raises(
    config_lib.ConfigError, match=r"^train: .*train-0\.parquet is a Parquet log, which"
  ) as raised:
    trainer.check_parameter_server_inputs(run_config)
  assert raised.value.field == "train_files"
