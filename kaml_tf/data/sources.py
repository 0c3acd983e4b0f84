"""Where an input pipeline's records come from: its log files, checked, and one reader per format.

1. `list_logs`: the sorted files of a glob (or globs, or paths), all of one format; under
   --skip_bad_records without those that hold no readable record.
2. `pipeline_share`: an input pipeline's share of them, `files[pipeline_id::num_pipelines]`;
   with fewer files than pipelines, every pipeline reads all files and keeps every
   num_pipelines-th record (`RecordShard`).
3. `check_first_records`: the first record of every file, so a schema mismatch names its
   file before anything is read.
4. The readers: `cycle_length` files at a time, a record (or a column slice) from each in
   turn, on the pipeline's own thread unless `parallel_reads` asks for reader threads:
   `read_tfrecords` yields serialized `tf.train.Example`s, `read_parquet` yields
   `{field: (n,)}` column slices (`kaml_tf.logs.parquet`; a multi-valued feature
   `(n, max_values)`, its lists checked as `validation` does). Both drop the bad records found by
   --skip_bad_records (`bad_records`). Reading in turn costs less CPU than a parallel
   interleave on local disk (measured: docs/results/timings/input.md); reader threads pay
   off on remote storage, whose reads wait on the network.
"""

import dataclasses
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
from absl import logging
import numpy as np
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.data import bad_records as bad_records_lib
from kaml_tf.logs import multivalued
from kaml_tf.logs import columns as columns_lib
from kaml_tf.logs import parquet as parquet_logs
from kaml_tf.logs import records
from kaml_tf.logs import validation

# (path, compression, file index) -> the file's records.
Reader = Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.data.Dataset]


class DatasetError(ValueError):
  """The pipeline cannot be built as asked; the message names the file or setting.

  Public as `dataset.DatasetError`.
  """


class RecordShard(NamedTuple):
  """Keep the records whose position modulo `num_pipelines` is `pipeline_id`."""

  num_pipelines: int
  pipeline_id: int


def list_logs(
  files: Union[str, Sequence[str]], bad_records: Optional[validation.BadRecords] = None
) -> List[str]:
  """The sorted log files of `files`, all TFRecord or all Parquet.

  Args:
    files: A glob, comma-separated globs, or paths.
    bad_records: Under --skip_bad_records, the scan of the files: files without a readable
      record are left out.

  Raises:
    DatasetError: when no file is left after leaving out the unreadable ones, or when
      Parquet and TFRecord logs are mixed.
  """
  found = records.list_files(files)
  if bad_records is not None:
    found = bad_records_lib.readable_files(found, bad_records)
    if not found:
      raise DatasetError(f"no readable records in {files!r} after skipping bad records")
  if len({parquet_logs.is_parquet(p) for p in found}) > 1:
    raise DatasetError(
      f"{files!r} mixes Parquet and TFRecord logs; one "
      "pipeline reads one format (convert with pipelines.convert_logs)"
    )
  return found


def pipeline_share(
  files: List[str], input_context: Optional[tf.distribute.InputContext] = None
) -> Tuple[List[str], Optional[RecordShard]]:
  """One input pipeline's share of the sorted `files`.

  Returns:
    (files, record shard): every num_pipelines-th file from the pipeline's id and no record
    shard; with fewer files than pipelines, all the files and the shard of records to keep.
  """
  if input_context is None or input_context.num_input_pipelines <= 1:
    return files, None
  num = input_context.num_input_pipelines
  if len(files) < num:
    logging.warning(
      "%d log file(s) for %d input pipelines: every pipeline reads all files "
      "and keeps 1/%d of the records; write at least one shard per pipeline "
      "to avoid the extra reading",
      len(files),
      num,
      num,
    )
    return files, RecordShard(num, input_context.input_pipeline_id)
  return files[input_context.input_pipeline_id :: num], None


def check_first_records(
  files: Sequence[str], schema: schema_lib.Schema, spec: Dict[str, schema_lib.ParseFeature]
) -> None:
  """Checks the first record of every file, so a schema mismatch names its file early.

  Args:
    files: TFRecord or Parquet logs.
    schema: The logs' schema.
    spec: The fields the pipeline parses (`parsing.parse_spec`).

  Raises:
    validation.BadRecordError: for an empty file or a first record that does not parse.
    validation.LogError: for a Parquet file without a needed column, or with one of
      another type (a list column of a single-valued feature too).
  """
  dtypes = {k: f.dtype for k, f in spec.items()}
  widths = {k: w for k, w in multivalued.widths(schema).items() if k in spec}
  # TFRecord logs hold the fields under their own column names (`Schema.columns`).
  stored = columns_lib.log_parse_spec(schema, spec)
  for path in files:
    if parquet_logs.is_parquet(path):
      if not parquet_logs.check_file(path, dtypes, widths, schema):
        raise validation.BadRecordError(
          validation.Problem(path, None, None, validation.EMPTY_FILE, "has no records")
        )
      continue
    first = tf.data.TFRecordDataset(path, compression_type=records.compression_of(path))
    try:
      serialized = [r.numpy() for r in first.take(1)]
    except tf.errors.OpError:
      serialized = None
    found = validation.first_problem(path, schema, spec) if not serialized else None
    if found is not None:
      raise found
    problem = validation.proto_problem(serialized[0], stored)
    if problem is not None:
      raise validation.BadRecordError(validation.Problem(path, 0, *problem))


