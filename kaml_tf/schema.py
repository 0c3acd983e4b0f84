"""The feature schema: the single source of truth for logs, parsing, Keras inputs and serving.

A `Schema` names the ordered conversion actions, the model features and the key fields every
log record carries:

* `ad_task_id` (int64): the advertising task the post-click sample belongs to (ADM counts per
  ad task);
* `target_action` (int64): index into `actions` of the task's target, `-1` for "Other";
* `day` (int64): day index of the click, used for the statistics window;
* `label_<action>` (int64 0/1): the reported conversion label of each action;
* `true_label_<action>` (int64 0/1, only when `has_true_labels`): the complete labels, known
  for simulated or re-labelled public data (Oracle experiments).

Features are sparse ids (hashed into `num_buckets`, or looked up in a `vocabulary`) with an
embedding size, or dense floats with a fixed `(x - mean) / std` normalisation (after an optional
`log1p` transform for heavy tails). A feature may be named like a key field (e.g. `ad_task_id`)
to feed that field to the model as well.

A sparse feature with `max_values > 1` is multi-valued (a user's interest tags, an app's
categories): each record carries a list of 0 to `max_values` ids. Inside the pipeline, the model
and every serving signature it is one `(batch, max_values)` tensor, padded at the end with the
feature's `pad_value` (-1 for int64 ids, "" for strings, so those are not valid ids of a
multi-valued feature); the embedding layer combines the rows of the real ids with `combiner`.
An empty list is a valid value (no ids: a zero embedding), and so is an absent one.
"""

import dataclasses
import hashlib
import json
import os
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf import atomic

AD_TASK_ID = "ad_task_id"
TARGET_ACTION = "target_action"
DAY = "day"
KEY_FIELDS = (AD_TASK_ID, TARGET_ACTION, DAY)
OTHER_TARGET = -1
# Model input (batch, N): 1 where the action is the sample's target (HKE's indicator M).
HKE_INDICATOR = "hke_indicator"
LABEL_PREFIX = "label_"
TRUE_LABEL_PREFIX = "true_label_"
SCHEMA_VERSION = 1
ParseFeature = Union[tf.io.FixedLenFeature, tf.io.RaggedFeature]

_SPARSE_DTYPES = ("int64", "string")
COMBINERS = ("mean", "sum", "sqrtn")
DENSE_TRANSFORMS = ("identity", "log1p")


class SchemaError(ValueError):
  """A schema is malformed; the message names the offending field."""


@dataclasses.dataclass(frozen=True)
class SparseFeature:
  """A categorical id feature.

  Attributes:
    name: Feature key in the logs and name of the Keras / serving input.
    dtype: "int64" or "string": the type of the raw id in the logs.
    num_buckets: Hash buckets when `vocabulary` is empty; ignored otherwise.
    embedding_dim: Width of the embedding vector.
    vocabulary: Known ids; unknown ids share one out-of-vocabulary row.
    max_values: Most ids a record may carry; above 1 the feature is multi-valued.
    combiner: How a multi-valued feature's embedding rows become one vector: "mean", "sum" or
      "sqrtn" (the sum over the square root of the number of ids).
  """

  name: str
  dtype: str = "int64"
  num_buckets: int = 1000
  embedding_dim: int = 16
  vocabulary: Tuple[Any, ...] = ()
  max_values: int = 1
  combiner: str = "mean"

  @property
  def multivalued(self) -> bool:
    """Whether records carry a list of ids, `(batch, max_values)` once padded."""
    return self.max_values > 1

  @property
  def pad_value(self) -> Any:
    """The id that fills a multi-valued feature's list up to `max_values` (never a real id)."""
    return -1 if self.dtype == "int64" else ""

  def padded(self, values: tf.RaggedTensor) -> tf.Tensor:
    """`(batch, max_values)` ids from ragged `(batch, None)` ones, padded with `pad_value`.

    Rows longer than `max_values` are cut: callers that must refuse them check first.
    """
    return values.to_tensor(default_value=self.pad_value, shape=[None, self.max_values])

  @property
  def input_dim(self) -> int:
    """Rows of the embedding table (vocabulary plus one OOV row, or hash buckets)."""
    return len(self.vocabulary) + 1 if self.vocabulary else self.num_buckets

  @property
  def missing_value(self) -> Any:
    """The id that stands for a missing value (serving fills absent features with it).

    A multi-valued feature's missing value is the empty list: `max_values` times `pad_value`.

    With a vocabulary: an id outside it, so the lookup gives the out-of-vocabulary row.
    Hashed ids have no row of their own: 0 (int64) or "" (string), which shares a bucket
    with real ids.
    """
    if self.multivalued:
      return [self.pad_value] * self.max_values
    if self.dtype == "int64":
      return min(min(self.vocabulary), 0) - 1 if self.vocabulary else 0
    if "" not in self.vocabulary:
      return ""
    return "?" * (1 + max(len(v) for v in self.vocabulary))


