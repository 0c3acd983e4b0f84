"""The client side of an export: find a version, load it, score records through its signatures.

`ExportedModel` wraps a loaded SavedModel written by `kaml_tf.serving.exporter` with the schema
from its assets, and runs any of its signatures on numpy columns, converting each input to the
signature's dtype and checking its shape. It is what the local REST server, the latency
benchmark and the demo use, so all of them go through the exported signatures, never the Keras
model.

Version folders are numeric names under the export base (TF Serving's layout); anything else
(such as an export's hidden temporary folder) is not a version.
"""

import json
import os
from typing import Dict, List, Mapping, Optional, Sequence, Union

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import numpy as np
import tensorflow as tf

from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.logs import validation
from kaml_tf.serving import module as module_lib


class InputError(ValueError):
  """A request names an unknown signature, or its inputs do not fit the signature."""


def list_versions(export_base: str) -> List[int]:
  """The versions under `export_base` (any `tf.io.gfile` path), ascending; [] if the folder
  does not exist."""
  if not tf.io.gfile.isdir(export_base):
    return []
  names = (name.rstrip("/") for name in tf.io.gfile.listdir(export_base))
  return sorted(
    int(name)
    for name in names
    if name.isdigit() and tf.io.gfile.isdir(os.path.join(export_base, name))
  )


def latest_version(export_base: str) -> Optional[int]:
  """The highest version under `export_base`, or None when there is none."""
  versions = list_versions(export_base)
  return versions[-1] if versions else None


class ExportedModel:
  """A loaded export and its schema.

  Attributes:
    path: The version folder.
    version: Its number (None if the folder name is not a number).
    schema: The schema from the export's assets.
    calibration: The export's `assets/calibration.json` as a dict (the Platt scaling its
      signatures apply), or None for an uncalibrated export.
    saved_model: The object `tf.saved_model.load` returned.
  """

  def __init__(self, export_dir: str):
    """Loads `export_dir` (a version folder).

    Raises:
      FileNotFoundError: if `export_dir` holds no SavedModel.
    """
    if not tf.saved_model.contains_saved_model(export_dir):
      raise FileNotFoundError(
        f"{export_dir}: no SavedModel here (expected a version folder "
        "written by `python -m export.export_model`)"
      )
    self.path = export_dir
    name = os.path.basename(os.path.normpath(export_dir))
    self.version = int(name) if name.isdigit() else None
    self.saved_model = tf.saved_model.load(export_dir)
    assets = {
      os.path.basename(a.asset_path.numpy().decode()): a.asset_path.numpy().decode()
      for a in getattr(self.saved_model, "assets", ())
    }
    if module_lib.SCHEMA_ASSET not in assets:
      raise FileNotFoundError(
        f"{export_dir}: the export has no assets/"
        f"{module_lib.SCHEMA_ASSET}; was it written by kaml_tf?"
      )
    self.schema = schema_lib.Schema.load(assets[module_lib.SCHEMA_ASSET])
    self.calibration = None
    if module_lib.CALIBRATION_ASSET in assets:
      with tf.io.gfile.GFile(assets[module_lib.CALIBRATION_ASSET], "r") as f:
        self.calibration = json.loads(f.read())
    self._signatures = dict(self.saved_model.signatures)

  @property
  def signature_names(self) -> List[str]:
    return sorted(self._signatures)

  def _signature(self, name: str):
    if name not in self._signatures:
      raise InputError(
        f"Serving signature name: \"{name}\" not found in signature def; the "
        f"export has {self.signature_names}"
      )
    return self._signatures[name]

  def input_specs(self, signature: str) -> Dict[str, tf.TensorSpec]:
    """`{input name: TensorSpec}` of a signature."""
    return dict(self._signature(signature).structured_input_signature[1])

  def output_names(self, signature: str) -> List[str]:
    """The output names of a signature, sorted."""
    return sorted(self._signature(signature).structured_outputs)

  def run(
    self, signature: str, inputs: Mapping[str, object], allow_extra: bool = True
  ) -> Dict[str, np.ndarray]:
    """Runs a signature.

    Args:
      signature: The signature name.
      inputs: `{input name: array-like}`, one value per row.
      allow_extra: Whether keys that are not inputs of the signature are ignored (True: a
        whole log record can be passed) or rejected.

    Returns:
      `{output name: numpy array}`.

    Raises:
      InputError: for an unknown signature, a missing or unknown input, or a value that does
        not convert to the input's dtype and shape.
      tf.errors.InvalidArgumentError: if a strict export rejects the values (e.g. a
        `target_action` outside [0, N)); the default export marks such rows `valid = False`
        instead.
    """
    specs = self.input_specs(signature)
    missing = sorted(set(specs) - set(inputs))
    if missing:
      raise InputError(
        f"signature {signature!r}: missing input(s) {missing}; it takes {sorted(specs)}"
      )
    extra = sorted(set(inputs) - set(specs))
    if extra and not allow_extra:
      raise InputError(
        f"signature {signature!r}: unknown input(s) {extra}; it takes {sorted(specs)}"
      )
    tensors = {k: _to_tensor(inputs[k], spec, signature, k) for k, spec in specs.items()}
    outputs = self._signature(signature)(**tensors)
    return {k: v.numpy() for k, v in outputs.items()}

  def score(self, columns: Mapping[str, object]) -> Dict[str, np.ndarray]:
    """`serving_default`: `{"cvr": (n,), "logit": (n,), "valid": (n,)}` for the rows' target
    actions (invalid rows hold `module.FILL_CVR` and `module.FILL_LOGIT`)."""
    return self.run(module_lib.SERVING_DEFAULT, columns)

  def predict_all(self, columns: Mapping[str, object]) -> np.ndarray:
    """`predict_all`: probabilities (n, N), each action scored as the target (0 on the rows
    with a non-finite dense value; `run(module.PREDICT_ALL, ...)` also returns `valid`)."""
    return self.run(module_lib.PREDICT_ALL, columns)[module_lib.PROBABILITIES_OUTPUT]

  def score_examples(self, serialized: Sequence[bytes]) -> Dict[str, np.ndarray]:
    """`serve_examples` on serialized `tf.train.Example`s: the outputs of `score` plus
    `missing_features` (n,)."""
    return self.run(
      module_lib.SERVE_EXAMPLES,
      {module_lib.EXAMPLES_INPUT: np.asarray(list(serialized), dtype=object)},
    )


