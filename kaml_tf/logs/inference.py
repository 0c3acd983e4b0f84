"""Schema inference: a `Schema` (and a report of what was decided) from a table of logs.

`infer(table, config)` looks at every column of a `pyarrow.Table` (`kaml_tf.logs.tables`
reads one from Parquet, CSV or TFRecord logs):

* Key fields and labels, found under the column names `InferenceConfig` gives: the ad task
  (integer ids, no nulls), the target action (indices in [-1, N), or action names mapped to
  indices, unknown names to -1 "Other" and counted), the day (an integer day column, or a
  timestamp: day = floor(ts / 86400 s), UTC), `label_<action>` (0/1, no nulls) and, when every
  action has one, the true labels (`true_` + the label column). A missing column, a label that
  is not 0/1, a null key value or a target outside the actions raise `InferenceError` naming
  the column.
* Every other column (unless ignored) is a feature:
  - integer, boolean or string ids -> a sparse feature: with a vocabulary (the sorted distinct
    values) when there are at most `vocabulary_max` distinct values, else hashed into
    `num_buckets`: max id + 1 for non-negative integer ids when that is at most
    `bucket_factor` x the distinct count (every id its own bucket), else
    ceil(`bucket_factor` x distinct count);
  - lists of integer or string ids -> a multi-valued sparse feature (`max_values`: the
    longest list observed, at least 2, unless `max_values` is set; `combiner`);
  - floats -> a dense feature with the mean and (population) standard deviation of its finite
    values, after `sign(x) * log1p(|x|)` when `log1p` is "auto" and the values' skewness
    (the Fisher-Pearson coefficient g1 = m3 / m2^1.5) exceeds `log1p_skewness`;
  - embedding width = round(`embedding_scale` x cardinality^(1/4)) clipped to
    [`embedding_min`, `embedding_max`], the cardinality being the distinct count.
  A column with at most one distinct value (nulls aside) is dropped as constant; one whose type
  fits none of these (lists of floats, nested lists, dates, ...) or whose name is a key or label
  field's is left out as undecided. The report says both, with reasons.

The report (`Inference.report`, JSON-able) holds, per column, its role, type, null share and
cardinality (and the feature's settings), the column mapping, the target's encoding and the
unknown target names, and the lists of dropped and undecided columns.
"""

import dataclasses
import math
from typing import Any, Dict, List, Mapping, Optional, Tuple

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kaml_tf import configs
from kaml_tf import schema as schema_lib
from kaml_tf.logs import records

SECONDS_PER_DAY = 86400
TIMESTAMP_UNITS = {"s": 1, "ms": 1000}
LOG1P_MODES = ("off", "auto")
TRUE_PREFIX = "true_"


class InferenceError(records.LogError):
  """The logs cannot give a schema; the message names the column."""


def _split_action(item: str) -> Tuple[str, str]:
  name, sep, column = item.partition("=")
  return name.strip(), (column.strip() if sep else schema_lib.LABEL_PREFIX + name.strip())


