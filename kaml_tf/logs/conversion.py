"""Converts logs between the two log formats: TFRecord (`tf.train.Example`) and Parquet.

Parquet logs train faster (see `kaml_tf.logs.parquet`); TFRecord logs are what TF
Serving's warm-up and the export read. Every record field of the schema is carried over
(features, ad task, day, target, labels and true labels when the schema has them; a
multi-valued feature's lists as lists, empty ones included), in record order, checked on the way like any other read (`validation.checked_batches`), and written to
sharded files atomically: a killed conversion leaves no output shard behind.
"""

import dataclasses
from typing import Callable, Dict, List, Optional, Sequence, Union

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import numpy as np

from kaml_tf import configs
from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.logs import parquet as parquet_logs
from kaml_tf.data import stats as stats_lib
from kaml_tf.logs import validation

TFRECORD = stats_lib.TFRECORD_FORMAT
PARQUET = stats_lib.PARQUET_FORMAT
FORMATS = (TFRECORD, PARQUET)


@dataclasses.dataclass(frozen=True)
class ConversionConfig:
  """What to write, each field's help in its metadata (`configs.field`); an invalid value
  raises `configs.ConfigError` naming the field."""

  output_prefix: str = configs.field(
    help="Output shards: <prefix>-00000-of-0000N.<format suffix> (.parquet, .tfrecord[.gz])."
  )
  to_format: str = configs.field(PARQUET, "Output log format.", choices=FORMATS)
  num_shards: int = configs.field(1, "Output files; every read batch is split evenly across them.")
  batch_size: int = configs.field(
    65536,
    "Log records per read batch; each shard gets a block (a Parquet row group) of "
    "1 / num_shards of it.",
    flag="read_batch_size",
  )
  compression: str = configs.field(
    "", 'TFRecord output only: "" or "GZIP" (Parquet compresses its columns itself).'
  )
  skip_bad_records: bool = configs.field(
    False, "Skip and count malformed records instead of failing on the first."
  )

  def __post_init__(self):
    if self.to_format not in FORMATS:
      raise _config_error("to_format", f"must be one of {FORMATS}, got {self.to_format!r}")
    for name in ("num_shards", "batch_size"):
      if getattr(self, name) < 1:
        raise _config_error(name, f"must be >= 1, got {getattr(self, name)}")
    if self.compression and self.to_format != TFRECORD:
      raise _config_error(
        "compression",
        "applies to TFRecord output only (Parquet compresses its columns itself)",
      )


def _config_error(name: str, detail: str) -> configs.ConfigError:
  return configs.ConfigError.of(ConversionConfig, name, detail)


@dataclasses.dataclass
class ConversionResult:
  """Attributes: paths written, records written, and what was skipped (or None)."""

  paths: List[str]
  records: int
  skipped: Optional[Dict[str, object]]


def _writer(schema: schema_lib.Schema, config: ConversionConfig) -> records.ShardedWriter:
  if config.to_format == PARQUET:
    return parquet_logs.LogWriter(schema, config.output_prefix, config.num_shards)
  return records.LogWriter(schema, config.output_prefix, config.num_shards, config.compression)


def convert_logs(
  files: Union[str, Sequence[str]],
  schema: schema_lib.Schema,
  config: ConversionConfig,
  progress: Optional[Callable[[int], None]] = None,
) -> ConversionResult:
  """Reads `files` (either format) and writes their records in `config.to_format`.

  Args:
    files: Glob, comma-separated globs or paths of the input logs.
    schema: Their schema (every record field is copied).
    config: Output format, prefix and shards.
    progress: Called with the records written so far after every batch.

  Returns:
    The shards written, the record count and the skipped records' tally.

  Raises:
    records.LogError: naming file, record and field of a malformed record (unless
      skipping), or when no record was read.
  """
  # Multi-valued features parse as lists, checked and padded (`validation`); the writers
  # store each row's ids again.
  spec = schema.parse_spec()
  bad = validation.BadRecords() if config.skip_bad_records else None
  with _writer(schema, config) as writer:
    for path in records.list_files(files):
      for _, columns in validation.checked_batches(path, schema, spec, config.batch_size, bad):
        # One slice per shard of every batch: shards stay within a batch of each other.
        n = len(next(iter(columns.values())))
        for shard_rows in np.array_split(np.arange(n), config.num_shards):
          writer.write({k: v[shard_rows] for k, v in columns.items()})
        if progress is not None:
          progress(writer.rows_written)
    if not writer.rows_written:
      raise records.LogError(f"no usable records in the logs {files!r}")
  if bad is not None:
    bad.log("convert_logs")
  return ConversionResult(
    writer.paths, writer.rows_written, bad.to_dict() if bad is not None else None
  )
