"""Export: strict restore of a trained model, then an atomic, versioned SavedModel.

The layout is the one TF Serving watches (it serves the highest numeric version):

  EXPORT_BASE/<version>/saved_model.pb, variables/      the signatures of `module`
  EXPORT_BASE/<version>/assets/schema.json              the schema the model was trained on
  EXPORT_BASE/<version>/assets/actions.txt              action names, line j = action j
  EXPORT_BASE/<version>/assets/calibration.json         the Platt scaling the signatures apply
                                                        (only when the model is calibrated)
  EXPORT_BASE/<version>/assets.extra/checkpoint.json      the checkpoint exported (relative to
                                                          its model directory, and absolute)
  EXPORT_BASE/<version>/assets.extra/tf_serving_warmup_requests   (only when asked for)

The signatures (`module`): `serving_default`, `predict_all`, `serve_examples` and `regress`.
`regress` is there because this model fits TF Serving's Regress API: one string input
`inputs` (serialized Examples, which hold `target_action`) and one float output `outputs` of
shape (batch,), here each row's target-action cvr; TF2 SavedModels carry the predict method
name, which TF Serving accepts for Regress unless `--enable_signature_method_name_check` is on
(off by default). Classify is not offered: it returns scores per class label from a fixed
label set, while this model's one score per row depends on the row's own target action, i.e.
a regression of the cvr, not a classification over actions. A bad row (target outside
[0, N), NaN or infinite dense input, Example without `target_action` or with a bad
multi-valued list) gets `valid = False` and
documented fill values instead of failing the batch; `strict=True` keeps the earlier
behaviour, an error for the whole call.

Filesystems. `EXPORT_BASE` may be a local path or any `tf.io.gfile` URL: `ram://` (TF's
in-memory filesystem, for tests), `gs://` (pinned tensorflow-io-gcs-filesystem), `s3://` and
`hdfs://` (tensorflow-io, the `kaml-tf[io]` extra; a clear ImportError without it). Every
write goes through `tf.io.gfile` (`kaml_tf.atomic.atomic_directory`). A version is first
written into a hidden sibling folder, `EXPORT_BASE/.<version>.tmp-<random>/`, which TF Serving
ignores: it only loads children whose names parse as integers
(`file_system_storage_path_source.cc`), and `client.list_versions` does the same. Then:

* on the local disk and HDFS, one atomic rename makes `EXPORT_BASE/<version>/` appear
  complete, so a killed export leaves no partial version;
* on object stores (`gs://`, `s3://`) and `ram://`, which cannot rename a folder at once, the
  finished folder is copied to `EXPORT_BASE/<version>/` with `saved_model.pb` copied last,
  then the hidden folder is deleted. While the copy runs, TF Serving may list the new version
  and try to load it: the attempt fails for want of `saved_model.pb` and TF Serving retries
  (`--max_num_load_retries=5`, `--load_retry_interval_micros` = one minute by default); once
  `saved_model.pb` is there, every file it refers to is already complete (each object
  appears whole when its upload ends), so the next attempt loads the whole version. A
  killed copy leaves a folder without `saved_model.pb` (deleted on an ordinary failure),
  which TF Serving never loads; delete it before exporting that version again. A killed
  export can also leave the hidden folder behind; TF Serving ignores it.

The default version is the current Unix time, bumped past the newest existing version if the
clock says otherwise, so a new export is always the one served.

The warm-up file (TF Serving replays its `PredictionLog`s before a version goes live, so the
first real request does not pay for graph initialisation) holds one request per signature
and batch size (`WARMUP_BATCH_SIZES`: 1 and a typical 64), built from log records; a
multi-valued feature goes in padded to `(batch, max_values)` for `serving_default` and
`predict_all`, and as each record's list (var-len) in the Examples. It needs
the `tensorflow-serving-api` package: asking for warm-up without it fails with an
`ImportError` saying what to install.
"""

import json
import os
import tempfile
import time
from typing import Dict, Mapping, Optional, Sequence, Union

from absl import logging
import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import numpy as np
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.calibration import platt
from kaml_tf import atomic
from kaml_tf.models import builder
from kaml_tf.serving import client
from kaml_tf.serving import module as module_lib
from kaml_tf.training import checkpointing
from kaml_tf.training import config as config_lib
from kaml_tf.training import model_dir as model_dir_lib
from kaml_tf.training import trained_model as trained_model_lib