@dataclasses.dataclass(frozen=True)
class InferenceConfig:
  """Settings of schema inference, each field's help in its metadata (`configs.field`).

  An invalid value raises `configs.ConfigError` naming the field.
  """

  # --actions is pipelines.kuairand's flag (another default): one absl flag per name per process.
  actions: Tuple[str, ...] = configs.field(
    (),
    "The conversion actions, in order: NAME (its labels in column label_NAME) or NAME=COLUMN.",
    flag="log_actions",
  )
  ad_task: str = configs.field(schema_lib.AD_TASK_ID, "Column of the ad task ids (integers).")
  target: str = configs.field(
    schema_lib.TARGET_ACTION,
    "Column of the target action: indices into --actions (-1: Other) or action names.",
  )
  day: str = configs.field(schema_lib.DAY, "Column of the integer day index (unless --timestamp).")
  timestamp: Optional[str] = configs.field(
    None, "Column of a timestamp the day comes from (floor(ts / 1 day), UTC); overrides --day."
  )
  timestamp_unit: str = configs.field(
    "s", "Unit of a numeric --timestamp column.", choices=tuple(TIMESTAMP_UNITS)
  )
  ignore: Tuple[str, ...] = configs.field((), "Columns that are not features.")
  dense: Tuple[str, ...] = configs.field(
    (), "Integer columns that are dense features (counts, amounts), not ids."
  )
  ad_task_feature: bool = configs.field(
    True, "Also feed the ad task id to the model as a sparse feature."
  )
  vocabulary_max: int = configs.field(
    100, "Ids with at most this many distinct values get a vocabulary; more are hashed."
  )
  bucket_factor: float = configs.field(
    2.0, "Hash buckets per distinct id (a non-negative integer id gets max + 1 if fewer)."
  )
  embedding_scale: float = configs.field(
    6.0, "Embedding width = round(scale * cardinality ** 0.25), clipped to [min, max]."
  )
  embedding_min: int = configs.field(4, "Smallest embedding width.")
  embedding_max: int = configs.field(64, "Largest embedding width.")
  log1p: str = configs.field(
    "off",
    "Dense transform: off (identity), or auto: log1p where the skewness exceeds --log1p_skewness.",
    choices=LOG1P_MODES,
  )
  log1p_skewness: float = configs.field(
    2.0, "Skewness (g1) above which --log1p=auto transforms a dense feature."
  )
  max_values: int = configs.field(
    0, "Length of a multi-valued feature's lists: 0 for the longest observed (at least 2)."
  )
  combiner: str = configs.field(
    "mean", "Combiner of multi-valued features.", choices=schema_lib.COMBINERS
  )
  sample_rows: Optional[int] = configs.field(
    None, "Read at most this many rows of the logs (the first ones, in sorted file order)."
  )

  def __post_init__(self):
    object.__setattr__(self, "actions", tuple(self.actions))
    object.__setattr__(self, "ignore", tuple(self.ignore))
    object.__setattr__(self, "dense", tuple(self.dense))
    if not self.actions:
      raise _config_error("actions", "name at least one conversion action")
    names = [name for name, _ in self.label_columns]
    if len(set(names)) != len(names) or not all(names):
      raise _config_error("actions", f"names must be distinct and non-empty, got {names}")
    if self.timestamp_unit not in TIMESTAMP_UNITS:
      raise _config_error("timestamp_unit", f"must be one of {list(TIMESTAMP_UNITS)}")
    if self.log1p not in LOG1P_MODES:
      raise _config_error("log1p", f"must be one of {list(LOG1P_MODES)}, got {self.log1p!r}")
    if self.combiner not in schema_lib.COMBINERS:
      raise _config_error("combiner", f"must be one of {list(schema_lib.COMBINERS)}")
    for name in ("vocabulary_max", "max_values"):
      if getattr(self, name) < 0:
        raise _config_error(name, f"must be >= 0, got {getattr(self, name)}")
    if self.max_values == 1:
      raise _config_error("max_values", "a list column needs at least 2 (or 0: observed)")
    if not 1 <= self.embedding_min <= self.embedding_max:
      raise _config_error("embedding_min", "need 1 <= --embedding_min <= --embedding_max")
    for name in ("bucket_factor", "embedding_scale"):
      if not getattr(self, name) > 0:
        raise _config_error(name, f"must be > 0, got {getattr(self, name)}")
    if self.sample_rows is not None and self.sample_rows < 1:
      raise _config_error("sample_rows", f"must be >= 1, got {self.sample_rows}")

  @property
  def label_columns(self) -> Tuple[Tuple[str, str], ...]:
    """(action name, label column) pairs, in action order."""
    return tuple(_split_action(item) for item in self.actions)

  @property
  def action_names(self) -> Tuple[str, ...]:
    return tuple(name for name, _ in self.label_columns)

  @property
  def day_column(self) -> str:
    """The column the day comes from: the timestamp's when given, else the day's."""
    return self.timestamp or self.day


def _config_error(name: str, detail: str) -> configs.ConfigError:
  return configs.ConfigError.of(InferenceConfig, name, detail)


@dataclasses.dataclass(frozen=True)
class Inference:
  """What `infer` decided.

  Attributes:
    schema: The inferred schema.
    report: JSON-able: per column, the mapping, dropped and undecided columns (module
      docstring).
  """

  schema: schema_lib.Schema
  report: Dict[str, Any]

  @property
  def warnings(self) -> List[str]:
    """One line per dropped or undecided column, for the job's log."""
    return list(self.report["warnings"])