@dataclasses.dataclass(frozen=True)
class DenseFeature:
  """A float feature normalised as `(t(x) - mean) / std`.

  Attributes:
    name: Feature key in the logs and name of the Keras / serving input.
    mean: Mean of `t(x)` over the training logs.
    std: Standard deviation of `t(x)`, > 0.
    transform: `t`: "identity", or "log1p" for heavy tails: `sign(x) * log1p(|x|)`, which is
      `log1p(x)` for the usual non-negative counts and amounts and defined for every x.
  """

  name: str
  mean: float = 0.0
  std: float = 1.0
  transform: str = "identity"

  @property
  def missing_value(self) -> float:
    """The value that stands for a missing one: normalised, it is 0 (or near 0 after log1p).

    Under log1p it is the raw value whose transform is the mean, so that it too maps to 0.
    """
    if self.transform == "log1p":
      return float(np.sign(self.mean) * np.expm1(abs(self.mean)))
    return self.mean


TIMESTAMP_UNITS = ("s", "ms")
# One day in each timestamp unit: day = floor(timestamp / this), UTC.
DAY_IN_UNITS = {"s": 86400, "ms": 86400 * 1000}


@dataclasses.dataclass(frozen=True)
class ColumnMapping:
  """How the key and label fields are stored in logs that keep their own column names.

  The translation itself is `kaml_tf.logs.columns`. The identity (the default) is what every
  log written by this library uses.

  Attributes:
    fields: (record field, log column) pairs for the key fields (`ad_task_id`, `target_action`,
      `day`) and `label_<action>` / `true_label_<action>` stored under another name.
    target_names: Whether the target column holds action names (unknown names: -1, "Other")
      instead of indices.
    timestamp_unit: None: the day column holds day indices; "s" or "ms": it holds a timestamp
      in that unit and day = floor(timestamp / 1 day), UTC.
  """

  fields: Tuple[Tuple[str, str], ...] = ()
  target_names: bool = False
  timestamp_unit: Optional[str] = None

  def __post_init__(self):
    if isinstance(self.fields, Mapping):
      object.__setattr__(self, "fields", tuple(self.fields.items()))
    # Identity pairs carry nothing: dropping them keeps equal mappings equal.
    pairs = tuple((k, v) for k, v in self.fields if k != v)
    object.__setattr__(self, "fields", tuple(sorted(pairs)))

  @property
  def is_identity(self) -> bool:
    return not self.fields and not self.target_names and self.timestamp_unit is None

  def log_name(self, field: str) -> str:
    """The log column that holds record field `field`."""
    return dict(self.fields).get(field, field)

  def to_dict(self) -> Dict[str, Any]:
    return {
      "fields": dict(self.fields),
      "target": "names" if self.target_names else "indices",
      "day": f"timestamp_{self.timestamp_unit}" if self.timestamp_unit else "day",
    }

  @classmethod
  def from_dict(cls, data: Any) -> "ColumnMapping":
    if not isinstance(data, Mapping) or set(data) - {"fields", "target", "day"}:
      raise SchemaError(f"columns: expected an object of fields, target and day, got {data!r}")
    fields = data.get("fields", {})
    if not isinstance(fields, Mapping) or not all(
      isinstance(k, str) and isinstance(v, str) and v for k, v in fields.items()
    ):
      raise SchemaError(f"columns.fields: expected {{field: log column}}, got {fields!r}")
    target = data.get("target", "indices")
    if target not in ("indices", "names"):
      raise SchemaError(f"columns.target: {target!r} is not 'indices' or 'names'")
    day = data.get("day", "day")
    days = ["day"] + [f"timestamp_{u}" for u in TIMESTAMP_UNITS]
    if day not in days:
      raise SchemaError(f"columns.day: {day!r} is not one of {days}")
    unit = None if day == "day" else day[len("timestamp_") :]
    return cls(tuple(fields.items()), target == "names", unit)