DEFAULT_MODEL_NAME = "kaml"
ASSETS_EXTRA_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"
CHECKPOINT_FILE = "checkpoint.json"
SERVING_API_REQUIREMENT = "tensorflow-serving-api==2.16.1"
WARMUP_BATCH_SIZES = (1, 64)
# TF Serving loads a version once this file is there, so it is published last.
SAVED_MODEL_FILE = "saved_model.pb"


class ExportError(RuntimeError):
  """The model directory cannot be exported as it is; the message says why."""


def default_version(export_base: str) -> int:
  """The current Unix time, or one more than the newest version if that is not newer."""
  latest = client.latest_version(export_base)
  now = int(time.time())
  return now if latest is None or now > latest else latest + 1


def load_strict(
  model_dir: str, checkpoint: str = trained_model_lib.BEST
) -> trained_model_lib.TrainedModel:
  """Rebuilds the network of `model_dir` and restores every one of its variables.

  The model's calibration is `calibration.json` when that was fitted for the restored
  checkpoint (`kaml_tf.calibration.platt.for_checkpoint`).

  Args:
    model_dir: The model directory.
    checkpoint: `best` (the best checkpoint if the run kept one, else the latest) or `latest`.

  Raises:
    FileNotFoundError: if `model_dir` has no config, schema or checkpoint.
    ExportError: if the checkpoint does not match the network the saved config builds.
    platt.CalibrationError: if `calibration.json` is malformed or of other actions.
  """
  # `trained_model.load`'s steps, so that only the restore's errors are reported as a
  # mismatch (a malformed config or schema raises its own, clearer error).
  run_config = config_lib.RunConfig.load(model_dir)
  schema = schema_lib.Schema.load(schema_lib.schema_path(model_dir))
  network = builder.build_model(schema, run_config.model)
  try:
    path = checkpointing.restore_network(
      network, model_dir, path=trained_model_lib.checkpoint_path(model_dir, checkpoint)
    )
  except checkpointing.CheckpointMismatchError as e:
    raise ExportError(
      f"{model_dir}: the checkpoint does not match the network built from "
      f"its config.json, refusing to export a partly restored model: "
      f"{e.detail}"
    ) from e
  return trained_model_lib.TrainedModel(
    schema=schema,
    run_config=run_config,
    network=network,
    checkpoint=os.path.abspath(path),
    checkpoint_name=os.path.relpath(path, model_dir),
    calibration=platt.for_checkpoint(model_dir, schema.actions, path),
  )


def export_model(
  model_dir: str,
  export_base: str,
  version: Optional[int] = None,
  *,
  warmup_files: Union[str, Sequence[str], None] = None,
  num_warmup_records: int = 10,
  model_name: str = DEFAULT_MODEL_NAME,
  checkpoint: str = trained_model_lib.BEST,
  strict: bool = False,
) -> str:
  """Exports the model trained in `model_dir` as `export_base/<version>/`.

  Args:
    model_dir: A model directory written by the trainer (config, schema, checkpoints).
    export_base: The folder TF Serving watches (a local path or a `tf.io.gfile` URL); created
      if missing.
    version: The version number; default `default_version(export_base)`.
    warmup_files: Log files (glob(s)) whose first records become the TF Serving warm-up
      requests; None writes no warm-up file. If the folder of the first file holds a
      `schema.json` (as the simulation and KuaiRand jobs write), it must be the model's.
    num_warmup_records: Warm-up requests (one record each) to write.
    model_name: The model name in the warm-up requests.
    checkpoint: `best` (the best checkpoint if the run kept one, else the latest) or
      `latest`; the one used is recorded in `assets.extra/checkpoint.json`.
    strict: A bad row fails the whole call instead of getting `valid = False` (`module`).

  Returns:
    The path of the new version folder.

  Raises:
    ExportError: if the checkpoint does not match the network.
    ModelDirError: if the warm-up logs are of another schema.
    FileExistsError: if the version already exists.
    ImportError: if warm-up is asked for without `tensorflow-serving-api`, or the export
      base's filesystem needs tensorflow-io and it is not installed.
  """
  _check_version(version)
  atomic.ensure_filesystem(export_base)  # Fail before any work.
  model = load_strict(model_dir, checkpoint)
  logging.info("restored %s from %s", model.network.name, model.checkpoint)
  warmup = None
  if warmup_files:
    _serving_apis()  # Fail before any work, not after the SavedModel is written.
    model_dir_lib.check_logs_schema(model_dir, model.schema, warmup_files, "the warm-up records'")
    warmup = client.read_records(
      warmup_files, model.schema, num_warmup_records, valid_targets_only=True
    )
  return export_trained(
    model, export_base, version, warmup_columns=warmup, model_name=model_name, strict=strict
  )


