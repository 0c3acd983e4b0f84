"""`pipelines.convert_logs` as a Beam pipeline, writing with Beam's own Parquet/TFRecord sinks.

The workers read the log files (`reading`: checked as the local job checks them) and encode
each batch of good rows as the library's writers do (`parquet.TableEncoder`,
`records.ExampleEncoder`); Beam's `WriteToParquetBatched` / `WriteToTFRecord` write them to
`<prefix>-SSSSS-of-NNNNN.<suffix>`, the local job's shard names (each batch split evenly
across the shards, as locally), each shard through a
temporary file renamed into place. The rows and the schema equal the local job's; the order
of rows across and within shards does not (the shards are filled in whatever order the
workers finish), nor do row-group sizes. A job that ends in an error (a bad record without
`--skip_bad_records`, or no usable record) deletes the shards it wrote, so that, as
locally, no output is left behind.
"""

from typing import Iterable, Sequence, Union

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from kaml_tf import schema as schema_lib
from kaml_tf.beam import execution
from kaml_tf.beam import options as options_lib
from kaml_tf.beam import reading
from kaml_tf.logs import conversion as conversion_lib
from kaml_tf.logs import parquet as parquet_logs
from kaml_tf.logs import records

# The codec of `pq.ParquetWriter`'s default, which the local job writes with.
_PARQUET_CODEC = "snappy"


class _NoValue:
  """Conversion keeps no value per file beyond the rows and the tally of its `Outcome`."""

  def merge(self, other: "_NoValue") -> "_NoValue":
    return self


class _EncodeFiles(reading.CheckedFiles):
  """Yields each batch of good rows encoded: an Arrow table, or a list of serialized records."""

  def __init__(self, schema: schema_lib.Schema, config: conversion_lib.ConversionConfig):
    super().__init__(schema, schema.parse_spec(), config.batch_size, config.skip_bad_records)
    self._parquet = config.to_format == conversion_lib.PARQUET
    self._num_shards = config.num_shards

  def setup(self):
    schema = self._schema
    self._encode = (
      parquet_logs.TableEncoder(schema) if self._parquet else records.ExampleEncoder(schema)
    )

  def start(self) -> _NoValue:
    return _NoValue()

  def fold(self, value: _NoValue, columns: reading.Columns) -> Iterable:
    # One slice per shard of every batch, as the local job: Beam's sinks deal consecutive
    # elements to the shards round-robin, so every shard gets rows of every batch.
    n = len(next(iter(columns.values())))
    for rows in np.array_split(np.arange(n), self._num_shards):
      yield self._encode({k: v[rows] for k, v in columns.items()})


def _write(encoded: beam.PCollection, schema, config: conversion_lib.ConversionConfig):
  if config.to_format == conversion_lib.PARQUET:
    return encoded | "WriteParquet" >> beam.io.WriteToParquetBatched(
      config.output_prefix,
      schema=parquet_logs.TableEncoder(schema).arrow_schema,
      codec=_PARQUET_CODEC,
      file_name_suffix=parquet_logs.PARQUET_SUFFIX,
      num_shards=config.num_shards,
    )
  gzip = config.compression == "GZIP"
  suffix = records.TFRECORD_SUFFIX + (records.GZIP_SUFFIX if gzip else "")
  return (
    encoded
    | "Records" >> beam.FlatMap(lambda batch: batch)
    | "WriteTFRecord"
    >> beam.io.WriteToTFRecord(
      config.output_prefix,
      file_name_suffix=suffix,
      num_shards=config.num_shards,
      compression_type=CompressionTypes.GZIP if gzip else CompressionTypes.UNCOMPRESSED,
    )
  )


def _shard_paths(config: conversion_lib.ConversionConfig):
  if config.to_format == conversion_lib.PARQUET:
    return parquet_logs.shard_paths(config.output_prefix, config.num_shards)
  return records.shard_paths(config.output_prefix, config.num_shards, config.compression)


def convert_logs(
  files: Union[str, Sequence[str]],
  schema: schema_lib.Schema,
  config: conversion_lib.ConversionConfig,
  beam_config: options_lib.BeamConfig,
) -> conversion_lib.ConversionResult:
  """`conversion.convert_logs` on Beam: the same rows and schema, the same errors.

  Raises:
    records.LogError: naming file, record and field of a malformed record (unless
      skipping), or when no record was read; the shards written are deleted then.
  """
  reader = _EncodeFiles(schema, config)

  def build(pipeline):
    encoded, outcome = reading.read_checked(pipeline, files, reader)
    _write(encoded, schema, config)
    return outcome

  result = execution.run(beam_config, build, config.output_prefix)
  paths = _shard_paths(config)
  try:
    bad = result.checked("convert_logs", files, config.skip_bad_records)
  except records.LogError:
    FileSystems.delete([p for p in paths if FileSystems.exists(p)])
    raise
  return conversion_lib.ConversionResult(
    paths, result.rows, bad.to_dict() if bad is not None else None
  )
