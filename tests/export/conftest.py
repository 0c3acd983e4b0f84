"""Fixtures of the export jobs' tests: simulated logs, a model directory, an export.

The model directory has the trainer's layout (config, schema, `Checkpoint(network=...)`) but
is written without training (the trainer's first step alone takes about a minute here); the
weights are the initial ones, which is enough to check that the jobs wire the parts together.
"""

import os

from absl import flags
import kaml_tf  # noqa: F401
import pytest
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.models import builder
from kaml_tf.models import config as model_config_lib
from kaml_tf.serving import exporter
from kaml_tf.datasets.simulation import simulator
from kaml_tf.training import config as config_lib
from kaml_tf.training import model_dir as model_dir_lib

SMALL_WORLD = dict(
  num_rows=60,
  num_users=40,
  num_ad_tasks=12,
  num_apps=10,
  num_advertisers=5,
  num_categories=4,
  num_slots=5,
  train_days=1,
  test_days=1,
)


@pytest.fixture(autouse=True)
def parsed_flags():
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


@pytest.fixture(scope="session")
def simulated_logs(tmp_path_factory):
  """A folder with simulated `schema.json`, `train-*` and `test-*` logs."""
  folder = str(tmp_path_factory.mktemp("simulated"))
  simulator.write_simulation(simulator.SimulationConfig(**SMALL_WORLD), folder)
  return folder


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, simulated_logs):
  """KAML's structure (MMoE + HKE), tiny, in the trainer's model directory layout."""
  path = str(tmp_path_factory.mktemp("model"))
  schema = schema_lib.Schema.load(os.path.join(simulated_logs, "schema.json"))
  config = model_config_lib.ModelConfig(
    backbone="mmoe",
    hke=True,
    embedding_dim=4,
    expert_units=(8,),
    num_experts=2,
    hke_sub_tower_units=(4,),
    hke_final_units=(4,),
    activation="tanh",
  )
  run_config = config_lib.RunConfig(
    data=config_lib.DataConfig(
      schema_path=os.path.join(simulated_logs, "schema.json"),
      train_files=os.path.join(simulated_logs, "train-*"),
      mask_policy="base",
    ),
    model=config,
  )
  model_dir_lib.prepare(path, run_config, schema)
  tf.keras.utils.set_random_seed(1)
  network = builder.build_model(schema, config)
  tf.train.CheckpointManager(
    tf.train.Checkpoint(network=network), os.path.join(path, "checkpoints"), max_to_keep=1
  ).save()
  return path


@pytest.fixture(scope="session")
def export_base(tmp_path_factory, model_dir):
  """An export base holding version 1 of `model_dir`."""
  base = str(tmp_path_factory.mktemp("serving"))
  exporter.export_model(model_dir, base, version=1)
  return base
