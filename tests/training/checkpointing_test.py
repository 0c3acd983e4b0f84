"""Strict restores of kaml_tf.training.checkpointing name the model directory on a mismatch.

A model directory whose schema.json (or config.json) no longer describes the network its
checkpoint holds, e.g. replaced by another data set's schema, must fail evaluation and export
with an error naming the directory, not only TF's variable-level message.
"""

import dataclasses
import gc
import os

from absl.testing import flagsaver
import numpy as np
import pytest
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.models import builder
from kaml_tf.models import config as model_config_lib
from kaml_tf.serving import exporter
from kaml_tf.training import checkpointing
from kaml_tf.training import config as config_lib
from kaml_tf.training import model_dir as model_dir_lib
from kaml_tf.training import optimizers
from kaml_tf.training import trained_model
from kaml_tf.training import trainer
from pipelines import evaluate

MODEL = model_config_lib.ModelConfig(
  expert_units=(8,), num_experts=2, tower_units=(4,), embedding_dim=4
)


def _model_dir(path, schema_file):
  """A model directory in the trainer's layout holding initial weights (no training needed)."""
  schema = schema_lib.Schema.load(schema_file)
  run_config = config_lib.RunConfig(
    data=config_lib.DataConfig(schema_path=schema_file, train_files="unused", mask_policy="base"),
    model=MODEL,
  )
  model_dir_lib.prepare(path, run_config, schema)
  tf.keras.utils.set_random_seed(0)
  manager = tf.train.CheckpointManager(
    tf.train.Checkpoint(network=builder.build_model(schema, MODEL)),
    os.path.join(path, model_dir_lib.CHECKPOINT_DIR),
    max_to_keep=1,
  )
  return schema, manager.save()


def test_restore_of_a_model_dir_whose_schema_was_replaced_names_the_dir(small_logs, tmp_path):
  model_dir = str(tmp_path / "model")
  schema, checkpoint = _model_dir(model_dir, small_logs["schema"])
  # Another schema's: one more hash bucket for the first sparse feature.
  first = schema.sparse_features[0]
  other = dataclasses.replace(
    schema,
    sparse_features=(dataclasses.replace(first, num_buckets=first.num_buckets + 1),)
    + schema.sparse_features[1:],
  )
  other.save(schema_lib.schema_path(model_dir))
  prefix = (
    f"{model_dir}: the checkpoint {checkpoint} does not match the network built from "
    "its config.json and schema.json"
  )
  shapes = (
    f"incompatible tensor with shape ({first.num_buckets}, 4) when attempting to "
    f"restore variable with shape ({first.num_buckets + 1}, 4)"
  )

  with pytest.raises(checkpointing.CheckpointMismatchError) as error:
    trained_model.load(model_dir)
  assert str(error.value).startswith(prefix) and shapes in str(error.value)
  assert error.value.model_dir == model_dir and error.value.checkpoint == checkpoint

  # The evaluation job fails with it before reading any test record.
  with flagsaver.flagsaver(
    model_dir=model_dir,
    test=small_logs["test"],
    output=str(tmp_path / "metrics.json"),
    oracle=False,
    base_metrics="",
  ):
    with pytest.raises(checkpointing.CheckpointMismatchError, match="^" + model_dir):
      evaluate.main([])
  assert not os.path.exists(tmp_path / "metrics.json")

  # Export keeps its own error type and says what it refuses, once.
  with pytest.raises(exporter.ExportError) as export_error:
    exporter.export_model(model_dir, str(tmp_path / "serving"), version=1)
  message = str(export_error.value)
  assert message.startswith(
    f"{model_dir}: the checkpoint does not match the network built "
    "from its config.json, refusing to export a partly restored model"
  )
  assert shapes in message and message.count(model_dir) == 1
  assert not os.path.exists(tmp_path / "serving")
  # The failed restores' checkpoints report their unused values when collected: let that
  # happen now, while logs are captured, not at interpreter exit.
  del error, export_error
  gc.collect()


def test_restore_into_a_network_with_more_variables_names_the_dir(small_logs, tmp_path):
  model_dir = str(tmp_path / "model")
  schema, checkpoint = _model_dir(model_dir, small_logs["schema"])
  # One more tower layer, of the same width: the other variables keep their shapes.
  bigger = builder.build_model(schema, dataclasses.replace(MODEL, tower_units=(4, 4)))
  with pytest.raises(
    checkpointing.CheckpointMismatchError, match=r"not bound to checkpointed values"
  ) as error:
    checkpointing.restore_network(bigger, model_dir)
  assert str(error.value).startswith(f"{model_dir}: the checkpoint {checkpoint} does not match")
  del error
  gc.collect()


def _checkpointed(path, prefix):
  """The values saved under `prefix/` in the checkpoint `path`, by key without the prefix."""
  return {
    key[len(prefix) + 1 :]: tf.train.load_variable(path, key)
    for key, _ in tf.train.list_variables(path)
    if key.startswith(prefix + "/_variables/")
  }


def test_resume_restores_both_optimizers_slots(adagrad_trained):
  model_dir, run_config = adagrad_trained["model_dir"], adagrad_trained["config"]
  schema = schema_lib.Schema.load(run_config.data.schema_path)
  task = trainer.build_task(schema, run_config)
  state = checkpointing.CheckpointState(
    task.network,
    task.optimizer,
    os.path.join(model_dir, model_dir_lib.CHECKPOINT_DIR),
    embedding_optimizer=task.embedding_optimizer,
  )
  path = state.restore_latest()
  assert int(state.global_step) == 2
  for prefix, optimizer in (
    ("embedding_optimizer", task.embedding_optimizer),
    ("optimizer", task.optimizer),
  ):
    saved = _checkpointed(path, prefix)
    # Adagrad: one accumulator per table; Adam: m and v of each other variable.
    assert len(saved) == len(optimizer.variables()) - 1
    restored = [v.numpy() for v in optimizer.variables()[1:]]
    for i, value in enumerate(restored, start=1):
      np.testing.assert_array_equal(value, saved[f"_variables/{i}/.ATTRIBUTES/VARIABLE_VALUE"])
  # The accumulators trained: rows looked up grew beyond Keras' initial 0.1.
  accumulators = task.embedding_optimizer.variables()[1:]
  assert all(np.max(a.numpy()) > 0.1 for a in accumulators)
  tables = optimizers.embedding_tables(task.network)
  assert [a.shape for a in accumulators] == [t.shape for t in tables]