@dataclasses.dataclass(frozen=True)
class Schema:
  """Actions, features and key fields of a log.

  Attributes:
    actions: Ordered conversion action names; index j is action j everywhere.
    sparse_features: Sparse id features, in model input order.
    dense_features: Dense float features, in model input order.
    has_true_labels: Whether records carry `true_label_<action>` (simulated data).
    columns: Where the logs keep the key and label fields (`ColumnMapping`); the identity
      unless the logs have column names of their own.
  """

  actions: Tuple[str, ...]
  sparse_features: Tuple[SparseFeature, ...] = ()
  dense_features: Tuple[DenseFeature, ...] = ()
  has_true_labels: bool = False
  columns: ColumnMapping = ColumnMapping()

  def __post_init__(self):
    object.__setattr__(self, "actions", tuple(self.actions))
    object.__setattr__(self, "sparse_features", tuple(self.sparse_features))
    object.__setattr__(self, "dense_features", tuple(self.dense_features))
    _validate(self)

  @property
  def num_actions(self) -> int:
    return len(self.actions)

  @property
  def feature_names(self) -> Tuple[str, ...]:
    return tuple(f.name for f in self.sparse_features + self.dense_features)

  @property
  def label_keys(self) -> Tuple[str, ...]:
    return tuple(LABEL_PREFIX + a for a in self.actions)

  @property
  def true_label_keys(self) -> Tuple[str, ...]:
    return tuple(TRUE_LABEL_PREFIX + a for a in self.actions)

  def action_index(self, name: str) -> int:
    """Returns the index of action `name`; raises naming the known actions otherwise."""
    if name not in self.actions:
      raise SchemaError(f"unknown action {name!r}; the schema's actions are {list(self.actions)}")
    return self.actions.index(name)

  def record_dtypes(self, include_true_labels: Optional[bool] = None) -> Dict[str, tf.DType]:
    """Every field a log record carries, with its TensorFlow dtype, in a fixed order."""
    with_truth = self.has_true_labels if include_true_labels is None else include_true_labels
    dtypes: Dict[str, tf.DType] = {k: tf.int64 for k in KEY_FIELDS}
    for f in self.sparse_features:
      dtypes[f.name] = tf.int64 if f.dtype == "int64" else tf.string
    for f in self.dense_features:
      dtypes[f.name] = tf.float32
    for k in self.label_keys:
      dtypes[k] = tf.int64
    if with_truth:
      for k in self.true_label_keys:
        dtypes[k] = tf.int64
    return dtypes

  def parse_spec(self, include_true_labels: Optional[bool] = None) -> Dict[str, ParseFeature]:
    """The `tf.io.parse_example` spec: every scalar field required, one value per record.

    Multi-valued features parse as `tf.io.RaggedFeature` (`(batch, None)`, absent = empty);
    `SparseFeature.padded` makes them the `(batch, max_values)` tensors the model takes.
    """
    multivalued = {f.name for f in self.sparse_features if f.multivalued}
    return {
      k: tf.io.RaggedFeature(d, row_splits_dtype=tf.int64)
      if k in multivalued
      else tf.io.FixedLenFeature([], d)
      for k, d in self.record_dtypes(include_true_labels).items()
    }

  def feature_parse_spec(self) -> Dict[str, ParseFeature]:
    """Parse spec of the model features only (what a serving client sends)."""
    spec = self.parse_spec(include_true_labels=False)
    return {k: spec[k] for k in self.feature_names}

  @property
  def multivalued_features(self) -> Tuple[SparseFeature, ...]:
    """The sparse features with `max_values > 1`, in schema order."""
    return tuple(f for f in self.sparse_features if f.multivalued)

  def missing_values(self) -> Dict[str, Any]:
    """`{feature name: the value serving puts in for a missing one}` (`missing_value`)."""
    return {f.name: f.missing_value for f in self.sparse_features + self.dense_features}

  def feature_signature(self) -> Dict[str, tf.TensorSpec]:
    """Batched `TensorSpec`s of the model features, keyed by name.

    Shape (batch,), or (batch, max_values) for a multi-valued feature (padded, see the module
    docstring).
    """
    dtypes = self.record_dtypes(include_true_labels=False)
    widths = {f.name: f.max_values for f in self.multivalued_features}
    return {
      k: tf.TensorSpec([None, widths[k]] if k in widths else [None], dtypes[k], name=k)
      for k in self.feature_names
    }

  def keras_inputs(self) -> Dict[str, tf.keras.Input]:
    """One `tf.keras.Input` per feature (a scalar, or `max_values` padded ids), keyed by name."""
    return {
      name: tf.keras.Input(shape=spec.shape[1:], dtype=spec.dtype, name=name)
      for name, spec in self.feature_signature().items()
    }

  def to_dict(self) -> Dict[str, Any]:
    d = {
      "version": SCHEMA_VERSION,
      "actions": list(self.actions),
      "sparse_features": [_sparse_to_dict(f) for f in self.sparse_features],
      "dense_features": [_dense_to_dict(f) for f in self.dense_features],
      "has_true_labels": self.has_true_labels,
    }
    # Only a mapping that is not the identity is written: older schemas keep their JSON and
    # fingerprint.
    if not self.columns.is_identity:
      d["columns"] = self.columns.to_dict()
    return d

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), indent=2, sort_keys=True)

  def fingerprint(self) -> str:
    """A hex digest that changes whenever anything a consumer depends on changes."""
    canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]

  def save(self, path: str) -> None:
    """Writes `schema.json` atomically."""
    atomic.write_text(path, self.to_json() + "\n")

  @classmethod
  def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> "Schema":
    """Builds a schema from its dict form; errors name `source` and the bad field."""
    try:
      return _from_dict(cls, data)
    except SchemaError as e:
      raise SchemaError(f"{source}: {e}") from None

  @classmethod
  def load(cls, path: str) -> "Schema":
    """Reads a `schema.json`; a malformed file fails with a message naming the field."""
    try:
      with tf.io.gfile.GFile(path, "r") as f:
        text = f.read()
    except tf.errors.NotFoundError:
      raise SchemaError(f"{path}: schema file not found") from None
    try:
      data = json.loads(text)
    except json.JSONDecodeError as e:
      raise SchemaError(f"{path}: not valid JSON ({e})") from None
    return cls.from_dict(data, source=path)


