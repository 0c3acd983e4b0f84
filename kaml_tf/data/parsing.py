"""Parsing records into columns, and the in-graph checks of their values.

`parse_spec` says which fields the pipeline reads of each record (features, ad task, target,
labels, and `day` when a day filter or a point-in-time join needs it). `RecordParser` turns a
batch of serialized `tf.train.Example`s into `{field: (n,)}` columns with one
`tf.io.parse_example` (under the logs' own column names when the schema maps them, translated
in-graph: `kaml_tf.logs.columns.LogParser`), and asserts the values `validation.value_problems` would reject
(target in [-1, N), labels 0 or 1, finite dense features); Parquet slices, already columns,
go through the same checks. A multi-valued feature parses as a list (`tf.io.RaggedFeature`),
asserted (`list_checks`: at most `max_values` ids, none equal to the pad value) and then
padded to `(n, max_values)`; Parquet slices come padded, their lists checked by the reader
(`sources.read_parquet`). A failed assertion names the field; the trainer then names the
record (`validation.first_problem`).
"""

from typing import Dict, List, Union

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.logs import columns as columns_lib

Columns = Dict[str, tf.Tensor]
ParseSpec = Dict[str, schema_lib.ParseFeature]


def parse_spec(schema: schema_lib.Schema, with_day: bool = False) -> ParseSpec:
  """What the pipeline parses of each record: features, ad task, target and labels.

  Args:
    schema: The logs' schema.
    with_day: Also the `day` field (what a day filter or a point-in-time join needs).
  """
  fields = list(schema.feature_names) + [schema_lib.AD_TASK_ID, schema_lib.TARGET_ACTION]
  if with_day:
    fields.append(schema_lib.DAY)
  fields += list(schema.label_keys)
  if schema.has_true_labels:
    fields += list(schema.true_label_keys)
  full = schema.parse_spec()
  return {k: full[k] for k in dict.fromkeys(fields)}


def value_checks(schema: schema_lib.Schema, columns: Columns) -> List[tf.Operation]:
  """In-graph assertions of `validation.value_problems` on `{field: (n,)}` columns.

  Each assertion's message names the field it checks.
  """
  target = columns[schema_lib.TARGET_ACTION]
  checks = [
    tf.debugging.assert_greater_equal(
      target,
      tf.constant(schema_lib.OTHER_TARGET, tf.int64),
      message=f"record field {schema_lib.TARGET_ACTION} must be >= -1 (-1 = Other)",
    ),
    tf.debugging.assert_less(
      target,
      tf.constant(schema.num_actions, tf.int64),
      message=f"record field {schema_lib.TARGET_ACTION} must be < "
      f"{schema.num_actions} (the actions)",
    ),
  ]
  labels = [k for k in schema.label_keys + schema.true_label_keys if k in columns]
  if labels:
    stacked = tf.stack([columns[k] for k in labels], axis=1)
    checks.append(
      tf.debugging.assert_equal(
        tf.reduce_all((stacked == 0) | (stacked == 1)),
        True,
        message="record labels must be 0 or 1",
      )
    )
  for f in schema.dense_features:
    checks.append(
      tf.debugging.assert_all_finite(
        columns[f.name], message=f"record field {f.name} must be finite"
      )
    )
  return checks


def list_checks(
  schema: schema_lib.Schema, parsed: Dict[str, Union[tf.Tensor, tf.RaggedTensor]]
) -> List[tf.Operation]:
  """In-graph assertions of `validation.list_problems` on the parsed multi-valued features.

  Each assertion's message names the field; a null id cannot occur in a TFRecord list.
  """
  checks = []
  for f in schema.multivalued_features:
    if f.name not in parsed:
      continue
    ids = parsed[f.name]
    checks.append(
      tf.debugging.assert_less_equal(
        ids.row_lengths(),
        tf.constant(f.max_values, tf.int64),
        message=f"record field {f.name} must hold at most max_values={f.max_values} ids",
      )
    )
    checks.append(
      tf.debugging.assert_equal(
        tf.reduce_any(tf.equal(ids.flat_values, f.pad_value)),
        False,
        message=f"record field {f.name} must not hold the pad value {f.pad_value!r}",
      )
    )
  return checks


class RecordParser:
  """Serialized records or raw columns -> checked `{field: (n,)}` columns of one parse spec.

  Args:
    schema: The logs' schema.
    spec: The fields to parse (see `parse_spec`).
  """

  def __init__(self, schema: schema_lib.Schema, spec: ParseSpec):
    self._schema = schema
    self._spec = dict(spec)
    self._parse_logs = columns_lib.LogParser(schema, spec)

  @property
  def spec(self) -> ParseSpec:
    return dict(self._spec)

  @property
  def dtypes(self) -> Dict[str, tf.DType]:
    """`{field: dtype}` of the parsed columns (what a Parquet reader reads)."""
    return {k: f.dtype for k, f in self._spec.items()}

  @property
  def widths(self) -> Dict[str, int]:
    """`{field: max_values}` of the multi-valued fields parsed (`(n, max_values)` columns)."""
    return {f.name: f.max_values for f in self._schema.multivalued_features if f.name in self._spec}

  def parse(self, serialized: tf.Tensor) -> Columns:
    """(n,) serialized `tf.train.Example`s -> `{field: (n,)}` columns, values asserted.

    Logs with column names of their own (`Schema.columns`) are parsed under them and
    translated in-graph (`kaml_tf.logs.columns.LogParser`). A multi-valued feature is
    `(n, max_values)`, padded once its lists are asserted.
    """
    parsed = self._parse_logs(serialized)
    features = {f.name: f for f in self._schema.multivalued_features if f.name in parsed}
    with tf.control_dependencies(list_checks(self._schema, parsed)):
      columns = {k: features[k].padded(v) if k in features else v for k, v in parsed.items()}
    return self.check(columns)

  def check(self, columns: Columns) -> Columns:
    """`{field: (n,)}` columns (multi-valued ones padded), passed on once asserted valid."""
    with tf.control_dependencies(value_checks(self._schema, columns)):
      return {k: tf.identity(v) for k, v in columns.items()}
