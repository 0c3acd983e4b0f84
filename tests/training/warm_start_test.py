"""Tests for kaml_tf.training.warm_start: what a warm-started run starts from, and refusals."""

import dataclasses
import os

import numpy as np
import pytest

import kaml_tf  # noqa: F401
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.models import builder
from kaml_tf.training import config as config_lib
from kaml_tf.training import early_stopping
from kaml_tf.training import trained_model
from kaml_tf.training import trainer
from kaml_tf.training import warm_start


_STEP = "global_step/.ATTRIBUTES/VARIABLE_VALUE"


def _config(source_dir, logs, **optim):
  """A run on `logs` with the model config of `source_dir`, warm-started from it."""
  model = config_lib.RunConfig.load(source_dir).model
  optim = {"batch_size": 64, "epochs": 1, "seed": 5, "warm_start_from": source_dir, **optim}
  return config_lib.RunConfig(
    data=config_lib.DataConfig(
      schema_path=logs["schema"],
      train_files=logs["train"],
      stats_path=logs["stats_daily"],
      mask_policy="adm",
      shuffle_buffer=1000,
    ),
    model=model,
    loss=config_lib.LossConfig(gamma=0.9),
    optim=config_lib.OptimConfig(**optim),
  )


def _weights(model_dir, checkpoint="best"):
  return [v.numpy() for v in trained_model.load(model_dir, checkpoint).network.weights]


def test_restore_gives_the_source_best_network(early_stopped):
  source = early_stopped["model_dir"]
  run = _config(source, early_stopped["logs"])
  path = warm_start.source_checkpoint(run, schema_lib.Schema.load(run.data.schema_path))
  assert path == os.path.join(source, early_stopped_best(source))
  network = builder.build_model(schema_lib.Schema.load(run.data.schema_path), run.model)
  warm_start.restore(network, None, path)
  for got, want in zip([v.numpy() for v in network.weights], _weights(source)):
    np.testing.assert_array_equal(got, want)


def early_stopped_best(model_dir):
  return early_stopping.read_best(model_dir)["checkpoint"]


def test_training_starts_from_the_source_and_a_rerun_resumes(early_stopped, tmp_path):
  source = early_stopped["model_dir"]
  # A learning rate of 1e-9 moves no weight by more than a few 1e-9 in one epoch: what the run
  # ends with is what it started from.
  run = _config(source, early_stopped["logs"], learning_rate=1e-9)
  result = trainer.train(run, str(tmp_path / "warm"), verbose=0)
  assert result.warm_started_from == os.path.join(source, early_stopped_best(source))
  for got, want in zip(_weights(str(tmp_path / "warm"), "latest"), _weights(source)):
    np.testing.assert_allclose(got, want, atol=1e-6)
  cold = dataclasses.replace(run, optim=dataclasses.replace(run.optim, warm_start_from=""))
  trainer.train(cold, str(tmp_path / "cold"), verbose=0)
  far = [
    np.abs(got - want).max()
    for got, want in zip(_weights(str(tmp_path / "cold"), "latest"), _weights(source))
  ]
  assert max(far) > 1e-2
  again = trainer.train(run, str(tmp_path / "warm"), verbose=0)
  assert again.resumed_from is not None and again.warm_started_from is None
  assert again.steps == result.steps


def test_optimizer_state_comes_from_the_best_step(early_stopped, tmp_path):
  # A source that validates every 5 steps and keeps every checkpoint, so the training
  # checkpoint of its best step (with the optimizer state) is still there.
  logs = early_stopped["logs"]
  source = str(tmp_path / "source")
  plain = _config(early_stopped["model_dir"], logs)
  trainer.train(
    dataclasses.replace(
      plain,
      data=dataclasses.replace(plain.data, validation_days=3),
      optim=config_lib.OptimConfig(
        batch_size=64, epochs=1, seed=5, eval_every_steps=5, keep_checkpoints=50
      ),
    ),
    source,
    verbose=0,
  )
  best_step = early_stopping.read_best(source)["global_step"]
  run = _config(source, logs, warm_start_optimizer=True)
  path = warm_start.source_checkpoint(run, schema_lib.Schema.load(run.data.schema_path))
  assert path.startswith(os.path.join(source, "checkpoints", "ckpt-"))
  assert int(tf.train.load_variable(path, _STEP)) == best_step
  result = trainer.train(run, str(tmp_path / "warm"), verbose=0)
  latest = tf.train.latest_checkpoint(str(tmp_path / "warm" / "checkpoints"))
  iterations = "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"
  source_iterations = int(tf.train.load_variable(path, iterations))
  assert source_iterations >= best_step
  # Adam's step count continues from the source's (tf-keras may add one per epoch end).
  assert source_iterations + result.steps <= int(tf.train.load_variable(latest, iterations))


