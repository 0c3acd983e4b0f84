"""Shared fixtures of the serving tests: tiny model directories, real log records, an export.

A model directory is made without the trainer: config and schema via
`model_dir.prepare`, a network from `build_model`, two SGD steps on random labels and HKE
indicators (so no weight is at its initial value and both HKE sub-towers matter), and a
checkpoint `Checkpoint(network=...)` like the trainer's.
"""

import collections
import os
import types

import kaml_tf  # noqa: F401
import numpy as np
import pytest
import tensorflow as tf

from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.models import builder
from kaml_tf.models import config as model_config_lib
from kaml_tf.serving import exporter
from kaml_tf.training import config as config_lib
from kaml_tf.training import model_dir as model_dir_lib

# Every input dtype: hashed int64 ids, a string vocabulary (with an out-of-vocabulary value in
# the records), an int64 vocabulary on the key field ad_task_id, and a dense float.
SCHEMA = schema_lib.Schema(
  actions=("install", "register", "pay"),
  sparse_features=(
    schema_lib.SparseFeature("user_id", num_buckets=50, embedding_dim=4),
    schema_lib.SparseFeature(
      "city", dtype="string", vocabulary=("paris", "rome", "oslo"), embedding_dim=3
    ),
    schema_lib.SparseFeature("ad_task_id", vocabulary=(10, 11, 12, 13), embedding_dim=3),
  ),
  dense_features=(schema_lib.DenseFeature("bid", mean=1.0, std=2.0),),
)
NUM_RECORDS = 12
# SCHEMA plus two multi-valued features: string tags with a vocabulary (mean) and hashed int64
# app ids (sqrtn).
MV_SCHEMA = schema_lib.Schema(
  actions=SCHEMA.actions,
  sparse_features=SCHEMA.sparse_features
  + (
    schema_lib.SparseFeature(
      "tags", dtype="string", vocabulary=("a", "b", "c"), embedding_dim=3, max_values=3
    ),
    schema_lib.SparseFeature(
      "apps", num_buckets=20, embedding_dim=2, max_values=2, combiner="sqrtn"
    ),
  ),
  dense_features=SCHEMA.dense_features,
)

Export = collections.namedtuple("Export", ["model_dir", "export_base", "path"])


def model_config(backbone: str = "mmoe", hke: bool = True) -> model_config_lib.ModelConfig:
  # tanh: with ReLU, units this narrow are often dead and an action's logit constant.
  return model_config_lib.ModelConfig(
    backbone=backbone,
    hke=hke,
    activation="tanh",
    expert_units=(6,),
    num_experts=2,
    bottom_units=(6,),
    star_units=(6,),
    tower_units=(4,),
    hke_sub_tower_units=(4,),
    hke_final_units=(3,),
  )


def log_columns(n: int = NUM_RECORDS, seed: int = 0):
  """`n` log rows of SCHEMA; targets cycle over the actions."""
  rng = np.random.default_rng(seed)
  cities = np.array(["paris", "rome", "oslo", "lima"], dtype=object)
  columns = {
    schema_lib.AD_TASK_ID: rng.integers(10, 15, n),  # 14 is out of vocabulary.
    schema_lib.TARGET_ACTION: np.arange(n, dtype=np.int64) % SCHEMA.num_actions,
    schema_lib.DAY: np.zeros(n, np.int64),
    "user_id": rng.integers(0, 1000, n),
    "city": cities[rng.integers(0, 4, n)],
    "bid": rng.normal(1.0, 2.0, n).astype(np.float32),
  }
  for k in SCHEMA.label_keys:
    columns[k] = rng.integers(0, 2, n)
  return columns


def mv_log_columns(n: int = NUM_RECORDS, seed: int = 0):
  """`n` log rows of MV_SCHEMA, the lists padded: 0 to 3 tags ("z" out of vocabulary), 0 to 2
  app ids."""
  columns = log_columns(n, seed)
  rng = np.random.default_rng(seed + 100)
  tags = np.full((n, 3), "", dtype=object)
  apps = np.full((n, 2), -1, np.int64)
  for i in range(n):
    count = i % 4  # Every length, the empty list included.
    tags[i, :count] = rng.choice(["a", "b", "c", "z"], count)
    apps[i, : count % 3] = rng.integers(0, 1000, count % 3)
  columns["tags"], columns["apps"] = tags, apps
  return columns


