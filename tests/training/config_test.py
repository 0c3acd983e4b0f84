"""RunConfig: soft ADM and embedding L2 fields, and config.json files written before them."""

import dataclasses
import json
import os

import pytest

from kaml_tf import schema as schema_lib
from kaml_tf.models import config as model_config_lib
from kaml_tf.training import config as config_lib
from kaml_tf.training import model_dir as model_dir_lib

SCHEMA = schema_lib.Schema(
  actions=("a", "b", "c"),
  sparse_features=(schema_lib.SparseFeature("user", num_buckets=7, embedding_dim=2),),
)


def _run(extended_weight=(), embedding_l2=0.0):
  return config_lib.RunConfig(
    data=config_lib.DataConfig(schema_path="s.json", train_files="t", mask_policy="base"),
    model=model_config_lib.ModelConfig(embedding_l2=embedding_l2),
    loss=config_lib.LossConfig(extended_weight=extended_weight),
  )


@pytest.mark.parametrize("weights", [(), (0.0,), (0.5,), (1, 0.25, 0)])
def test_extended_weight_of_one_or_n_values_in_unit_interval(weights):
  run = _run(weights)
  run.validate_against(3)
  assert run.loss.extended_weight == tuple(float(w) for w in weights)


@pytest.mark.parametrize("weights", [(1.5,), (-0.5,), (0.5, float("nan"), 0.5)])
def test_extended_weight_outside_unit_interval_names_the_field(weights):
  with pytest.raises(config_lib.ConfigError, match=r"^extended_weight: each weight must be in"):
    config_lib.LossConfig(extended_weight=weights)


def test_extended_weight_of_wrong_length_names_the_field():
  with pytest.raises(
    config_lib.ConfigError,
    match=r"^extended_weight: expected 1 value \(all actions\) or 3 \(one per "
    r"action\), got 2: \[0.5, 0.5\]",
  ):
    _run((0.5, 0.5)).validate_against(3)


def test_old_config_json_without_the_new_fields_loads_and_resumes(tmp_path):
  model_dir = str(tmp_path / "m")
  run = _run()
  model_dir_lib.prepare(model_dir, run, SCHEMA)
  path = os.path.join(model_dir, config_lib.CONFIG_FILE)
  with open(path) as f:
    old = json.load(f)
  del old["loss"]["extended_weight"], old["model"]["embedding_l2"]
  with open(path, "w") as f:
    json.dump(old, f)
  assert config_lib.RunConfig.load(model_dir) == run
  model_dir_lib.prepare(model_dir, run, SCHEMA)  # the same run: resumes, no difference
  with pytest.raises(model_dir_lib.ModelDirError, match=r"loss.extended_weight: \[\] -> \[0.5\]"):
    model_dir_lib.prepare(model_dir, _run((0.5,)), SCHEMA)


def test_negative_label_delay_names_the_field():
  with pytest.raises(config_lib.ConfigError, match=r"^label_delay_days: must be >= 0, got -1"):
    config_lib.DataConfig(schema_path="s.json", train_files="t", label_delay_days=-1)


def test_label_delay_round_trips_through_the_config_json():
  data = config_lib.DataConfig(schema_path="s.json", train_files="t", label_delay_days=2)
  assert config_lib.DataConfig(**dataclasses.asdict(data)) == data


def test_parameter_server_needs_a_shuffle():
  data = config_lib.DataConfig(schema_path="s.json", train_files="t", shuffle_buffer=0)
  optim = config_lib.OptimConfig(strategy="parameter_server", steps_per_epoch=5)
  with pytest.raises(config_lib.ConfigError, match=r"^shuffle_buffer: must be > 0 under") as e:
    config_lib.RunConfig(data=data, model=model_config_lib.ModelConfig(), optim=optim)
  assert e.value.field == "shuffle_buffer"
  # Any other strategy reads in order without a shuffle, and a shuffle suits every one.
  config_lib.RunConfig(data=data, model=model_config_lib.ModelConfig())
  shuffled = dataclasses.replace(data, shuffle_buffer=1)
  config_lib.RunConfig(data=shuffled, model=model_config_lib.ModelConfig(), optim=optim)


@pytest.mark.parametrize(
  "optim, field, message",
  [
    (dict(embedding_optimizer="sgd"), "embedding_optimizer", "unknown 'sgd'; expected one of"),
    (
      dict(embedding_optimizer="adagrad", embedding_learning_rate=0.0),
      "embedding_learning_rate",
      "must be > 0, got 0.0",
    ),
    (
      dict(embedding_learning_rate=0.1),
      "embedding_learning_rate",
      "is only used with --embedding_optimizer=adagrad or ftrl",
    ),
    (
      dict(embedding_optimizer="ftrl", strategy="parameter_server"),
      "embedding_optimizer",
      "ftrl is not supported with --strategy=parameter_server",
    ),
  ],
)
def test_embedding_optimizer_errors_name_the_field(optim, field, message):
  with pytest.raises(config_lib.ConfigError, match=rf"^{field}: {message}") as e:
    config_lib.OptimConfig(**optim)
  assert e.value.field == field


@pytest.mark.parametrize("name", ["adagrad", "ftrl"])
def test_embedding_optimizer_round_trips_through_the_config_json(name):
  run = dataclasses.replace(
    _run(), optim=config_lib.OptimConfig(embedding_optimizer=name, embedding_learning_rate=0.2)
  )
  assert config_lib.RunConfig.from_dict(json.loads(run.to_json())) == run
  # Any strategy but parameter-server takes it.
  dataclasses.replace(run.optim, strategy="multi_worker")