def _sparse_to_dict(f: SparseFeature) -> Dict[str, Any]:
  d = dataclasses.asdict(f)
  d["vocabulary"] = list(f.vocabulary)
  # Single-valued features keep the older form, so schemas (and their fingerprints) that
  # predate multi-valued features are unchanged.
  if not f.multivalued:
    del d["max_values"], d["combiner"]
  return d


def _dense_to_dict(f: DenseFeature) -> Dict[str, Any]:
  d = dataclasses.asdict(f)
  if f.transform == "identity":  # The older form, as for `_sparse_to_dict`.
    del d["transform"]
  return d


def _require(data: Mapping[str, Any], key: str, kind, where: str):
  if key not in data:
    raise SchemaError(f"{where}: missing field {key!r}")
  value = data[key]
  if kind is int and isinstance(value, bool) or not isinstance(value, kind):
    raise SchemaError(f"{where}.{key}: expected {getattr(kind, '__name__', kind)}, got {value!r}")
  return value


def _from_dict(cls, data: Mapping[str, Any]) -> Schema:
  if not isinstance(data, Mapping):
    raise SchemaError(f"expected a JSON object, got {type(data).__name__}")
  version = data.get("version", SCHEMA_VERSION)
  if version != SCHEMA_VERSION:
    raise SchemaError(
      f"version: unsupported schema version {version!r} (this library reads {SCHEMA_VERSION})"
    )
  known = {"version", "actions", "sparse_features", "dense_features", "has_true_labels", "columns"}
  unknown = sorted(set(data) - known)
  if unknown:
    raise SchemaError(f"unknown field(s) {unknown}; expected some of {sorted(known)}")
  actions = _require(data, "actions", list, "schema")
  sparse = []
  for i, item in enumerate(data.get("sparse_features", [])):
    where = f"sparse_features[{i}]"
    if not isinstance(item, Mapping):
      raise SchemaError(f"{where}: expected an object, got {item!r}")
    extra = sorted(set(item) - {f.name for f in dataclasses.fields(SparseFeature)})
    if extra:
      raise SchemaError(f"{where}: unknown field(s) {extra}")
    name = _require(item, "name", str, where)
    sparse.append(
      SparseFeature(
        name=name,
        dtype=item.get("dtype", "int64"),
        num_buckets=_int_field(item, "num_buckets", 1000, f"{where}({name})"),
        embedding_dim=_int_field(item, "embedding_dim", 16, f"{where}({name})"),
        vocabulary=tuple(item.get("vocabulary", ())),
        max_values=_int_field(item, "max_values", 1, f"{where}({name})"),
        combiner=item.get("combiner", "mean"),
      )
    )
  dense = []
  for i, item in enumerate(data.get("dense_features", [])):
    where = f"dense_features[{i}]"
    if not isinstance(item, Mapping):
      raise SchemaError(f"{where}: expected an object, got {item!r}")
    extra = sorted(set(item) - {f.name for f in dataclasses.fields(DenseFeature)})
    if extra:
      raise SchemaError(f"{where}: unknown field(s) {extra}")
    name = _require(item, "name", str, where)
    dense.append(
      DenseFeature(
        name=name,
        mean=_float_field(item, "mean", 0.0, f"{where}({name})"),
        std=_float_field(item, "std", 1.0, f"{where}({name})"),
        transform=item.get("transform", "identity"),
      )
    )
  has_truth = data.get("has_true_labels", False)
  if not isinstance(has_truth, bool):
    raise SchemaError(f"has_true_labels: expected true or false, got {has_truth!r}")
  return cls(
    actions=tuple(actions),
    sparse_features=tuple(sparse),
    dense_features=tuple(dense),
    has_true_labels=has_truth,
    columns=ColumnMapping.from_dict(data["columns"]) if "columns" in data else ColumnMapping(),
  )