def export_trained(
  model: trained_model_lib.TrainedModel,
  export_base: str,
  version: Optional[int] = None,
  warmup_columns: Optional[Mapping[str, np.ndarray]] = None,
  model_name: str = DEFAULT_MODEL_NAME,
  strict: bool = False,
) -> str:
  """Writes the SavedModel of an already restored model (see `export_model`).

  Args:
    model: The restored network and its schema.
    export_base: The folder TF Serving watches (a local path or a `tf.io.gfile` URL).
    version: The version number; default `default_version(export_base)`.
    warmup_columns: Records `{field: (n,)}` (`(n, max_values)` padded for a multi-valued
      feature) with the features and `target_action` to write as warm-up requests (every
      target in [0, N), dense values finite), or None.
    model_name: The model name in the warm-up requests.
    strict: A bad row fails the whole call instead of getting `valid = False`.

  Returns:
    The path of the new version folder.
  """
  _check_version(version)
  if version is None:
    version = default_version(export_base)
  if warmup_columns is not None:
    _serving_apis()
  path = os.path.join(export_base, str(int(version)))
  with tempfile.TemporaryDirectory(prefix="kaml-export-assets-") as staging:
    schema_file = os.path.join(staging, module_lib.SCHEMA_ASSET)
    actions_file = os.path.join(staging, module_lib.ACTIONS_ASSET)
    model.schema.save(schema_file)
    atomic.write_text(actions_file, "".join(a + "\n" for a in model.schema.actions))
    assets = [schema_file, actions_file]
    if model.calibration is not None:
      assets.append(os.path.join(staging, module_lib.CALIBRATION_ASSET))
      model.calibration.write(assets[-1])
    serving = module_lib.ServingModule(model, asset_paths=assets, strict=strict)
    with atomic.atomic_directory(path, commit_last=(SAVED_MODEL_FILE,)) as tmp:
      tf.saved_model.save(serving, tmp, signatures=serving.signatures())
      extra = os.path.join(tmp, ASSETS_EXTRA_DIR)
      tf.io.gfile.makedirs(extra)
      # Which checkpoint this version serves (the best or the latest of its model directory).
      # No atomic write needed: the whole folder is published at once.
      with tf.io.gfile.GFile(os.path.join(extra, CHECKPOINT_FILE), "w") as f:
        f.write(
          json.dumps({"checkpoint": model.checkpoint_name, "path": model.checkpoint}, indent=2)
          + "\n"
        )
      if warmup_columns is not None:
        write_warmup_requests(
          os.path.join(extra, WARMUP_FILE), model.schema, warmup_columns, model_name
        )
  logging.info("exported version %s to %s", version, path)
  return path


def _check_version(version) -> None:
  if version is not None and (
    isinstance(version, bool) or not isinstance(version, (int, np.integer)) or version < 0
  ):
    raise ValueError(
      f"version: must be an integer >= 0 (TF Serving's version folders), got {version!r}"
    )


def _serving_apis():
  """The `tensorflow_serving.apis` modules, or an ImportError saying what to install."""
  try:
    # pylint: disable=g-import-not-at-top
    from tensorflow_serving.apis import model_pb2
    from tensorflow_serving.apis import predict_pb2
    from tensorflow_serving.apis import prediction_log_pb2
  except ImportError as e:
    raise ImportError(
      f"writing the TF Serving warm-up file needs the protos of {SERVING_API_REQUIREMENT} "
      f"(`pip install {SERVING_API_REQUIREMENT}`; it is not a pinned requirement of "
      f"kaml-tf): {e}"
    ) from e
  return model_pb2, predict_pb2, prediction_log_pb2