def infer(table: pa.Table, config: InferenceConfig) -> Inference:
  """Infers the schema of the logs in `table` (module docstring).

  Args:
    table: The logs, a column per log field, `n` rows.
    config: Column names and inference rules.

  Returns:
    The `Inference`: schema and report.

  Raises:
    InferenceError: naming the column, for a missing named column, a label that is not 0/1,
      a null ad task, target or day, a target index outside [-1, N) or an ad task column that
      does not hold integers.
  """
  _require_columns(table, config)
  if table.num_rows == 0:
    raise InferenceError("the logs have no rows: nothing to infer a schema from")
  report: Dict[str, Any] = {"rows": table.num_rows, "columns": {}, "warnings": []}
  keys = _key_columns(table, config, report)
  truth = _true_label_columns(table, config, report)
  taken = set(keys.values()) | set(truth.values())
  sparse, dense = [], []
  if config.ad_task_feature:
    entry = report["columns"][config.ad_task]
    entry["feature"] = {"name": schema_lib.AD_TASK_ID}
    sparse.append(
      _sparse(schema_lib.AD_TASK_ID, table.column(config.ad_task), config, entry["feature"])
    )
  reserved = _reserved_names(config)
  for name in table.column_names:
    if name in taken:
      continue
    column = _decoded(table.column(name))
    entry = report["columns"].setdefault(name, _describe(column))
    if name in config.ignore:
      entry["role"] = "ignored"
    elif name in reserved:
      _undecided(report, name, "its name is a key or label field's: rename it or --ignore it")
    else:
      feature = _feature(name, column, config, entry, report)
      if isinstance(feature, schema_lib.SparseFeature):
        sparse.append(feature)
      elif isinstance(feature, schema_lib.DenseFeature):
        dense.append(feature)
  target_names = report["columns"][config.target]["encoding"] == "names"
  schema = schema_lib.Schema(
    actions=config.action_names,
    sparse_features=tuple(sparse),
    dense_features=tuple(dense),
    has_true_labels=bool(truth),
    columns=schema_lib.ColumnMapping(
      fields={**keys, **truth},
      target_names=target_names,
      timestamp_unit=config.timestamp_unit if config.timestamp else None,
    ),
  )
  report["mapping"] = {**keys, **truth}
  report["dropped_constant"] = sorted(
    n for n, e in report["columns"].items() if e.get("role") == "dropped"
  )
  report["undecided"] = sorted(
    n for n, e in report["columns"].items() if e.get("role") == "undecided"
  )
  return Inference(schema, report)


def _require_columns(table: pa.Table, config: InferenceConfig) -> None:
  named = [
    ("--ad_task", config.ad_task),
    ("--target", config.target),
    ("--timestamp" if config.timestamp else "--day", config.day_column),
  ] + [("--log_actions", column) for _, column in config.label_columns]
  missing = [(flag, c) for flag, c in named if c not in table.column_names]
  if missing:
    listed = ", ".join(f"{c!r} ({flag})" for flag, c in missing)
    raise InferenceError(
      f"the logs have no column {listed}; their columns are {table.column_names}"
    )


def _reserved_names(config: InferenceConfig) -> set:
  names = set(schema_lib.KEY_FIELDS) | {schema_lib.HKE_INDICATOR}
  for action in config.action_names:
    names |= {schema_lib.LABEL_PREFIX + action, schema_lib.TRUE_LABEL_PREFIX + action}
  return names


# ------------------------------------------------------------------------------------------
# Key fields and labels.
# ------------------------------------------------------------------------------------------


def _key_columns(table: pa.Table, config: InferenceConfig, report) -> Dict[str, str]:
  """Checks the key and label columns; returns {canonical field: log column}."""
  columns = report["columns"]
  ad_task = table.column(config.ad_task)
  _no_nulls(ad_task, config.ad_task, "ad task")
  if not (pa.types.is_integer(ad_task.type)):
    raise InferenceError(
      f"column {config.ad_task!r} (--ad_task): ad task ids must be integers, got {ad_task.type}"
    )
  columns[config.ad_task] = _describe(ad_task) | {"role": schema_lib.AD_TASK_ID}
  columns[config.target] = _target(table.column(config.target), config, report)
  columns[config.day_column] = _day(table.column(config.day_column), config)
  mapping = {
    schema_lib.AD_TASK_ID: config.ad_task,
    schema_lib.TARGET_ACTION: config.target,
    schema_lib.DAY: config.day_column,
  }
  for action, name in config.label_columns:
    columns[name] = _label(table.column(name), name, action, "label")
    mapping[schema_lib.LABEL_PREFIX + action] = name
  return mapping