def _int_field(item, key, default, where):
  value = item.get(key, default)
  if isinstance(value, bool) or not isinstance(value, int):
    raise SchemaError(f"{where}.{key}: expected an integer, got {value!r}")
  return value


def _float_field(item, key, default, where):
  value = item.get(key, default)
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    raise SchemaError(f"{where}.{key}: expected a number, got {value!r}")
  return float(value)


def _validate(schema: Schema) -> None:
  """Checks names, sizes and types; raises `SchemaError` naming the field."""
  if not schema.actions:
    raise SchemaError("actions: at least one conversion action is required")
  for i, a in enumerate(schema.actions):
    if not isinstance(a, str) or not a or not a.replace("_", "").isalnum():
      raise SchemaError(f"actions[{i}]: {a!r} is not a valid name (letters, digits and '_' only)")
  _no_duplicates("actions", schema.actions)
  names = [f.name for f in schema.sparse_features + schema.dense_features]
  _no_duplicates("features", names)
  reserved = set(schema.label_keys) | set(schema.true_label_keys)
  for f in schema.sparse_features:
    where = f"sparse_features({f.name})"
    if not f.name:
      raise SchemaError("sparse_features: a feature has an empty name")
    if f.dtype not in _SPARSE_DTYPES:
      raise SchemaError(f"{where}.dtype: {f.dtype!r} is not one of {_SPARSE_DTYPES}")
    if not f.vocabulary and f.num_buckets < 1:
      raise SchemaError(f"{where}.num_buckets: must be >= 1, got {f.num_buckets}")
    if f.embedding_dim < 1:
      raise SchemaError(f"{where}.embedding_dim: must be >= 1, got {f.embedding_dim}")
    _no_duplicates(f"{where}.vocabulary", f.vocabulary)
    if f.name in (TARGET_ACTION, DAY, HKE_INDICATOR):
      raise SchemaError(f"{where}: {f.name!r} is a key field and cannot be a feature")
    _validate_multivalued(f, where)
  for f in schema.dense_features:
    where = f"dense_features({f.name})"
    if not f.name:
      raise SchemaError("dense_features: a feature has an empty name")
    if not f.std > 0:
      raise SchemaError(f"{where}.std: must be > 0, got {f.std}")
    if f.transform not in DENSE_TRANSFORMS:
      raise SchemaError(f"{where}.transform: {f.transform!r} is not one of {DENSE_TRANSFORMS}")
    if f.name in KEY_FIELDS:
      raise SchemaError(f"{where}: {f.name!r} is an int64 key field, not a dense feature")
  for name in names:
    if name in reserved:
      raise SchemaError(f"features: {name!r} clashes with a label field")
  _validate_columns(schema, names)