def write_warmup_requests(
  path: str,
  schema: schema_lib.Schema,
  columns: Mapping[str, np.ndarray],
  model_name: str = DEFAULT_MODEL_NAME,
  batch_sizes: Sequence[int] = WARMUP_BATCH_SIZES,
) -> int:
  """Writes TF Serving's warm-up file: every signature at every batch size.

  For each signature of `module.SIGNATURE_NAMES` (in that order) and each batch size b, one
  `PredictionLog` whose `PredictRequest` holds b rows: the records in order, repeated when
  there are fewer than b (`serve_examples` and `regress` get them as serialized Examples).

  Args:
    path: The output TFRecord file (`assets.extra/tf_serving_warmup_requests`), any
      `tf.io.gfile` path.
    schema: The schema (which columns are inputs, and N).
    columns: `{field: (n,)}` holding every feature and `target_action`, `(n, max_values)`
      ids padded with the pad value for a multi-valued feature; extra fields are ignored.
    model_name: `model_spec.name` of the requests.
    batch_sizes: Rows per request.

  Returns:
    The number of requests written: signatures x batch sizes.

  Raises:
    ImportError: without `tensorflow-serving-api`.
    ValueError: if there is no record, a target is outside [0, N) or a dense value is not
      finite (TF Serving refuses to load a version whose warm-up request fails, as it would
      in a strict export), a multi-valued column is not `(n, max_values)`, or a batch size
      is not positive.
  """
  model_pb2, predict_pb2, prediction_log_pb2 = _serving_apis()
  names = list(schema.feature_names) + [module_lib.TARGET_INPUT]
  missing = [k for k in names if k not in columns]
  if missing:
    raise ValueError(f"warm-up records lack the input(s) {missing}")
  if not batch_sizes or any(int(b) < 1 for b in batch_sizes):
    raise ValueError(f"batch_sizes: expected positive integers, got {list(batch_sizes)}")
  target = np.asarray(columns[module_lib.TARGET_INPUT])
  if target.size == 0:
    raise ValueError("no warm-up record to write")
  if np.any((target < 0) | (target >= schema.num_actions)):
    raise ValueError(
      f"warm-up records: {module_lib.target_range_message(schema)}; got {target.tolist()}"
    )
  for f in schema.dense_features:
    if not np.isfinite(np.asarray(columns[f.name], np.float64)).all():
      raise ValueError(f"warm-up records: {module_lib.non_finite_message(f.name)}")
  for f in schema.multivalued_features:
    shape = np.shape(columns[f.name])
    if shape != (target.size, f.max_values):
      raise ValueError(
        f"warm-up records: multi-valued feature {f.name} must be ({target.size}, "
        f"{f.max_values}) ids padded with {f.pad_value!r}, got shape {shape}"
      )
  dtypes = schema.record_dtypes(include_true_labels=False)
  written = 0
  with tf.io.TFRecordWriter(path) as writer:
    for signature in module_lib.SIGNATURE_NAMES:
      for size in batch_sizes:
        rows = {k: np.asarray(columns[k])[np.arange(int(size)) % target.size] for k in names}
        request = predict_pb2.PredictRequest(
          model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature)
        )
        for k, value in _warmup_inputs(signature, rows, schema).items():
          dtype = dtypes[k] if k in names else tf.string  # Serialized Examples otherwise.
          request.inputs[k].CopyFrom(tf.make_tensor_proto(value, dtype=dtype))
        log = prediction_log_pb2.PredictionLog(
          predict_log=prediction_log_pb2.PredictLog(request=request)
        )
        writer.write(log.SerializeToString())
        written += 1
  return written


def _warmup_inputs(
  signature: str, rows: Mapping[str, np.ndarray], schema: schema_lib.Schema
) -> Dict[str, np.ndarray]:
  """The named inputs of one signature for `rows` (features and `target_action`)."""
  if signature in (module_lib.SERVE_EXAMPLES, module_lib.REGRESS):
    examples = np.asarray(client.examples_of(rows, schema), dtype=object)
    if signature == module_lib.SERVE_EXAMPLES:
      return {module_lib.EXAMPLES_INPUT: examples}
    return {module_lib.REGRESS_INPUT: examples}
  if signature == module_lib.PREDICT_ALL:
    return {k: v for k, v in rows.items() if k != module_lib.TARGET_INPUT}
  return dict(rows)
