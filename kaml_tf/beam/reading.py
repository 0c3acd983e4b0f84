"""Log files read by Beam workers as checked column batches, one file per worker at a time.

The file list is expanded once, on the launching machine (`records.list_files`, as the local
jobs do: the same files in the same order), and each file is read whole by one worker with
the library's own checked reader (`kaml_tf.logs.validation`): the same batches, the same
errors naming file, record and field, the same `BadRecords` tally per file. Record indices
are what those messages need, and Beam's `ReadFromTFRecord` / `ReadFromParquet` give none
(nor a way to count a corrupt tail or an empty file instead of failing), so files, not
records, are the unit of parallelism. The files are read through `tf.io` and pyarrow, which
read `gs://` and HDFS paths as well as local ones.

A job subclasses `CheckedFiles`: `start` makes its per-file value, `fold` adds a batch to it
(and may yield elements for the main output); each file's `Outcome` goes to the `OUTCOME`
output, and `read_checked` returns both with the outcomes merged into one.
"""

import abc
from typing import Any, Iterable, Iterator, List, Mapping, Tuple, Union

import apache_beam as beam
import numpy as np
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.beam import outcome as outcome_lib
from kaml_tf.logs import records
from kaml_tf.logs import validation

OUTCOME = "outcome"
Columns = Mapping[str, np.ndarray]


class CheckedFiles(beam.DoFn, abc.ABC):
  """Reads `(file index, path)` elements as checked batches; subclasses fold them.

  Args:
    schema: The logs' schema (value checks, the logs' column names).
    spec: The fields to parse (`validation.checked_batches`).
    batch_size: Records per read batch.
    skip: `--skip_bad_records`: count bad records instead of stopping at the first.
  """

  def __init__(
    self,
    schema: schema_lib.Schema,
    spec: validation.Spec,
    batch_size: int,
    skip: bool,
  ):
    super().__init__()
    self._schema = schema
    self._spec = spec
    self._batch_size = batch_size
    self._skip = skip

  @abc.abstractmethod
  def start(self) -> Any:
    """A new partial value for one file (with a `merge` method)."""

  @abc.abstractmethod
  def fold(self, value: Any, columns: Columns) -> Iterable[Any]:
    """Adds a batch of good rows to `value`; yields main-output elements, if any."""

  def process(self, element: Tuple[int, str]) -> Iterator[Any]:
    index, path = element
    bad = validation.BadRecords() if self._skip else None
    value, rows, error = self.start(), 0, None
    batches = validation.checked_batches(path, self._schema, self._spec, self._batch_size, bad)
    try:
      for _, columns in batches:
        rows += len(next(iter(columns.values())))
        yield from self.fold(value, columns) or ()
    except validation.BadRecordError as e:
      error = (index, e.problem)
    except records.LogError as e:
      error = (index, str(e))
    tallies = {index: bad} if bad is not None else {}
    yield beam.pvalue.TaggedOutput(OUTCOME, outcome_lib.Outcome(value, rows, tallies, error))


def scalar_spec(fields: Mapping[str, Any]) -> validation.Spec:
  """The parse spec of single-valued fields (as `stats.iter_log_batches` parses them)."""
  return {k: tf.io.FixedLenFeature([], d) for k, d in fields.items()}


def read_checked(
  pipeline: beam.Pipeline, files: Union[str, List[str]], reader: CheckedFiles
) -> Tuple[beam.PCollection, beam.PCollection]:
  """Reads the logs with `reader` on the workers.

  Returns:
    (the main output of `reader.fold`, a PCollection of one merged `Outcome`).

  Raises:
    FileNotFoundError: when a pattern matches nothing (at construction, as the local jobs).
  """
  paths = records.list_files(files)
  outputs = (
    pipeline
    | "ListFiles" >> beam.Create(list(enumerate(paths)))
    # One file per element, spread over the workers.
    | "SpreadFiles" >> beam.Reshuffle()
    | "ReadChecked" >> beam.ParDo(reader).with_outputs(OUTCOME, main="rows")
  )
  merged = outputs[OUTCOME] | "MergeOutcomes" >> beam.CombineGlobally(outcome_lib.MergeOutcomes())
  return outputs.rows, merged
