"""Any multi-label table -> incomplete logs, by the paper's public-data protocol.

`write_incomplete` reads the table (`table`), draws each group's target and reported labels
(`groups`, `draws`), splits the rows by time or at random and gives them days (`split`,
`days`), asks the injected `infer_schema` for the schema of the canonical train table, and
writes train / test logs, `schema.json` and `incomplete.json` (`write_converted`, which the
KuaiRand conversion uses too).

Canonical columns, the table `infer_schema` sees and the logs hold: `ad_task_id` (see
`groups`), `target_action` (the group's target, an index into the labels), `day`,
`label_<a>` (reported), `true_label_<a>` (complete) and every other input column as a feature
under its own name (the group and time columns are not features).
"""

import dataclasses
import time as time_lib
from typing import Any, Callable, Dict

from absl import logging
import numpy as np
import pyarrow as pa

from kaml_tf import schema as schema_lib
from kaml_tf.datasets import output
from kaml_tf.datasets.incomplete import columns as columns_lib
from kaml_tf.datasets.incomplete import days as days_lib
from kaml_tf.datasets.incomplete import draws
from kaml_tf.datasets.incomplete import groups as groups_lib
from kaml_tf.datasets.incomplete import report as report_lib
from kaml_tf.datasets.incomplete import split as split_lib
from kaml_tf.datasets.incomplete import table as table_lib
from kaml_tf.datasets.incomplete.config import IncompleteConfig
from kaml_tf.datasets.incomplete.errors import ConversionError

REPORT_FILE = "incomplete.json"
# The schema of the canonical train table (injected: schema inference in the job).
SchemaFn = Callable[[pa.Table], schema_lib.Schema]


@dataclasses.dataclass(frozen=True)
class ConvertedLog:
  """A conversion's result in memory.

  Attributes:
    schema: The logs' schema (`has_true_labels=True`).
    splits: `TRAIN` / `TEST` -> record columns keyed like `schema.record_dtypes()`, each
      (rows,) (or (rows, max_values)) in time order.
    source_rows: `TRAIN` / `TEST` -> (rows,) int64 index of each record's input row.
    report: The data report.
  """

  schema: schema_lib.Schema
  splits: Dict[str, Dict[str, np.ndarray]]
  source_rows: Dict[str, np.ndarray]
  report: Dict[str, Any]


def canonical_table(actions, labels: draws.Labels, day: np.ndarray, features: pa.Table) -> pa.Table:
  """Every input row with the canonical columns (see the module docstring), input order."""
  data = {
    schema_lib.AD_TASK_ID: groups_lib.ad_task_ids(labels.groups, labels.group_row),
    schema_lib.TARGET_ACTION: labels.target,
    schema_lib.DAY: day,
  }
  data.update({name: features[name] for name in features.column_names})
  for j, a in enumerate(actions):
    data[schema_lib.LABEL_PREFIX + a] = labels.labels[:, j]
  for j, a in enumerate(actions):
    data[schema_lib.TRUE_LABEL_PREFIX + a] = labels.truth[:, j]
  return pa.table(data)


def _times_and_days(config: IncompleteConfig, table: table_lib.InputTable):
  """((n,) times to split by, (n,) int64 days, the day rule in words)."""
  n = table.truth.shape[0]
  if config.time:
    times, per_day = days_lib.time_values(table.time, config.time_unit, config.time)
    rule = f"days since the first day of time column {config.time!r} ({per_day} units a day)"
    return times, days_lib.days_from_time(times, per_day), rule
  ranks = split_lib.random_ranks(n, config.seed)
  cut = split_lib.train_rows(n, config.test_fraction)
  return (
    ranks,
    days_lib.pseudo_days(ranks, cut, config.pseudo_days),
    days_lib.pseudo_day_rule(config.pseudo_days),
  )


def convert(config: IncompleteConfig, infer_schema: SchemaFn) -> ConvertedLog:
  """Converts the table of `config` in memory.

  Args:
    config: The conversion.
    infer_schema: The schema of the canonical train table (its actions must be the labels).

  Raises:
    ConversionError: for a malformed table (naming file, column and row), an empty split, or
      a schema of other actions.
  """
  table = table_lib.check_table(
    table_lib.read_table(config.input_path),
    config.input_path,
    config.labels,
    config.group,
    config.time,
  )
  labels = draws.label_rows(table.groups, table.truth, config.reported_extra, config.seed)
  times, day, rule = _times_and_days(config, table)
  split = split_lib.split_rows(
    times, table.truth, config.test_fraction, config.negative_keep_rate, True, config.seed
  )
  canonical = canonical_table(config.labels, labels, day, table.features)
  schema = infer_schema(canonical.take(split.source_rows[output.TRAIN]))
  if schema.actions != config.labels:
    raise ConversionError(
      f"the schema's actions {list(schema.actions)} are not the labels {list(config.labels)}"
    )
  # The protocol's point is the ground truth beside the reported labels.
  schema = dataclasses.replace(schema, has_true_labels=True)
  splits = {
    name: columns_lib.record_columns(canonical.take(rows), schema, rows)
    for name, rows in split.source_rows.items()
  }
  report = report_lib.build_report(config, table.features.column_names, labels, split, day, rule)
  return ConvertedLog(schema=schema, splits=splits, source_rows=split.source_rows, report=report)


def write_converted(
  converted: ConvertedLog,
  config: Any,
  output_dir: str,
  report_file: str,
  num_shards: int,
  compression: str,
) -> Dict[str, Any]:
  """Writes the splits (one contiguous block of rows per shard), `schema.json` and the report.

  Returns:
    The report file's content (`output.write_summary`).
  """
  batches = (
    (split, block)
    for split, columns in converted.splits.items()
    for block in output.blocks(columns, num_shards)
  )
  files = output.write_splits(converted.schema, output_dir, batches, num_shards, compression)
  return output.write_summary(
    output_dir,
    report_file,
    converted.schema,
    config,
    converted.report,
    files,
    num_shards,
    compression,
  )


def write_incomplete(
  config: IncompleteConfig,
  infer_schema: SchemaFn,
  output_dir: str,
  num_shards: int = 1,
  compression: str = "",
) -> Dict[str, Any]:
  """Converts and writes `train-*`, `test-*`, `schema.json` and `incomplete.json`.

  Nothing is written unless the whole table converts: every check runs first, the shards are
  renamed into place together, then the schema and the report.

  Args:
    config: The conversion.
    infer_schema: See `convert`.
    output_dir: Destination folder (created if missing).
    num_shards: Shards per split.
    compression: "" or "GZIP".

  Returns:
    The content of `incomplete.json`: `config`, `output` and `report` (`report`).

  Raises:
    ConversionError: for bad input (see `convert`).
    ValueError: if `num_shards` < 1 or `compression` is not "" or "GZIP".
    FileExistsError: if `output_dir` holds log shards this run would not overwrite.
  """
  output.check_destination(output_dir, num_shards, compression)
  start_time = time_lib.time()
  converted = convert(config, infer_schema)
  summary = write_converted(converted, config, output_dir, REPORT_FILE, num_shards, compression)
  logging.info(
    "converted %s into %s in %.1f s\n%s",
    config.input_path,
    output_dir,
    time_lib.time() - start_time,
    report_lib.format_report(converted.report),
  )
  return summary