def _no_nulls(column: pa.ChunkedArray, name: str, what: str) -> None:
  if column.null_count:
    first = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
    raise InferenceError(
      f"column {name!r} ({what}): {column.null_count} null value(s), the first in row {first}"
    )


def _label(column: pa.ChunkedArray, name: str, action: str, what: str) -> Dict[str, Any]:
  _no_nulls(column, name, f"{what} of {action}")
  numeric = pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
  if not (numeric or pa.types.is_boolean(column.type)):
    raise InferenceError(
      f"column {name!r} ({what} of {action}): labels must be 0/1, got type {column.type}"
    )
  values = column.to_numpy().astype(np.float64)
  bad = np.flatnonzero((values != 0) & (values != 1))
  if len(bad):
    raise InferenceError(
      f"column {name!r} ({what} of {action}): labels must be 0/1, got {values[bad[0]]:g} in "
      f"row {int(bad[0])} ({len(bad)} such rows)"
    )
  return _describe(column) | {"role": what, "action": action, "rate": float(values.mean())}


def _target(column: pa.ChunkedArray, config: InferenceConfig, report) -> Dict[str, Any]:
  name, actions = config.target, config.action_names
  _no_nulls(column, name, "target")
  entry = _describe(_decoded(column)) | {"role": schema_lib.TARGET_ACTION}
  if pa.types.is_integer(column.type):
    values = column.to_numpy()
    bad = np.flatnonzero((values < schema_lib.OTHER_TARGET) | (values >= len(actions)))
    if len(bad):
      raise InferenceError(
        f"column {name!r} (target): {int(values[bad[0]])} in row {int(bad[0])} is not an "
        f"action index in [-1, {len(actions)})"
      )
    entry["encoding"] = "indices"
  elif _is_text(column.type):
    names = _decoded(column)
    counts = pc.value_counts(names).to_pylist()
    unknown = {c["values"]: c["counts"] for c in counts if c["values"] not in actions}
    entry |= {"encoding": "names", "unknown_names": dict(sorted(unknown.items()))}
    if unknown:
      report["warnings"].append(
        f"column {name!r} (target): {sum(unknown.values())} rows name no action "
        f"({sorted(unknown)[:10]}): their target is -1 (Other)"
      )
  else:
    raise InferenceError(
      f"column {name!r} (target): expected action indices or names, got type {column.type}"
    )
  return entry


def _day(column: pa.ChunkedArray, config: InferenceConfig) -> Dict[str, Any]:
  flag = "--timestamp" if config.timestamp else "--day"
  name = config.day_column
  _no_nulls(column, name, flag[2:])
  entry = _describe(column) | {"role": schema_lib.DAY}
  if config.timestamp:
    days = timestamp_days(column, config.timestamp_unit, name)
    entry["derived"] = f"floor(timestamp / 86400 s), UTC; timestamp unit {config.timestamp_unit}"
  elif pa.types.is_integer(column.type):
    days = column.to_numpy()
  else:
    raise InferenceError(
      f"column {name!r} (day): expected integer day indices, got type {column.type} "
      "(use --timestamp for a time column)"
    )
  entry["days"] = [int(days.min()), int(days.max())]
  return entry


def timestamp_days(column: pa.ChunkedArray, unit: str, name: str) -> np.ndarray:
  """(n,) int64 UTC day indices floor(ts / 1 day) of a numeric or arrow timestamp column.

  Raises:
    InferenceError: naming `name` when the column holds neither.
  """
  if pa.types.is_timestamp(column.type):
    seconds = column.cast(pa.timestamp("s", tz=column.type.tz)).cast(pa.int64()).to_numpy()
    return np.floor_divide(seconds, SECONDS_PER_DAY)
  if pa.types.is_integer(column.type):
    return np.floor_divide(column.to_numpy(), SECONDS_PER_DAY * TIMESTAMP_UNITS[unit])
  if pa.types.is_floating(column.type):
    per_day = SECONDS_PER_DAY * TIMESTAMP_UNITS[unit]
    return np.floor(column.to_numpy() / per_day).astype(np.int64)
  raise InferenceError(f"column {name!r} (timestamp): expected numbers, got type {column.type}")