def file_dataset(files: Sequence[str]) -> tf.data.Dataset:
  """One element per file: (path, compression, index in `files`), what a `Reader` takes."""
  return tf.data.Dataset.from_tensor_slices(
    (files, [records.compression_of(p) for p in files], tf.range(len(files), dtype=tf.int64))
  )


@dataclasses.dataclass(frozen=True)
class Interleave:
  """How the files are read: `cycle_length` at a time, an element from each in turn.

  Attributes:
    cycle_length: Files read at a time.
    parallel_reads: Reader threads (tf.data.AUTOTUNE = -1 lets tf.data pick); 0 reads on the
      pipeline's own thread.
    deterministic: Keep the order of the reader threads' elements.
  """

  cycle_length: int
  parallel_reads: int
  deterministic: bool

  def __call__(self, files: tf.data.Dataset, reader: Reader) -> tf.data.Dataset:
    return files.interleave(
      reader,
      cycle_length=self.cycle_length,
      block_length=1,
      num_parallel_calls=self.parallel_reads or None,
      deterministic=self.deterministic if self.parallel_reads else None,
    )


def read_tfrecords(
  files: tf.data.Dataset,
  interleave: Interleave,
  table: Optional[bad_records_lib.BadRecordTable] = None,
  shard: Optional[RecordShard] = None,
) -> tf.data.Dataset:
  """The serialized records of TFRecord logs, without the bad ones, sharded.

  Args:
    files: `file_dataset` elements.
    interleave: How to read them.
    table: The files' bad records (indexed like `file_dataset`), or None.
    shard: Records to keep of the interleaved stream, or None for all.

  Returns:
    A dataset of scalar strings.
  """

  def read(path: tf.Tensor, kind: tf.Tensor, file_id: tf.Tensor) -> tf.data.Dataset:
    ds = tf.data.TFRecordDataset(path, compression_type=kind, buffer_size=8 << 20)
    return ds if table is None else bad_records_lib.drop_bad_records(ds, table, file_id)

  ds = interleave(files, read)
  return ds if shard is None else ds.shard(*shard)


def read_parquet(
  files: tf.data.Dataset,
  interleave: Interleave,
  dtypes: Dict[str, tf.DType],
  rows: int,
  bad_records: Optional[validation.BadRecords] = None,
  shard: Optional[RecordShard] = None,
  widths: Optional[Dict[str, int]] = None,
  schema: Optional[schema_lib.Schema] = None,
) -> tf.data.Dataset:
  """Column slices of Parquet logs, without the bad records, sharded by record in each file.

  Args:
    files: `file_dataset` elements.
    interleave: How to read them.
    dtypes: `{field: dtype}` of the columns to read.
    rows: Records per slice, at most.
    bad_records: Records to drop (`validation.scan` of the files); None: a null or a bad
      list fails the pipeline, naming its file, record and field.
    shard: Records to keep of each file, or None for all.
    widths: `{field: max_values}` of the multi-valued fields (list columns), None: none.
    schema: Translates logs with column names of their own (`Schema.columns`).

  Returns:
    A dataset of `{field: (n,)}` columns, n <= rows; `(n, max_values)` padded ids for a
    multi-valued field.
  """
  widths = dict(widths or {})
  signature = {
    k: tf.TensorSpec([None, widths[k]] if k in widths else [None], d) for k, d in dtypes.items()
  }

  def generate(path: bytes):
    path = path.decode()
    bad = bad_records_lib.bad_indices(bad_records, path)
    limit = bad_records_lib.readable_limit(bad_records, path)
    for batch in parquet_logs.read_batches(path, dtypes, rows, limit, widths, schema=schema):
      problem = validation.batch_problem(path, batch) if bad_records is None else None
      if problem is not None:
        raise validation.BadRecordError(problem)
      index = batch.first + np.arange(batch.size)
      keep = ~np.isin(index, bad)
      if shard is not None:
        keep &= index % shard.num_pipelines == shard.pipeline_id
      yield batch.columns if keep.all() else {k: v[keep] for k, v in batch.columns.items()}

  def read(path: tf.Tensor, kind: tf.Tensor, file_id: tf.Tensor) -> tf.data.Dataset:
    del kind, file_id  # Parquet compresses inside the file; bad records come by path
    return tf.data.Dataset.from_generator(generate, args=(path,), output_signature=signature)

  return interleave(files, read)