def test_optimizer_state_no_longer_kept_is_refused(early_stopped, tmp_path):
  # The early-stopped run saved more checkpoints after its best step than it keeps (3).
  source = early_stopped["model_dir"]
  best_step = early_stopping.read_best(source)["global_step"]
  kept = tf.train.get_checkpoint_state(os.path.join(source, "checkpoints"))
  assert best_step not in [
    int(tf.train.load_variable(p, _STEP)) for p in kept.all_model_checkpoint_paths
  ]
  run = _config(source, early_stopped["logs"], warm_start_optimizer=True)
  with pytest.raises(config_lib.ConfigError, match=r"warm_start_from.*no longer kept"):
    trainer.train(run, str(tmp_path / "warm"), verbose=0)
  assert not os.path.exists(tmp_path / "warm")


@pytest.mark.parametrize(
  "change, message",
  [
    (lambda run: dataclasses.replace(run.model, num_experts=3), r"num_experts: 2 -> 3"),
    (lambda run: dataclasses.replace(run.model, hke=False), r"hke: True -> False"),
  ],
)
def test_another_architecture_is_refused_before_any_work(early_stopped, tmp_path, change, message):
  run = _config(early_stopped["model_dir"], early_stopped["logs"])
  run = dataclasses.replace(run, model=change(run))
  with pytest.raises(config_lib.ConfigError, match=r"warm_start_from: .*architecture.*" + message):
    trainer.train(run, str(tmp_path / "warm"), verbose=0)
  assert not os.path.exists(tmp_path / "warm")


def test_another_schema_or_no_model_dir_is_refused(early_stopped, tmp_path):
  logs = dict(early_stopped["logs"])
  schema = schema_lib.Schema.load(logs["schema"])
  other = dataclasses.replace(schema, actions=schema.actions[:-1] + ("other",))
  logs["schema"] = str(tmp_path / "schema.json")
  other.save(logs["schema"])
  run = _config(early_stopped["model_dir"], logs)
  with pytest.raises(config_lib.ConfigError, match=r"trained on schema [0-9a-f]+ but"):
    warm_start.source_checkpoint(run, other)
  run = dataclasses.replace(
    run, optim=dataclasses.replace(run.optim, warm_start_from=str(tmp_path / "nothing"))
  )
  with pytest.raises(config_lib.ConfigError, match=r"nothing is not a trained model directory"):
    warm_start.source_checkpoint(run, other)


def test_optimizer_flag_needs_a_source():
  with pytest.raises(config_lib.ConfigError, match=r"warm_start_optimizer.*needs --warm_start"):
    config_lib.OptimConfig(warm_start_optimizer=True)


def _warm_from(trained, **optim):
  """The config of `trained` (a fixture), warm-started from its model dir with its optimizers."""
  run = trained["config"]
  optim = dict(warm_start_from=trained["model_dir"], warm_start_optimizer=True, **optim)
  return dataclasses.replace(run, optim=dataclasses.replace(run.optim, **optim))


def test_optimizer_state_of_both_optimizers_comes_along(adagrad_trained):
  run = _warm_from(adagrad_trained, embedding_learning_rate=0.2)
  schema = schema_lib.Schema.load(run.data.schema_path)
  path = warm_start.source_checkpoint(run, schema)
  assert path == tf.train.latest_checkpoint(
    os.path.join(adagrad_trained["model_dir"], "checkpoints")
  )
  task = trainer.build_task(schema, run)
  warm_start.restore(task.network, task.optimizer, path, task.embedding_optimizer)
  accumulators = task.embedding_optimizer.variables()[1:]
  for i, accumulator in enumerate(accumulators, start=1):
    key = f"embedding_optimizer/_variables/{i}/.ATTRIBUTES/VARIABLE_VALUE"
    np.testing.assert_array_equal(accumulator.numpy(), tf.train.load_variable(path, key))
  assert all(np.max(a.numpy()) > 0.1 for a in accumulators)
  assert int(task.optimizer.iterations) == int(task.embedding_optimizer.iterations) == 2


@pytest.mark.parametrize("embedding_optimizer", ["adam", "ftrl"])
def test_optimizer_state_of_another_embedding_optimizer_is_refused(
  adagrad_trained, embedding_optimizer
):
  # Adam takes no embedding learning rate of its own.
  lr = config_lib.DEFAULT_EMBEDDING_LEARNING_RATE if embedding_optimizer == "adam" else 0.1
  run = _warm_from(
    adagrad_trained, embedding_optimizer=embedding_optimizer, embedding_learning_rate=lr
  )
  schema = schema_lib.Schema.load(run.data.schema_path)
  with pytest.raises(
    config_lib.ConfigError,
    match=rf"^warm_start_optimizer: .* --embedding_optimizer=adagrad and this run with "
    rf"{embedding_optimizer}",
  ):
    warm_start.source_checkpoint(run, schema)
  # The network alone may warm-start.
  alone = dataclasses.replace(run, optim=dataclasses.replace(run.optim, warm_start_optimizer=False))
  assert warm_start.source_checkpoint(alone, schema)