def _true_label_columns(table: pa.Table, config: InferenceConfig, report) -> Dict[str, str]:
  """{true_label_<action>: column} when every action has one; {} and a warning otherwise."""
  wanted = {a: TRUE_PREFIX + column for a, column in config.label_columns}
  present = {a: c for a, c in wanted.items() if c in table.column_names}
  if present and len(present) < len(wanted):
    missing = sorted(set(wanted.values()) - set(present.values()))
    report["warnings"].append(
      f"true labels only for {sorted(present)} (no column {missing}): has_true_labels=false"
    )
    for column in present.values():
      _undecided(report, column, "true labels need a column for every action")
    return {}
  found = {}
  for action, column in present.items():
    report["columns"][column] = _label(table.column(column), column, action, "true_label")
    found[schema_lib.TRUE_LABEL_PREFIX + action] = column
  return found


# ------------------------------------------------------------------------------------------
# Features.
# ------------------------------------------------------------------------------------------


def _is_text(arrow_type: pa.DataType) -> bool:
  return (
    pa.types.is_string(arrow_type)
    or pa.types.is_large_string(arrow_type)
    or pa.types.is_binary(arrow_type)
    or pa.types.is_large_binary(arrow_type)
  )


def _is_list(arrow_type: pa.DataType) -> bool:
  return pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type)


def _decoded(column: pa.ChunkedArray) -> pa.ChunkedArray:
  """Dictionary columns as their values, binary as UTF-8 text when it decodes."""
  if pa.types.is_dictionary(column.type):
    column = column.cast(column.type.value_type)
  for binary, text in ((pa.binary(), pa.string()), (pa.large_binary(), pa.large_string())):
    if column.type == binary or (_is_list(column.type) and column.type.value_type == binary):
      target = pa.list_(text) if _is_list(column.type) else text
      try:
        column = column.cast(target)
      except pa.ArrowInvalid:
        pass  # not UTF-8: the ids stay bytes, hashed as such
  return column


def _describe(column: pa.ChunkedArray) -> Dict[str, Any]:
  n = max(len(column), 1)
  entry = {"type": str(column.type), "null_share": column.null_count / n}
  values = pc.list_flatten(column) if _is_list(column.type) else column
  try:
    entry["cardinality"] = int(pc.count_distinct(values, mode="only_valid").as_py())
  except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
    pass  # nested or exotic types: left undecided by `_feature`
  return entry


def _undecided(report, name: str, reason: str) -> None:
  report["columns"].setdefault(name, {}).update(role="undecided", reason=reason)
  report["warnings"].append(f"column {name!r} left out: {reason}")


def _feature(name, column, config, entry, report):
  """The feature of column `name`, or None (dropped or undecided, said in the report)."""
  arrow_type = column.type
  if _is_list(arrow_type):
    value_type = arrow_type.value_type
    if not (pa.types.is_integer(value_type) or _is_text(value_type)):
      return _undecided(report, name, f"a list of {value_type}: only lists of ids are features")
  elif pa.types.is_floating(arrow_type) or (
    name in config.dense and (pa.types.is_integer(arrow_type) or pa.types.is_boolean(arrow_type))
  ):
    return _dense(name, column, config, entry, report)
  elif not (
    pa.types.is_integer(arrow_type) or pa.types.is_boolean(arrow_type) or _is_text(arrow_type)
  ):
    return _undecided(report, name, f"type {arrow_type} is neither ids nor floats")
  if entry["cardinality"] <= 1:
    return _dropped(report, name, entry)
  return _sparse(name, column, config, entry, report)


def _dropped(report, name: str, entry: Dict[str, Any]) -> None:
  entry["role"] = "dropped"
  entry["reason"] = "constant: at most one distinct value"
  report["warnings"].append(f"column {name!r} dropped: it is constant")