def features_of(columns, schema=SCHEMA):
  """The model features of log columns as tensors."""
  dtypes = schema.record_dtypes()
  return {k: tf.constant(np.asarray(columns[k]), dtype=dtypes[k]) for k in schema.feature_names}


def make_model_dir(
  path: str, backbone: str = "mmoe", hke: bool = True, seed: int = 0, schema=SCHEMA
) -> tf.keras.Model:
  """Writes a model directory with a non-trivial checkpoint; returns the network saved.

  `schema` is SCHEMA or MV_SCHEMA."""
  config = model_config(backbone, hke)
  run_config = config_lib.RunConfig(
    data=config_lib.DataConfig(
      schema_path=os.path.join(path, "schema.json"),
      train_files=os.path.join(path, "unused-*"),
      mask_policy="base",
    ),
    model=config,
  )
  model_dir_lib.prepare(path, run_config, schema)
  tf.keras.utils.set_random_seed(seed)
  network = builder.build_model(schema, config)
  columns = (mv_log_columns if schema is MV_SCHEMA else log_columns)(16, seed=seed + 1)
  inputs = features_of(columns, schema)
  rng = np.random.default_rng(seed)
  n, k = 16, schema.num_actions
  if hke:
    inputs[builder.HKE_INDICATOR] = tf.constant(rng.integers(0, 2, (n, k)), tf.float32)
  labels = tf.constant(rng.integers(0, 2, (n, k)), tf.float32)
  optimizer = tf.keras.optimizers.SGD(learning_rate=0.5)
  for _ in range(2):
    with tf.GradientTape() as tape:
      logits = network(inputs, training=True)
      loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels, logits))
      loss += tf.add_n(network.losses) if network.losses else 0.0
    grads = tape.gradient(loss, network.trainable_variables)
    optimizer.apply_gradients(
      (g, v) for g, v in zip(grads, network.trainable_variables) if g is not None
    )
  manager = tf.train.CheckpointManager(
    tf.train.Checkpoint(network=network), os.path.join(path, "checkpoints"), max_to_keep=1
  )
  manager.save()
  return network


@pytest.fixture(scope="session")
def kit():
  """The helpers above, for test modules (a conftest is not importable by name)."""
  return types.SimpleNamespace(
    schema=SCHEMA,
    mv_schema=MV_SCHEMA,
    model_config=model_config,
    log_columns=log_columns,
    mv_log_columns=mv_log_columns,
    features_of=features_of,
    make_model_dir=make_model_dir,
  )


@pytest.fixture(scope="session")
def log_files(tmp_path_factory):
  """(glob, columns as read back) of NUM_RECORDS real TFRecord log records of SCHEMA."""
  folder = tmp_path_factory.mktemp("logs")
  SCHEMA.save(str(folder / "schema.json"))
  records.write_logs(SCHEMA, str(folder / "test"), log_columns(), num_shards=2, batch_rows=5)
  pattern = str(folder / "test-*")
  return pattern, records.read_columns(pattern, SCHEMA)


@pytest.fixture(scope="session")
def hke_model_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("model_mmoe_hke"))
  make_model_dir(path, "mmoe", hke=True)
  return path


@pytest.fixture(scope="session")
def exported(tmp_path_factory, hke_model_dir):
  """Version 1 of the MMoE + HKE model under its own export base."""
  base = str(tmp_path_factory.mktemp("serving"))
  path = exporter.export_model(hke_model_dir, base, version=1)
  return Export(model_dir=hke_model_dir, export_base=base, path=path)


@pytest.fixture(scope="session")
def mv_model_dir(tmp_path_factory):
  """MMoE + HKE on MV_SCHEMA (multi-valued tags and apps)."""
  path = str(tmp_path_factory.mktemp("model_mv"))
  make_model_dir(path, "mmoe", hke=True, schema=MV_SCHEMA)
  return path


@pytest.fixture(scope="session")
def mv_exported(tmp_path_factory, mv_model_dir):
  """Version 1 of the multi-valued model under its own export base."""
  base = str(tmp_path_factory.mktemp("serving_mv"))
  path = exporter.export_model(mv_model_dir, base, version=1)
  return Export(model_dir=mv_model_dir, export_base=base, path=path)
