"""Warm start: a new run begins from another run's trained network (the daily retrain).

`OptimConfig.warm_start_from` names a finished model directory (yesterday's production model).
A fresh run restores that directory's network from its best checkpoint (`best/`, kept by early
stopping), or its latest one when it kept no best, then trains on its own `--train` logs only.
Progress counters, early-stopping state and calibration start afresh: the new run is a new run.

What must match, checked before the new model directory is written:

* the schema (its fingerprint): the same features, vocabularies, bucket counts and actions,
  so every embedding table has the same rows. With hashed ids, an id first seen today simply
  lands in its bucket, whose row already trained on the ids hashed there before. With a
  vocabulary, ids outside it share the out-of-vocabulary row; adding ids to a vocabulary
  changes the schema, so such a model cannot be warm-started (train it from scratch);
* the model config (backbone, towers, HKE, widths): the network's variables, one to one.

With `warm_start_optimizer` the optimizer's state (Adam's moments and step count, and the
embedding tables' optimizer's accumulators when the run has one) comes along too, from a
source trained with the same `embedding_optimizer` (another is refused). The best checkpoint holds the network only, so it is read from the training checkpoint
saved at the same global step (each validation saves one), if `keep_checkpoints` still keeps
it. Without it the optimizer starts fresh; a fresh Adam's first steps are full-sized, which is
the usual choice when the new day's data differ from the old.

A run that already has checkpoints of its own resumes from them and ignores the warm start, so
a killed warm-started job reruns to the same result.
"""

import os
from typing import Optional

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.training import config as config_lib
from kaml_tf.training import early_stopping
from kaml_tf.training import checkpointing
from kaml_tf.training import model_dir as model_dir_lib

_GLOBAL_STEP_KEY = "global_step/.ATTRIBUTES/VARIABLE_VALUE"


def _error(detail: str) -> config_lib.ConfigError:
  return config_lib.ConfigError.of(config_lib.OptimConfig, "warm_start_from", detail)


def source_checkpoint(run_config: config_lib.RunConfig, schema: schema_lib.Schema) -> str:
  """Checks the warm-start directory against this run; returns the checkpoint to restore.

  Args:
    run_config: This run's config, with `optim.warm_start_from` set.
    schema: This run's schema.

  Returns:
    The checkpoint prefix holding the network (and, with `warm_start_optimizer`, the
    optimizer) to start from.

  Raises:
    config_lib.ConfigError: naming --warm_start_from, if the directory is not a trained model
      directory, was trained on another schema or model config, or lacks the optimizer state
      asked for.
  """
  source = run_config.optim.warm_start_from
  try:
    old_config = config_lib.RunConfig.load(source)
    old_schema = schema_lib.Schema.load(schema_lib.schema_path(source))
  except (FileNotFoundError, schema_lib.SchemaError) as e:
    raise _error(f"{source} is not a trained model directory: {e}") from None
  if old_schema.fingerprint() != schema.fingerprint():
    raise _error(
      f"{source} was trained on schema {old_schema.fingerprint()} but this run's "
      f"{run_config.data.schema_path} is {schema.fingerprint()}; a warm start needs the same "
      "features, vocabularies and actions (train from scratch on a new schema)"
    )
  diffs = model_dir_lib.config_differences(old_config.model.to_dict(), run_config.model.to_dict())
  if diffs:
    raise _error(
      f"{source} has another model architecture, so its weights do not fit: {'; '.join(diffs)}"
    )
  best = early_stopping.read_best(source)
  latest = tf.train.latest_checkpoint(os.path.join(source, model_dir_lib.CHECKPOINT_DIR))
  if best is None and latest is None:
    raise _error(f"{source} has no checkpoint; train it first")
  if not run_config.optim.warm_start_optimizer:
    return os.path.join(source, best["checkpoint"]) if best else latest
  _check_same_optimizers(old_config.optim, run_config.optim, source)
  if best is None:
    return latest
  path = _training_checkpoint_at(source, int(best["global_step"]))
  if path is None:
    raise _error(
      f"--warm_start_optimizer: {source}'s best network is from global step "
      f"{best['global_step']}, and the training checkpoint of that step (which holds the "
      "optimizer state) is no longer kept (see --keep_checkpoints); warm-start the network "
      "alone"
    )
  return path


def _check_same_optimizers(
  old: config_lib.OptimConfig, new: config_lib.OptimConfig, source: str
) -> None:
  """--warm_start_optimizer needs the source's optimizers: the same embedding optimizer."""
  if old.embedding_optimizer != new.embedding_optimizer:
    raise config_lib.ConfigError.of(
      config_lib.OptimConfig,
      "warm_start_optimizer",
      f"{source} trained its embedding tables with --embedding_optimizer="
      f"{old.embedding_optimizer} and this run with {new.embedding_optimizer}, so its "
      "optimizer state does not fit this run's optimizers; warm-start the network alone, or "
      f"train with --embedding_optimizer={old.embedding_optimizer}",
    )


def _training_checkpoint_at(model_dir: str, global_step: int) -> Optional[str]:
  """The kept training checkpoint of `model_dir` saved at `global_step`, or None."""
  state = tf.train.get_checkpoint_state(os.path.join(model_dir, model_dir_lib.CHECKPOINT_DIR))
  for path in state.all_model_checkpoint_paths if state else ():
    if int(tf.train.load_variable(path, _GLOBAL_STEP_KEY)) == global_step:
      return path
  return None


def restore(
  network: tf.keras.Model,
  optimizer: Optional[tf.keras.optimizers.Optimizer],
  path: str,
  embedding_optimizer: Optional[tf.keras.optimizers.Optimizer] = None,
) -> None:
  """Restores `network` (every variable, strictly) and, if given, the optimizers from `path`.

  The optimizer's slot variables do not exist before its first step; their restore is
  deferred until then (as when a run resumes).

  Raises:
    config_lib.ConfigError: naming --warm_start_from, if a network variable is missing from
      the checkpoint or has another shape there.
  """
  objects = {"network": network}
  if optimizer is not None:
    objects["optimizer"] = optimizer
  objects.update(checkpointing.optional_optimizer(embedding_optimizer))
  try:
    tf.train.Checkpoint(**objects).restore(path).assert_existing_objects_matched().expect_partial()
  except (AssertionError, ValueError) as e:
    raise _error(f"the checkpoint {path} does not fit this run's network: {e}") from e
