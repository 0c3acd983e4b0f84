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
embedding size, or dense floats with a fixed `(x - mean) / std` normalisation. A feature may be
named like a key field (e.g. `ad_task_id`) to feed that field to the model as well.
"""

import dataclasses
import hashlib
import json
import os
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

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

_SPARSE_DTYPES = ("int64", "string")


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
  """

  name: str
  dtype: str = "int64"
  num_buckets: int = 1000
  embedding_dim: int = 16
  vocabulary: Tuple[Any, ...] = ()

  @property
  def input_dim(self) -> int:
    """Rows of the embedding table (vocabulary plus one OOV row, or hash buckets)."""
    return len(self.vocabulary) + 1 if self.vocabulary else self.num_buckets

  @property
  def missing_value(self) -> Any:
    """The id that stands for a missing value (serving fills absent features with it).

    With a vocabulary: an id outside it, so the lookup gives the out-of-vocabulary row.
    Hashed ids have no row of their own: 0 (int64) or "" (string), which shares a bucket
    with real ids.
    """
    if self.dtype == "int64":
      return min(min(self.vocabulary), 0) - 1 if self.vocabulary else 0
    if "" not in self.vocabulary:
      return ""
    return "?" * (1 + max(len(v) for v in self.vocabulary))


@dataclasses.dataclass(frozen=True)
class DenseFeature:
  """A float feature normalised as `(x - mean) / std`."""

  name: str
  mean: float = 0.0
  std: float = 1.0

  @property
  def missing_value(self) -> float:
    """The value that stands for a missing one: the mean, which normalises to 0."""
    return self.mean


@dataclasses.dataclass(frozen=True)
class Schema:
  """Actions, features and key fields of a log.

  Attributes:
    actions: Ordered conversion action names; index j is action j everywhere.
    sparse_features: Sparse id features, in model input order.
    dense_features: Dense float features, in model input order.
    has_true_labels: Whether records carry `true_label_<action>` (simulated data).
  """

  actions: Tuple[str, ...]
  sparse_features: Tuple[SparseFeature, ...] = ()
  dense_features: Tuple[DenseFeature, ...] = ()
  has_true_labels: bool = False

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

  def parse_spec(
    self, include_true_labels: Optional[bool] = None
  ) -> Dict[str, tf.io.FixedLenFeature]:
    """The `tf.io.parse_example` spec: every field required, one scalar per record."""
    return {
      k: tf.io.FixedLenFeature([], d) for k, d in self.record_dtypes(include_true_labels).items()
    }

  def feature_parse_spec(self) -> Dict[str, tf.io.FixedLenFeature]:
    """Parse spec of the model features only (what a serving client sends)."""
    dtypes = self.record_dtypes(include_true_labels=False)
    return {k: tf.io.FixedLenFeature([], dtypes[k]) for k in self.feature_names}

  def missing_values(self) -> Dict[str, Any]:
    """`{feature name: the value serving puts in for a missing one}` (`missing_value`)."""
    return {f.name: f.missing_value for f in self.sparse_features + self.dense_features}

  def feature_signature(self) -> Dict[str, tf.TensorSpec]:
    """Batched `TensorSpec`s of the model features, shape (batch,), keyed by name."""
    dtypes = self.record_dtypes(include_true_labels=False)
    return {k: tf.TensorSpec([None], dtypes[k], name=k) for k in self.feature_names}

  def keras_inputs(self) -> Dict[str, tf.keras.Input]:
    """One scalar-per-example `tf.keras.Input` per feature, keyed by name."""
    return {
      name: tf.keras.Input(shape=(), dtype=spec.dtype, name=name)
      for name, spec in self.feature_signature().items()
    }

  def to_dict(self) -> Dict[str, Any]:
    return {
      "version": SCHEMA_VERSION,
      "actions": list(self.actions),
      "sparse_features": [_sparse_to_dict(f) for f in self.sparse_features],
      "dense_features": [dataclasses.asdict(f) for f in self.dense_features],
      "has_true_labels": self.has_true_labels,
    }

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
  known = {"version", "actions", "sparse_features", "dense_features", "has_true_labels"}
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
      )
    )
  dense = []
  for i, item in enumerate(data.get("dense_features", [])):
    where = f"dense_features[{i}]"
    if not isinstance(item, Mapping):
      raise SchemaError(f"{where}: expected an object, got {item!r}")
    extra = sorted(set(item) - {"name", "mean", "std"})
    if extra:
      raise SchemaError(f"{where}: unknown field(s) {extra}")
    name = _require(item, "name", str, where)
    dense.append(
      DenseFeature(
        name=name,
        mean=_float_field(item, "mean", 0.0, f"{where}({name})"),
        std=_float_field(item, "std", 1.0, f"{where}({name})"),
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
  for f in schema.dense_features:
    where = f"dense_features({f.name})"
    if not f.name:
      raise SchemaError("dense_features: a feature has an empty name")
    if not f.std > 0:
      raise SchemaError(f"{where}.std: must be > 0, got {f.std}")
    if f.name in KEY_FIELDS:
      raise SchemaError(f"{where}: {f.name!r} is an int64 key field, not a dense feature")
  for name in names:
    if name in reserved:
      raise SchemaError(f"features: {name!r} clashes with a label field")


def _no_duplicates(where: str, values: Sequence[Any]) -> None:
  seen = set()
  for v in values:
    if v in seen:
      raise SchemaError(f"{where}: duplicate name {v!r}")
    seen.add(v)


def schema_path(directory: str) -> str:
  return os.path.join(directory, "schema.json")