def _dense(name, column, config, entry, report) -> Optional[schema_lib.DenseFeature]:
  values = column.drop_null().cast(pa.float64()).to_numpy()
  finite = values[np.isfinite(values)]
  if len(finite) < len(values):
    entry["non_finite"] = int(len(values) - len(finite))
    report["warnings"].append(
      f"column {name!r}: {entry['non_finite']} NaN or infinite values (validation refuses them)"
    )
  if len(finite) == 0 or finite.min() == finite.max():
    return _dropped(report, name, entry)
  skewness = _skewness(finite)
  transform = "log1p" if config.log1p == "auto" and skewness > config.log1p_skewness else "identity"
  if transform == "log1p":
    finite = np.sign(finite) * np.log1p(np.abs(finite))
  mean, std = float(finite.mean()), float(finite.std())
  entry.update(role="dense", skewness=skewness, transform=transform, mean=mean, std=std)
  return schema_lib.DenseFeature(name=name, mean=mean, std=std, transform=transform)


def _skewness(x: np.ndarray) -> float:
  """Fisher-Pearson g1 = m3 / m2^1.5 (0 for constant values)."""
  centred = x - x.mean()
  m2 = float(np.mean(centred**2))
  return float(np.mean(centred**3) / m2**1.5) if m2 > 0 else 0.0


def _sparse(name, column, config, entry, report=None) -> schema_lib.SparseFeature:
  column = _decoded(column)
  multivalued = _is_list(column.type)
  values = pc.list_flatten(column) if multivalued else column
  if pa.types.is_boolean(values.type):
    values = values.cast(pa.int64())
  dtype = "string" if _is_text(values.type) else "int64"
  distinct = pc.unique(values.drop_null()).to_pylist()
  settings: Dict[str, Any] = {"dtype": dtype}
  if multivalued:
    settings |= _list_settings(name, column, values, dtype, config, entry, report)
    distinct = [v for v in distinct if v != settings["pad_value"]]
    del settings["pad_value"]
  cardinality = len(distinct)
  if 0 < cardinality <= config.vocabulary_max:
    settings["vocabulary"] = tuple(sorted(distinct))
  else:
    settings["num_buckets"] = _num_buckets(distinct, dtype, config)
  settings["embedding_dim"] = embedding_dim(cardinality, config)
  entry.update(
    role="sparse", **{k: list(v) if k == "vocabulary" else v for k, v in settings.items()}
  )
  return schema_lib.SparseFeature(name=name, **settings)


def _list_settings(name, column, values, dtype, config, entry, report) -> Dict[str, Any]:
  """max_values and combiner of a list column; its bad values counted in the report."""
  lengths = pc.fill_null(pc.list_value_length(column), 0).to_numpy()
  longest = int(lengths.max()) if len(lengths) else 0
  max_values = config.max_values or max(longest, 2)
  pad = -1 if dtype == "int64" else ""
  entry.update(
    longest_list=longest,
    max_values_rule="set by --max_values" if config.max_values else "the longest list observed",
  )
  problems = {
    "lists_longer_than_max_values": int(np.sum(lengths > max_values)),
    "null_elements": int(values.null_count),
    "pad_value_ids": _count_equal(values, pad),
  }
  for what, count in problems.items():
    if count:
      entry[what] = count
      report["warnings"].append(
        f"column {name!r}: {count} {what.replace('_', ' ')} (bad records for validation)"
      )
  return {"max_values": max_values, "combiner": config.combiner, "pad_value": pad}


def _count_equal(values: pa.ChunkedArray, value: Any) -> int:
  try:
    return int(pc.sum(pc.equal(values, pa.scalar(value, values.type))).as_py() or 0)
  except (pa.ArrowInvalid, OverflowError):
    return 0  # e.g. -1 in an unsigned column: no such value


def _num_buckets(distinct: List[Any], dtype: str, config: InferenceConfig) -> int:
  budget = max(1, math.ceil(config.bucket_factor * len(distinct)))
  if dtype == "int64" and distinct and min(distinct) >= 0 and max(distinct) + 1 <= budget:
    return int(max(distinct)) + 1
  return budget


def embedding_dim(cardinality: int, config: InferenceConfig) -> int:
  """round(embedding_scale * cardinality ** 0.25), clipped to [embedding_min, embedding_max]."""
  width = round(config.embedding_scale * max(cardinality, 1) ** 0.25)
  return int(min(max(width, config.embedding_min), config.embedding_max))


def mapping_of(report: Mapping[str, Any]) -> Dict[str, str]:
  """{canonical field: log column} of a report (`Inference.report["mapping"]`)."""
  return dict(report["mapping"])