def _validate_columns(schema: Schema, features: Sequence[str]) -> None:
  """Mapped fields are key or label fields; no two fields read the same log column."""
  mapping = schema.columns
  if mapping.timestamp_unit is not None and mapping.timestamp_unit not in TIMESTAMP_UNITS:
    raise SchemaError(f"columns.day: unknown timestamp unit {mapping.timestamp_unit!r}")
  fields = set(schema.record_dtypes(include_true_labels=True))
  mappable = set(KEY_FIELDS) | set(schema.label_keys) | set(schema.true_label_keys)
  for field, _ in mapping.fields:
    if field not in mappable:
      raise SchemaError(f"columns.fields: {field!r} is not a key or label field")
  sources: Dict[str, str] = {}
  for field in sorted(fields | set(features)):
    column = mapping.log_name(field)
    if sources.setdefault(column, field) != field:
      raise SchemaError(
        f"columns.fields: {sources[column]!r} and {field!r} would both read log column {column!r}"
      )


def _validate_multivalued(f: SparseFeature, where: str) -> None:
  if f.max_values < 1:
    raise SchemaError(f"{where}.max_values: must be >= 1, got {f.max_values}")
  if f.combiner not in COMBINERS:
    raise SchemaError(f"{where}.combiner: {f.combiner!r} is not one of {COMBINERS}")
  if not f.multivalued:
    return
  if f.name == AD_TASK_ID:
    raise SchemaError(f"{where}: the key field {AD_TASK_ID!r} cannot be multi-valued")
  if f.pad_value in f.vocabulary:
    raise SchemaError(
      f"{where}.vocabulary: {f.pad_value!r} pads multi-valued lists and cannot be an id"
    )


def _no_duplicates(where: str, values: Sequence[Any]) -> None:
  seen = set()
  for v in values:
    if v in seen:
      raise SchemaError(f"{where}: duplicate name {v!r}")
    seen.add(v)


def schema_path(directory: str) -> str:
  return os.path.join(directory, "schema.json")
