"""The client side of an export: find a version, load it, score records through its signatures.

`ExportedModel` wraps a loaded SavedModel written by `kaml_tf.serving.exporter` with the schema
from its assets, and runs any of its signatures on numpy columns, converting each input to the
signature's dtype and checking its shape. It is what the local REST server, the latency
benchmark and the demo use, so all of them go through the exported signatures, never the Keras
model.

Version folders are numeric names under the export base (TF Serving's layout); anything else
(such as an export's hidden temporary folder) is not a version.

Multi-valued features. A signature takes a multi-valued feature padded, `(n, max_values)` ids
filled up at the end with the feature's pad value (what TF Serving itself needs: every input
of a batch has one shape). `ExportedModel.run` takes that padded form as a 2-D numpy array, or
the lists themselves, one Python list of ids per row (`padded_lists`): each list holds 0 to
`max_values` ids of the feature's type, none equal to the pad value, and is padded here.
`examples_of` turns columns in the padded form into `tf.train.Example`s holding the lists.
"""

import json
import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

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
      inputs: `{input name: array-like}`, one value per row; for a multi-valued feature
        either the padded `(n, max_values)` numpy array or one list of ids per row (module
        docstring).
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
    multivalued = {f.name: f for f in self.schema.multivalued_features}
    tensors = {}
    for k, spec in specs.items():
      value = inputs[k]
      if k in multivalued and spec.shape.rank == 2 and not _is_matrix(value):
        where = f"signature {signature!r}, input {k!r}, row "
        value = padded_lists(value, multivalued[k], lambda i, w=where: f"{w}{i}")
      tensors[k] = _to_tensor(value, spec, signature, k)
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
      f"{where}: expected shape {spec.shape.as_list()} (one value per row, or one padded "
      f"list per row for a multi-valued feature), got {tensor.shape.as_list()}"
    )
  return tensor


def _is_matrix(value: Any) -> bool:
  return isinstance(value, (np.ndarray, tf.Tensor)) and len(value.shape) == 2


_INT64 = np.iinfo(np.int64)


def padded_lists(
  lists: Sequence[Any], feature: schema_lib.SparseFeature, where: Callable[[int], str]
) -> np.ndarray:
  """One list of ids per row -> the `(n, max_values)` ids padded with the feature's pad value.

  Args:
    lists: Per row, a list (or tuple, or 1-D array) of 0 to `feature.max_values` ids: Python
      or numpy integers for an int64 feature, text or bytes for a string one.
    feature: The multi-valued feature.
    where: Names row i in an error message (e.g. `instances[3].tags`).

  Returns:
    int64 `(n, max_values)`, or object (bytes) for a string feature.

  Raises:
    InputError: naming the row for a value that is not a list (a lone id included: a
      client sending one most likely thinks the feature single-valued), a list longer than
      `max_values`, an id of the wrong type or out of int64's range, or an id equal to the
      pad value before a real id (it would be dropped silently). Pad values at the end of a
      list are dropped first, so the padded form TF Serving takes is accepted too.
  """
  is_int = feature.dtype == "int64"
  out = np.full((len(lists), feature.max_values), feature.pad_value, np.int64 if is_int else object)
  if not is_int:
    out[:] = b""
  for i, ids in enumerate(lists):
    if not isinstance(ids, (list, tuple, np.ndarray)) or np.ndim(ids) != 1:
      raise InputError(
        f"{where(i)}: expected a list of at most {feature.max_values} ids (multi-valued "
        f"feature {feature.name!r}), got {ids!r}"
      )
    ids = _without_trailing_pads(ids, feature)
    if len(ids) > feature.max_values:
      raise InputError(
        f"{where(i)}: {len(ids)} ids, more than max_values={feature.max_values} of "
        f"multi-valued feature {feature.name!r}"
      )
    row = where(i)
    for j, v in enumerate(ids):
      out[i, j] = _list_id(v, feature, f"{row}[{j}]")
  return out


def _without_trailing_pads(ids: Sequence[Any], feature: schema_lib.SparseFeature) -> Sequence[Any]:
  """`ids` without the pad values at its end: the padded form TF Serving's clients send."""
  end = len(ids)
  while end and _is_pad(ids[end - 1], feature):
    end -= 1
  return ids[:end]


def _is_pad(value: Any, feature: schema_lib.SparseFeature) -> bool:
  if feature.dtype == "int64":
    is_int = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    return is_int and int(value) == feature.pad_value
  return isinstance(value, (str, bytes)) and len(value) == 0


def _list_id(value: Any, feature: schema_lib.SparseFeature, where: str) -> Any:
  """One id of a list, checked (see `padded_lists`)."""
  if feature.dtype == "int64":
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if ok and not _INT64.min <= int(value) <= _INT64.max:
      raise InputError(f"{where}: {value} is out of the int64 range")
  else:
    ok = isinstance(value, (str, bytes))
    if isinstance(value, str):
      value = value.encode("utf-8")
  if not ok:
    raise InputError(
      f"{where}: expected an id of type {feature.dtype} (feature {feature.name!r}), got {value!r}"
    )
  if value in (feature.pad_value, b""):  # b"": a string feature's pad value, as bytes.
    raise InputError(
      f"{where}: {value!r} is the pad value of multi-valued feature {feature.name!r}, not an id"
    )
  return value


def examples_of(columns: Mapping[str, Any], schema: schema_lib.Schema) -> List[bytes]:
  """Serialized `tf.train.Example`s of rows holding every feature and `target_action`.

  Args:
    columns: `{field: (n,)}`, `(n, max_values)` padded for a multi-valued feature; extra
      fields are ignored.
    schema: The schema (the fields and their dtypes).

  Returns:
    n Examples, a multi-valued feature holding its list without the pad entries.
  """
  dtypes = dict(schema.record_dtypes(include_true_labels=False))
  dtypes = {k: dtypes[k] for k in schema.feature_names + (module_lib.TARGET_INPUT,)}
  multivalued = {f.name: f for f in schema.multivalued_features}
  if not multivalued:
    return records.encode_examples(columns, dtypes)
  n = len(columns[module_lib.TARGET_INPUT])
  examples = []
  for i in range(n):
    example = tf.train.Example()
    for k, dtype in dtypes.items():
      value = np.asarray(columns[k])[i]
      if k in multivalued:
        value = [v for v in value.tolist() if v not in (multivalued[k].pad_value, b"")]
        if not value:
          continue  # The empty list: an absent key.
      _append(example.features.feature[k], dtype, np.atleast_1d(np.asarray(value, object)))
    examples.append(example.SerializeToString())
  return examples


def _append(feature: tf.train.Feature, dtype: tf.DType, values: np.ndarray) -> None:
  if dtype == tf.string:
    feature.bytes_list.value.extend(v if isinstance(v, bytes) else str(v).encode() for v in values)
  elif dtype == tf.float32:
    feature.float_list.value.extend(float(v) for v in values)
  else:
    feature.int64_list.value.extend(int(v) for v in values)


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