def _to_tensor(value, spec: tf.TensorSpec, signature: str, name: str) -> tf.Tensor:
  """`value` as a tensor of `spec`'s dtype and shape, or an InputError naming the input."""
  where = f"signature {signature!r}, input {name!r}"
  array = np.asarray(value)
  if spec.dtype == tf.string:
    if array.dtype.kind not in "OSU":
      raise InputError(f"{where}: expected strings, got {array.dtype} values")
  elif spec.dtype.is_integer:
    if array.dtype.kind not in "iu":
      raise InputError(f"{where}: expected integers ({spec.dtype.name}), got {array.dtype} values")
  elif spec.dtype.is_floating:
    if array.dtype.kind not in "iuf":
      raise InputError(f"{where}: expected numbers ({spec.dtype.name}), got {array.dtype} values")
  try:
    tensor = tf.convert_to_tensor(array, dtype=spec.dtype)
  except (TypeError, ValueError, UnicodeError) as e:
    raise InputError(f"{where}: cannot convert to {spec.dtype.name}: {e}") from None
  if not spec.shape.is_compatible_with(tensor.shape):
    raise InputError(
      f"{where}: expected shape {spec.shape.as_list()} (one value per row), "
      f"got {tensor.shape.as_list()}"
    )
  return tensor


def load_latest(export_base: str) -> ExportedModel:
  """Loads the highest version under `export_base`.

  Raises:
    FileNotFoundError: if there is no version.
  """
  version = latest_version(export_base)
  if version is None:
    raise FileNotFoundError(f"{export_base}: no exported version (numeric folder) here")
  return ExportedModel(os.path.join(export_base, str(version)))


def read_records(
  files: Union[str, Sequence[str]],
  schema: schema_lib.Schema,
  limit: int,
  valid_targets_only: bool = False,
) -> Dict[str, np.ndarray]:
  """The first `limit` records of log files as columns, in file order.

  Args:
    files: Glob(s) or paths of TFRecord logs (see `kaml_tf.logs.records.list_files`).
    schema: The logs' schema; every record must hold all of its fields.
    limit: Records to return at most.
    valid_targets_only: Skip records whose `target_action` is not in [0, N) ("Other"): the
      selector has nothing to return for them.

  Raises:
    validation.BadRecordError: naming the file, record and field of a malformed record.

  Returns:
    `{field: (n,)}` for every field of `schema.record_dtypes()`, n <= limit.
  """
  if limit < 1:
    raise ValueError(f"limit: must be >= 1, got {limit}")
  chunks: Dict[str, List[np.ndarray]] = {}
  found = 0
  spec = schema.parse_spec()
  for path in records.list_files(files):
    # A malformed record fails naming its file, record and field (warm-up data must be valid).
    for _, parsed in validation.checked_batches(path, schema, spec, 256):
      keep = np.ones(len(parsed[schema_lib.TARGET_ACTION]), bool)
      if valid_targets_only:
        target = parsed[schema_lib.TARGET_ACTION]
        keep = (target >= 0) & (target < schema.num_actions)
      rows = np.flatnonzero(keep)[: limit - found]
      for k, v in parsed.items():
        chunks.setdefault(k, []).append(v[rows])
      found += rows.size
      if found >= limit:
        return {k: np.concatenate(v) for k, v in chunks.items()}
  if not chunks:
    return {k: np.zeros([0], d.as_numpy_dtype) for k, d in schema.record_dtypes().items()}
  return {k: np.concatenate(v) for k, v in chunks.items()}


def score_log_records(
  export_dir: str, files: Union[str, Sequence[str]], limit: int = 5
) -> Dict[str, np.ndarray]:
  """Scores the first `limit` records (with a target action) of log files via an export.

  Returns:
    The records' columns plus `cvr`, `logit` and `valid` from `serving_default`.
  """
  model = ExportedModel(export_dir)
  rows = read_records(files, model.schema, limit, valid_targets_only=True)
  if rows[schema_lib.TARGET_ACTION].size == 0:
    raise ValueError(
      f"{files}: no record with a target action in [0, {model.schema.num_actions}) to score"
    )
  result = dict(rows)
  result.update(model.score(rows))
  return result
