"""What the workers of a Beam job found in the log files, merged into one result.

A worker reads whole files; for each it reports an `Outcome`: the job's own partial value
(statistics sums, Table 1 counts, ...), the rows it read, its `BadRecords` tally under
`--skip_bad_records`, or else the first bad record that stopped it. `MergeOutcomes` combines
them (any order, any grouping); `Outcome.checked` then ends the job as the local job would:
the first error in file order is raised with the local job's message, and the tallies are
merged in file order (`BadRecords.merge`), so that counts, examples and the order of the
examples equal the local job's.
"""

import dataclasses
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import apache_beam as beam

from kaml_tf.logs import records
from kaml_tf.logs import validation

# A file's first bad record (its `Problem`), or the message of an error that is never skipped.
Failure = Union[validation.Problem, str]


@dataclasses.dataclass(frozen=True)
class Outcome:
  """The partial result of some files.

  Attributes:
    value: The job's partial value; values of disjoint files combine with `value.merge`.
    rows: Good records read.
    bad: File index -> its tally, under `--skip_bad_records` (else empty).
    error: (file index, what stopped the reading of that file): the earliest file's.
  """

  value: Any
  rows: int = 0
  bad: Dict[int, validation.BadRecords] = dataclasses.field(default_factory=dict)
  error: Optional[Tuple[int, Failure]] = None

  def merge(self, other: "Outcome") -> "Outcome":
    errors = [e for e in (self.error, other.error) if e is not None]
    return Outcome(
      value=self.value.merge(other.value),
      rows=self.rows + other.rows,
      bad={**self.bad, **other.bad},
      error=min(errors, key=lambda e: e[0]) if errors else None,
    )

  def checked(
    self, job: str, logs: Union[str, Sequence[str]], skip: bool, require_rows: bool = True
  ) -> Optional[validation.BadRecords]:
    """Raises what the local job would; else the merged tally (None without skipping).

    Args:
      job: The job's name, for the log line of the tally.
      logs: The logs as given, for the message when no record is usable.
      skip: Whether bad records were skipped.
      require_rows: Whether no usable record at all is an error.

    Raises:
      BadRecordError: naming the file, record and field of the first bad record.
      LogError: for another problem of a file, or when no record is usable.
    """
    if self.error is not None:
      failure = self.error[1]
      if isinstance(failure, validation.Problem):
        raise validation.BadRecordError(failure)
      raise records.LogError(failure)
    tally = None
    if skip:
      tally = validation.BadRecords()
      for index in sorted(self.bad):
        tally.merge(self.bad[index])
      tally.log(job)
    if require_rows and self.rows == 0:
      raise records.LogError(f"no usable records in the logs {logs!r}")
    return tally


class MergeOutcomes(beam.CombineFn):
  """Combines the `Outcome`s of every file into one."""

  def create_accumulator(self) -> Optional[Outcome]:
    return None

  def add_input(self, accumulator: Optional[Outcome], outcome: Outcome) -> Outcome:
    return outcome if accumulator is None else accumulator.merge(outcome)

  def merge_accumulators(self, accumulators) -> Optional[Outcome]:
    merged = None
    for accumulator in accumulators:
      if accumulator is not None:
        merged = self.add_input(merged, accumulator)
    return merged

  def extract_output(self, accumulator: Optional[Outcome]) -> Optional[Outcome]:
    return accumulator
