"""The model directory: one training run's config, schema, checkpoints and logs.

Layout:
  MODEL_DIR/config.json      the resolved `RunConfig` (written once, compared on every rerun)
  MODEL_DIR/schema.json      the schema the model was trained on (export reads it)
  MODEL_DIR/checkpoints/     `tf.train.CheckpointManager` checkpoints
  MODEL_DIR/logs/            TensorBoard event files (`validation/`: the validation metrics)
  MODEL_DIR/best/            the best checkpoint on validation (`early_stopping`), if validated
  MODEL_DIR/train_summary.json  final metrics of the last completed run
  MODEL_DIR/.lock            held (flock) while a job trains here

A rerun with the same config resumes; a different config or schema, or a second job while one
holds the lock, fails with a clear message instead of mixing checkpoints. `check_logs_schema`
refuses logs of another schema to the jobs that read logs with a trained model's schema.
"""

import json
import os
from typing import Any, Dict, List, Sequence, Union

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf import file_lock
from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.training import config as config_lib

CHECKPOINT_DIR = "checkpoints"
LOG_DIR = "logs"
SUMMARY_FILE = "train_summary.json"
LOCK_FILE = ".lock"
# Fields that may differ between a run and its resumption: more epochs extend a run, a run
# stopped by a malformed record may resume with --skip_bad_records, reader threads do not
# change the order of the records, and --calibrate added to a finished run calibrates it
# without training again.
_RESUMABLE_FIELDS = {
  ("optim", "epochs"),
  ("data", "skip_bad_records"),
  ("data", "parallel_reads"),
  ("optim", "calibrate"),
}


class ModelDirError(RuntimeError):
  """The model directory is in use, or holds a run with a different configuration."""


def config_differences(old: Dict[str, Any], new: Dict[str, Any], prefix=()) -> List[str]:
  """`path: old -> new` for every nested setting that differs (resumable ones aside)."""
  diffs = []
  for key in sorted(set(old) | set(new)):
    path = prefix + (key,)
    a, b = old.get(key), new.get(key)
    if isinstance(a, dict) and isinstance(b, dict):
      diffs.extend(config_differences(a, b, path))
    elif a != b and path not in _RESUMABLE_FIELDS:
      diffs.append(f"{'.'.join(path)}: {a!r} -> {b!r}")
  return diffs


def prepare(
  model_dir: str, run_config: config_lib.RunConfig, schema: schema_lib.Schema, write: bool = True
) -> None:
  """Writes config and schema for a new run, or checks they match the existing run.

  Args:
    model_dir: The model directory (created if missing).
    run_config: The resolved configuration of this run.
    schema: The schema of the training logs.
    write: False on non-chief workers: check only, write nothing.

  Raises:
    ModelDirError: if the directory holds a run with another config or schema.
  """
  config_path = os.path.join(model_dir, config_lib.CONFIG_FILE)
  if os.path.exists(config_path):
    # The schema first: logs of another schema usually come with another --schema path too,
    # and "trained on another schema" says more than a config difference in that path.
    existing = schema_lib.Schema.load(schema_lib.schema_path(model_dir))
    if existing.fingerprint() != schema.fingerprint():
      raise ModelDirError(
        f"{model_dir} was trained on schema {existing.fingerprint()} (actions "
        f"{list(existing.actions)}) but the logs' schema {run_config.data.schema_path} is "
        f"{schema.fingerprint()} (actions {list(schema.actions)}); refusing to mix "
        "checkpoints. Use a new --model_dir"
      )
    with open(config_path, encoding="utf-8") as f:
      # Read through RunConfig, so that fields added since that run compare as their defaults.
      old = json.loads(config_lib.RunConfig.from_dict(json.load(f)).to_json())
    diffs = config_differences(old, json.loads(run_config.to_json()))
    if diffs:
      raise ModelDirError(
        f"{model_dir} holds a training run with a different configuration; refusing to mix "
        f"checkpoints. Use a new --model_dir, or rerun with the original flags. "
        f"Differences: {'; '.join(diffs)}"
      )
  elif write:
    os.makedirs(model_dir, exist_ok=True)
    schema.save(schema_lib.schema_path(model_dir))
    run_config.save(model_dir)


def check_logs_schema(
  model_dir: str,
  schema: schema_lib.Schema,
  files: Union[str, Sequence[str]],
  what: str = "the logs'",
) -> None:
  """Refuses logs whose folder's schema.json is another schema than the model's.

  For the jobs that read logs with a trained model's schema (export's warm-up records, the
  evaluation job's test records). Logs of another schema often parse anyway (the same field
  names with other vocabularies, hash buckets or dense moments) and would be scored silently
  by the wrong model; the `schema.json` the data jobs write beside the logs tells them apart.
  Logs without one are not checked.

  Args:
    model_dir: The model directory (named in the error).
    schema: The schema the model was trained on (its schema.json).
    files: The logs (glob, comma-separated globs or list); the first file's folder is looked
      at.
    what: Whose schema, for the message ("the warm-up records'").

  Raises:
    ModelDirError: naming `model_dir` and both fingerprints.
    FileNotFoundError: if no file matches.
  """
  # gfile: logs may be on GCS or HDFS, like the other jobs' inputs.
  beside = schema_lib.schema_path(os.path.dirname(records.list_files(files)[0]))
  if not tf.io.gfile.exists(beside):
    return
  logs = schema_lib.Schema.load(beside)
  if logs.fingerprint() != schema.fingerprint():
    raise ModelDirError(
      f"{model_dir} was trained on schema {schema.fingerprint()} but {what} schema "
      f"{beside} is {logs.fingerprint()}; use logs of the model's own schema"
    )


class DirectoryLock(file_lock.FileLock):
  """`file_lock.FileLock` on MODEL_DIR/.lock, holding the trainer's pid for the next one."""

  def __init__(self, model_dir: str):
    super().__init__(os.path.join(model_dir, LOCK_FILE), self._refusal, write_pid=True)

  def _refusal(self, holder: str) -> ModelDirError:
    return ModelDirError(
      f"{os.path.dirname(self.path)} is in use by a training job "
      f"({holder or 'another process'}); wait for it to finish or use another --model_dir"
    )
