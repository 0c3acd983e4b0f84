"""Record validation: finds malformed log records and names their file, record and field.

Every job that reads logs in Python batches (statistics, Table 1 report, evaluation,
`pipelines.validate_logs`) reads each log file (TFRecord, or Parquet through
`kaml_tf.logs.parquet`) through `checked_batches`, which yields parsed numpy columns of
the records that pass every check. A record fails when

* the file cannot be read at it (`corrupt`: a bad CRC or a truncated record, or an unreadable
  Parquet row group; the rest of the file is unreadable then),
* its bytes are not a `tf.train.Example` (`unparsable`),
* a field of the job's parse spec is absent or, in Parquet, null (`missing_field`), of another kind
  (`wrong_type`, e.g. a float_list where int64 is expected) or not exactly one value
  (`wrong_shape`),
* a label is outside {0, 1} (`bad_label`), `target_action` outside [-1, N) (`bad_target`),
  or a dense value is NaN or infinite (`not_finite`);
* a multi-valued feature (`SparseFeature.max_values > 1`, parsed with a `tf.io.RaggedFeature`)
  holds more than `max_values` ids (`wrong_shape`), or an id that is null in Parquet or equal
  to the pad value, -1 or "" (`bad_id`). An empty list is valid (no ids), and so are an absent
  TFRecord key and a null Parquet list: both are the empty list. A good record's list is
  padded to `(max_values,)` (`kaml_tf.logs.multivalued`); nothing is ever cut;

and a file with no records at all is an `empty_file`. By default the first problem raises
`BadRecordError` naming the file, the record index and the field. With a `BadRecords` tally
(the jobs' `--skip_bad_records`), bad records are dropped and counted instead, the first one of
each reason kept as an example; `BadRecords.to_dict()` goes into the job's output metadata.

The fast path costs one `tf.io.parse_example` per batch (nothing, for Parquet) plus vectorised
numpy checks; records are looked at one by one (as protos, in Python) only inside a batch that
failed to parse. The bad rows the vectorised checks find (values, Parquet nulls) are reported
in bulk (`BadRows`, `BadRecords.add_rows`): only the first row of each (reason, field) of a
batch is worded, so logs with many bad rows cost no Python per row either.

The training pipeline parses in-graph (`kaml_tf.data.dataset`): it asserts the same value
checks there, and on a failure the trainer calls `first_problem` to name the record. Under
`--skip_bad_records` it scans its files first (`scan`) and filters the bad record indices
in-graph.
"""

import collections
import dataclasses
import re
from typing import Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
from absl import logging
from google.protobuf import message as proto_message
import numpy as np
import tensorflow as tf

from kaml_tf.logs import multivalued
from kaml_tf.logs import columns as columns_lib
from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.logs import parquet as parquet_logs

CORRUPT = "corrupt"
UNPARSABLE = "unparsable"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
WRONG_SHAPE = "wrong_shape"
BAD_LABEL = "bad_label"
BAD_TARGET = "bad_target"
NOT_FINITE = "not_finite"
BAD_ID = "bad_id"
EMPTY_FILE = "empty_file"
REASONS = (
  CORRUPT,
  UNPARSABLE,
  MISSING_FIELD,
  WRONG_TYPE,
  WRONG_SHAPE,
  BAD_LABEL,
  BAD_TARGET,
  NOT_FINITE,
  BAD_ID,
  EMPTY_FILE,
)

SKIP_HINT = "rerun with --skip_bad_records to skip and count such records"

_KINDS = {tf.int64: "int64_list", tf.float32: "float_list", tf.string: "bytes_list"}

Spec = Mapping[str, schema_lib.ParseFeature]
Columns = Dict[str, np.ndarray]
# (position in the batch, field, reason, detail) of one bad row.
RowProblem = Tuple[int, str, str, str]


@dataclasses.dataclass(frozen=True)
class Problem:
  """One malformed record (or file).

  Attributes:
    path: The log file.
    record: Index of the record in the file (0-based), None for a file-level problem.
    field: The offending field, None when the record as a whole is broken.
    reason: One of `REASONS`.
    detail: What is wrong, in words.
  """

  path: str
  record: Optional[int]
  field: Optional[str]
  reason: str
  detail: str

  def __str__(self) -> str:
    where = self.path if self.record is None else f"{self.path}: record #{self.record}"
    if self.field:
      return f"{where} field {self.field!r} {self.detail}"
    return f"{where}: {self.detail}" if self.record is not None else f"{where} {self.detail}"


LogError = records.LogError


class BadRecordError(LogError):
  """A log record is malformed; the message names the file, the record and the field."""

  def __init__(self, problem: Problem):
    super().__init__(f"{problem} ({SKIP_HINT})")
    self.problem = problem


class BadRecords:
  """What `--skip_bad_records` skipped: counts by reason, and which records of which file.

  Attributes:
    field_counts: (reason, field or None) -> records (or files, for `empty_file`) skipped.
    field_examples: (reason, field or None) -> the first `Problem` of that pair, in the
      order the pairs were first met.
    bad_indices: path -> sorted indices of skipped records (corrupt ones excluded).
    readable: path -> records readable before a corruption (files without one are absent).
    empty_files: Files without any record.
  """

  def __init__(self):
    self.field_counts: Dict[Tuple[str, Optional[str]], int] = collections.Counter()
    self.field_examples: Dict[Tuple[str, Optional[str]], Problem] = {}
    self.bad_indices: Dict[str, List[int]] = {}
    self.readable: Dict[str, int] = {}
    self.empty_files: List[str] = []

  def add_rows(
    self, path: str, records: np.ndarray, firsts: Sequence[Problem], counts: Sequence[int]
  ) -> None:
    """Adds many bad records of one file at once, as `add` of each in turn would.

    Args:
      path: The file.
      records: (k,) int indices of the bad records, in the order `add` would have met them.
      firsts: The first `Problem` of each (reason, field) pair among them, in the order met.
      counts: How many of `records` each pair of `firsts` has.
    """
    for problem, n in zip(firsts, counts):
      key = (problem.reason, problem.field)
      self.field_counts[key] += int(n)
      self.field_examples.setdefault(key, problem)
    if len(records):
      self.bad_indices.setdefault(path, []).extend(records.tolist())

  def add(self, problem: Problem) -> None:
    key = (problem.reason, problem.field)
    self.field_counts[key] += 1
    self.field_examples.setdefault(key, problem)
    if problem.reason == CORRUPT:
      self.readable[problem.path] = problem.record
    elif problem.reason == EMPTY_FILE:
      self.empty_files.append(problem.path)
    elif problem.record is not None:
      self.bad_indices.setdefault(problem.path, []).append(problem.record)

  def merge(self, other: "BadRecords") -> None:
    """Adds `other`'s tally as if its files had been read after this one's.

    Tallies of disjoint files, merged in the order the files are listed, equal the tally of
    one reader reading them in that order (the Beam jobs, `kaml_tf.beam`, read files apart).
    """
    for key, n in other.field_counts.items():
      self.field_counts[key] += n
    for key, problem in other.field_examples.items():
      self.field_examples.setdefault(key, problem)
    for path, indices in other.bad_indices.items():
      self.bad_indices.setdefault(path, []).extend(indices)
    self.readable.update(other.readable)
    self.empty_files.extend(other.empty_files)

  @property
  def counts(self) -> Dict[str, int]:
    """reason -> records (or files, for `empty_file`) skipped."""
    counts: Dict[str, int] = collections.Counter()
    for (reason, _), n in self.field_counts.items():
      counts[reason] += n
    return counts

  @property
  def examples(self) -> Dict[str, Problem]:
    """reason -> the first `Problem` of that reason (its pair was the first one met)."""
    first: Dict[str, Problem] = {}
    for (reason, _), problem in self.field_examples.items():
      first.setdefault(reason, problem)
    return first

  @property
  def total(self) -> int:
    """Records skipped (a corruption counts as one: what follows it is unreadable)."""
    return sum(n for reason, n in self.counts.items() if reason != EMPTY_FILE)

  def is_clean(self, path: str) -> bool:
    return path not in self.bad_indices and path not in self.readable

  def to_dict(self) -> Dict[str, object]:
    """JSON-ready summary for the jobs' output metadata."""
    counts, examples = self.counts, self.examples
    return {
      "total_records": self.total,
      "by_reason": {r: counts[r] for r in REASONS if counts.get(r)},
      "first": {r: str(examples[r]) for r in REASONS if r in examples},
      "by_field": [
        {"reason": r, "field": f, "count": n, "first": str(self.field_examples[(r, f)])}
        for (r, f), n in sorted(
          self.field_counts.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")
        )
      ],
      "truncated_files": {p: n for p, n in sorted(self.readable.items())},
      "empty_files": sorted(self.empty_files),
    }

  def log(self, job: str) -> None:
    """Logs the totals at the end of a job (a warning when anything was skipped)."""
    counts, examples = self.counts, self.examples
    if not counts:
      logging.info("%s: --skip_bad_records skipped nothing", job)
      return
    logging.warning(
      "%s: --skip_bad_records skipped %d record(s) and %d empty file(s): %s",
      job,
      self.total,
      counts.get(EMPTY_FILE, 0),
      "; ".join(f"{r}: {n} (first: {examples[r]})" for r, n in sorted(counts.items())),
    )
    for path, n in sorted(self.readable.items()):
      logging.warning(
        "%s: %s is unreadable from record #%d on; the rest of the file was not read", job, path, n
      )


def _report(problem: Problem, bad: Optional[BadRecords]) -> None:
  if bad is None:
    raise BadRecordError(problem)
  bad.add(problem)


def proto_problem(serialized: bytes, spec: Spec) -> Optional[Tuple[Optional[str], str, str]]:
  """Why one serialized record does not parse with `spec`, or None when it does.

  Returns:
    (field or None, reason, detail).
  """
  try:
    example = tf.train.Example.FromString(serialized)
  except proto_message.DecodeError:
    return None, UNPARSABLE, "not a serialized tf.train.Example"
  fmap = example.features.feature
  for name, feature in spec.items():
    is_list = isinstance(feature, tf.io.RaggedFeature)
    if name not in fmap:
      if is_list:
        continue  # an absent list is the empty list
      return name, MISSING_FIELD, "is missing (every record needs it)"
    kind = fmap[name].WhichOneof("kind")
    expected = _KINDS[feature.dtype]
    if kind != expected and not (is_list and kind is None):
      return name, WRONG_TYPE, f"is {kind or 'an empty Feature'}, expected {expected}"
    count = len(getattr(fmap[name], kind).value) if kind else 0
    if not is_list and count != 1:
      single = " (the schema says single-valued)" if count > 1 else ""
      return name, WRONG_SHAPE, f"has {count} values, expected exactly 1{single}"
  return None


def list_problems(lists: Mapping[str, multivalued.RaggedColumn]) -> List[RowProblem]:
  """The rows whose multi-valued fields break the rules, in field order (module docstring).

  Args:
    lists: `{field: its lists as read}` of the rows of a batch.

  Returns:
    [(row position, field, reason, detail)], at most one per field and row.
  """
  found = []
  for name, column in lists.items():
    per_row: Dict[int, Tuple[str, str]] = {}
    rows = column.row_of()
    if column.nulls is not None:
      for r, k in zip(rows[column.nulls].tolist(), np.flatnonzero(column.nulls).tolist()):
        at = k - int(np.sum(column.lengths[:r]))
        per_row.setdefault(r, (BAD_ID, f"holds a null id (position {at} of its list)"))
    for r in np.unique(rows[multivalued.pad_positions(column)]).tolist():
      per_row.setdefault(
        r, (BAD_ID, f"holds the id {column.pad!r}, the pad value (never a valid id)")
      )
    for r in np.flatnonzero(column.lengths > column.width).tolist():
      per_row.setdefault(
        r,
        (
          WRONG_SHAPE,
          f"has {int(column.lengths[r])} values, more than max_values={column.width}",
        ),
      )
    found += [(r, name, reason, detail) for r, (reason, detail) in per_row.items()]
  return found


@dataclasses.dataclass(frozen=True)
class BadRows:
  """The rows of a batch with one problem (field and reason), and the words for each.

  Attributes:
    positions: (k,) int positions in the batch.
    field: The offending field.
    reason: One of `REASONS`.
    detail: The detail of the j-th of `positions` (called only for the rows reported by name).
  """

  positions: np.ndarray
  field: str
  reason: str
  detail: Callable[[int], str]


def _list_rows(lists: Mapping[str, multivalued.RaggedColumn]) -> List[BadRows]:
  """`list_problems` grouped by (field, reason), in the order the pairs are first met."""
  grouped: Dict[Tuple[str, str], List[Tuple[int, str]]] = {}
  for position, field, reason, detail in list_problems(lists):
    grouped.setdefault((field, reason), []).append((position, detail))
  return [
    BadRows(
      np.asarray([p for p, _ in rows], np.int64), field, reason, [d for _, d in rows].__getitem__
    )
    for (field, reason), rows in grouped.items()
  ]


def _first_per_row(groups: Sequence[BadRows]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Each bad row once, in row order, with its first problem in `groups` order.

  Returns:
    (positions (m,) ascending, the group of each (m,), its index within the group (m,)).
  """
  positions = np.concatenate([g.positions for g in groups]).astype(np.int64)
  group = np.repeat(np.arange(len(groups)), [len(g.positions) for g in groups])
  within = np.concatenate([np.arange(len(g.positions)) for g in groups])
  rows, first = np.unique(positions, return_index=True)
  return rows, group[first], within[first]


def _report_rows(
  path: str,
  index: np.ndarray,
  groups: Sequence[BadRows],
  chosen: Tuple[np.ndarray, np.ndarray, np.ndarray],
  bad: Optional[BadRecords],
) -> None:
  """Reports the `chosen` (positions, group, index within the group) rows, in that order.

  Without a tally the first one raises; with one, all are counted at once (`add_rows`), and
  only the first row of each group is worded.
  """
  positions, group, _ = chosen
  if not len(positions):
    return
  if bad is None:
    raise BadRecordError(_nth_problem(path, index, groups, chosen, 0))
  present, first = np.unique(group, return_index=True)
  counts = np.bincount(group, minlength=len(groups))
  order = np.argsort(first)
  bad.add_rows(
    path,
    index[positions],
    [_nth_problem(path, index, groups, chosen, int(first[k])) for k in order],
    [counts[present[k]] for k in order],
  )


def _nth_problem(
  path: str,
  index: np.ndarray,
  groups: Sequence[BadRows],
  chosen: Tuple[np.ndarray, np.ndarray, np.ndarray],
  i: int,
) -> Problem:
  """The `Problem` of the i-th of the `chosen` rows (as `_report_rows` takes them)."""
  positions, group, within = chosen
  g = groups[group[i]]
  return Problem(path, int(index[positions[i]]), g.field, g.reason, g.detail(int(within[i])))


def _drop_rows(
  path: str,
  columns: Columns,
  index: np.ndarray,
  groups: Sequence[BadRows],
  bad: Optional[BadRecords],
) -> Tuple[Columns, np.ndarray]:
  """Reports the first problem of each bad row, in row order, and drops those rows.

  Args:
    path: The file, for messages.
    columns: The batch's columns.
    index: (n,) the record index of each row.
    groups: What is wrong; of several problems of a row, the one of the first group is
      reported.
    bad: The tally under --skip_bad_records, None to raise at the first bad row.

  Returns:
    (the columns of the good rows, their record indices).
  """
  if not groups:
    return columns, index
  chosen = _first_per_row(groups)
  _report_rows(path, index, groups, chosen, bad)
  keep = np.ones(len(index), bool)
  keep[chosen[0]] = False
  return {k: v[keep] for k, v in columns.items()}, index[keep]


def value_problems(
  columns: Mapping[str, np.ndarray], schema: schema_lib.Schema
) -> List[Tuple[np.ndarray, str, str, np.ndarray]]:
  """Vectorised value checks of parsed columns (only the fields present are checked).

  Returns:
    [(bad row positions (k,), field, reason, the bad values (k,))], empty when all pass.
  """
  found = []
  labels = set(schema.label_keys) | set(schema.true_label_keys)
  for name, values in columns.items():
    if name in labels:
      bad, reason = (values != 0) & (values != 1), BAD_LABEL
    elif name == schema_lib.TARGET_ACTION:
      bad, reason = (values < schema_lib.OTHER_TARGET) | (values >= schema.num_actions), BAD_TARGET
    elif values.dtype.kind == "f":
      bad, reason = ~np.isfinite(values), NOT_FINITE
    else:
      continue
    rows = np.flatnonzero(bad)
    if rows.size:
      found.append((rows, name, reason, values[rows]))
  return found


def _value_words(
  reason: str, values: np.ndarray, schema: schema_lib.Schema
) -> Callable[[int], str]:
  """The detail of the j-th of the bad `values` (k,) of one check."""
  return lambda j: _value_detail(reason, values[j].item(), schema)


def _value_detail(reason: str, value, schema: schema_lib.Schema) -> str:
  if reason == BAD_LABEL:
    return f"is {value}, expected 0 or 1"
  if reason == BAD_TARGET:
    return f"is {value}, expected -1 (Other) to {schema.num_actions - 1}"
  return f"is {value}, expected a finite number"


def drop_bad_values(
  path: str,
  first: int,
  columns: Columns,
  schema: Optional[schema_lib.Schema],
  bad: Optional[BadRecords],
  rows: Optional[np.ndarray] = None,
) -> Columns:
  """Checks values; raises on the first bad one, or drops and counts every bad row.

  Args:
    path: The file, for messages.
    first: Record index of the batch's first row (when `rows` is None).
    columns: Parsed columns of the batch.
    schema: The logs' schema (None: no checks).
    bad: The tally under --skip_bad_records, None to raise.
    rows: (batch,) record indices of the rows, when not consecutive from `first`.

  Returns:
    The columns without the bad rows.
  """
  problems = value_problems(columns, schema) if schema is not None else []
  if not problems:
    return columns
  n = len(next(iter(columns.values())))
  index = rows if rows is not None else first + np.arange(n)
  keep = np.ones(n, bool)
  groups, chosen = [], []
  # Field by field, each row under the first field that fails it (as the checks are listed).
  for g, (positions, field, reason, values) in enumerate(problems):
    new = np.flatnonzero(keep[positions])
    keep[positions[new]] = False
    groups.append(BadRows(positions, field, reason, _value_words(reason, values, schema)))
    chosen.append((positions[new], np.full(len(new), g), new))
  _report_rows(path, index, groups, tuple(np.concatenate(c) for c in zip(*chosen)), bad)
  return {k: v[keep] for k, v in columns.items()}


def _records(path: str, skip: int = 0) -> tf.data.Dataset:
  ds = tf.data.TFRecordDataset(
    path, compression_type=records.compression_of(path), buffer_size=8 << 20
  )
  return ds.skip(skip) if skip else ds


def _readable_prefix(path: str, first: int, limit: int) -> Tuple[List[bytes], str]:
  """Reads records one by one from `first` until the error: (good records, TF's message)."""
  good: List[bytes] = []
  try:
    for record in _records(path, first).take(limit):
      good.append(record.numpy())
  except tf.errors.OpError as e:
    return good, _core_message(e.message)
  return good, "the file ends inside a record"


def _core_message(message: str) -> str:
  """TF's reason without the op and function wrappers around it."""
  message = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", message)
  return re.sub(r"\s*\[Op:[^\]]*\].*$", "", message, flags=re.S).strip().strip("'")


def _widths(schema: Optional[schema_lib.Schema], spec: Spec) -> Dict[str, int]:
  """`{field: max_values}` of the multi-valued fields of `spec` (those it parses as lists)."""
  names = [k for k, f in spec.items() if isinstance(f, tf.io.RaggedFeature)]
  if names and schema is None:
    raise ValueError(f"the multi-valued fields {names} need the schema (their max_values)")
  widths = multivalued.widths(schema) if names else {}
  return {k: widths[k] for k in names}


def _numpy(
  parsed: Mapping[str, Union[tf.Tensor, tf.RaggedTensor]], widths: Mapping[str, int]
) -> Tuple[Columns, Dict[str, multivalued.RaggedColumn]]:
  """(numpy columns of the scalar fields, the multi-valued fields' lists as parsed)."""
  columns, lists = {}, {}
  for k, v in parsed.items():
    if k in widths:
      lists[k] = multivalued.RaggedColumn(
        v.flat_values.numpy(),
        v.row_lengths().numpy(),
        None,
        widths[k],
        multivalued.pad_value(v.dtype),
      )
    else:
      columns[k] = v.numpy()
  return columns, lists


def _parse(
  path: str,
  first: int,
  serialized: np.ndarray,
  parser: columns_lib.LogParser,
  bad: Optional[BadRecords],
  widths: Mapping[str, int],
) -> Tuple[Columns, np.ndarray]:
  """Parses a batch; on failure finds the bad records one by one and parses the rest.

  The records are parsed under their log column names (`parser.spec`, so a problem names the
  column the logs hold) and come out under the record field names. Multi-valued fields are
  checked (`list_problems`), then padded to `(rows, max_values)`.

  Returns:
    (columns of the good rows, their record indices).
  """
  try:
    parsed = parser(serialized)
    return _checked_lists(path, first + np.arange(len(serialized)), parsed, widths, bad)
  except (tf.errors.InvalidArgumentError, UnicodeDecodeError):
    # TF's message quotes the bad bytes, which need not be UTF-8.
    pass
  keep = []
  for i, record in enumerate(serialized.tolist()):
    found = proto_problem(record, parser.spec)
    if found is None:
      keep.append(i)
    else:
      _report(Problem(path, first + i, *found), bad)
  parsed = parser(tf.constant(serialized[keep].tolist(), tf.string, [len(keep)]))
  return _checked_lists(path, first + np.asarray(keep, np.int64), parsed, widths, bad)


def _checked_lists(
  path: str,
  index: np.ndarray,
  parsed: Mapping[str, Union[tf.Tensor, tf.RaggedTensor]],
  widths: Mapping[str, int],
  bad: Optional[BadRecords],
) -> Tuple[Columns, np.ndarray]:
  """Numpy columns of parsed rows without those whose lists break the rules, lists padded."""
  columns, lists = _numpy(parsed, widths)
  groups = _list_rows(lists)
  if groups:
    keep = np.ones(len(index), bool)
    for g in groups:
      keep[g.positions] = False
    lists = {k: v.take(keep) for k, v in lists.items()}
  columns, index = _drop_rows(path, columns, index, groups, bad)
  columns.update({k: v.padded() for k, v in lists.items()})
  return {k: columns[k] for k in parsed}, index


def checked_batches(
  path: str,
  schema: Optional[schema_lib.Schema],
  spec: Spec,
  batch_size: int = 8192,
  bad: Optional[BadRecords] = None,
) -> Iterator[Tuple[int, Columns]]:
  """Reads one log file as checked numpy column batches, in record order.

  Args:
    path: A TFRecord file (plain or `.gz`) or a Parquet file (`.parquet`).
    schema: The logs' schema, for the value checks and the logs' own column names
      (`Schema.columns`: read under them, yielded under the record fields; a problem found
      before the translation names the log column). None: parse checks only, under the record
      field names; a spec with multi-valued fields needs the schema.
    spec: The fields to parse (`tf.io.FixedLenFeature`s, and `tf.io.RaggedFeature`s of the
      multi-valued features); only these are checked.
    batch_size: Records per read batch.
    bad: None: raise `BadRecordError` at the first problem; otherwise skip and count.

  Yields:
    (index of the batch's first record in the file, {field: (rows,) array} of the good rows,
    `(rows, max_values)` padded for a multi-valued feature).

  Raises:
    LogError: for a Parquet file without a column of `spec` or with one of another type
      (every record would be bad: never skipped).
  """
  widths = _widths(schema, spec)
  if parquet_logs.is_parquet(path):
    return _checked_parquet(path, schema, spec, batch_size, bad, widths)
  return _checked_tfrecord(path, schema, spec, batch_size, bad, widths)


def _row_problems(batch: parquet_logs.Batch) -> List[BadRows]:
  """The bad rows of a Parquet batch: nulls (by their first null field in the spec's order),
  then the multi-valued fields' `list_problems`."""
  nulls = [
    BadRows(positions, field, MISSING_FIELD, lambda _: "is null")
    for field, positions in batch.nulls.items()
  ]
  return nulls + _list_rows(batch.lists)


def batch_problem(path: str, batch: parquet_logs.Batch) -> Optional[Problem]:
  """The first bad record of a Parquet batch (a null, or a bad list), or None."""
  groups = _row_problems(batch)
  if not groups:
    return None
  index = batch.first + np.arange(batch.size)
  return _nth_problem(path, index, groups, _first_per_row(groups), 0)


def _checked_rows(
  path: str, batch: parquet_logs.Batch, bad: Optional[BadRecords]
) -> Tuple[Columns, Optional[np.ndarray]]:
  """(columns without the bad rows, their record indices or None when all rows are good)."""
  groups = _row_problems(batch)
  if not groups:
    return batch.columns, None
  index = batch.first + np.arange(batch.size)
  return _drop_rows(path, batch.columns, index, groups, bad)


def _checked_parquet(
  path: str,
  schema: Optional[schema_lib.Schema],
  spec: Spec,
  batch_size: int,
  bad: Optional[BadRecords],
  widths: Mapping[str, int],
) -> Iterator[Tuple[int, Columns]]:
  fields = {k: f.dtype for k, f in spec.items()}
  read = 0
  try:
    for batch in parquet_logs.read_batches(path, fields, batch_size, widths=widths, schema=schema):
      columns, rows = _checked_rows(path, batch, bad)
      yield batch.first, drop_bad_values(path, batch.first, columns, schema, bad, rows)
      read = batch.first + batch.size
  except parquet_logs.ReadError as e:
    _report(
      Problem(
        path,
        e.first,
        None,
        CORRUPT,
        f"unreadable ({e.reason}); the rest of the file cannot be read",
      ),
      bad,
    )
    return
  if read == 0:
    _report(Problem(path, None, None, EMPTY_FILE, "has no records"), bad)


def _checked_tfrecord(
  path: str,
  schema: Optional[schema_lib.Schema],
  spec: Spec,
  batch_size: int,
  bad: Optional[BadRecords],
  widths: Mapping[str, int],
) -> Iterator[Tuple[int, Columns]]:
  first = 0
  parser = columns_lib.LogParser(schema, spec)
  batches = iter(_records(path).batch(batch_size).prefetch(2))
  while True:
    try:
      serialized = next(batches).numpy()
    except StopIteration:
      break
    except tf.errors.OpError:
      good, message = _readable_prefix(path, first, batch_size)
      if good:
        columns, rows = _parse(path, first, np.asarray(good, object), parser, bad, widths)
        yield first, drop_bad_values(path, first, columns, schema, bad, rows)
      _report(
        Problem(
          path,
          first + len(good),
          None,
          CORRUPT,
          f"unreadable ({message}); the rest of the file cannot be read",
        ),
        bad,
      )
      return
    columns, rows = _parse(path, first, serialized, parser, bad, widths)
    yield first, drop_bad_values(path, first, columns, schema, bad, rows)
    first += len(serialized)
  if first == 0:
    _report(Problem(path, None, None, EMPTY_FILE, "has no records"), bad)


def _check_files(
  files: Union[str, Sequence[str]],
  schema: schema_lib.Schema,
  spec: Spec,
  batch_size: int,
  bad: Optional[BadRecords],
) -> None:
  for path in records.list_files(files):
    for _ in checked_batches(path, schema, spec, batch_size, bad):
      pass


def scan(
  files: Union[str, Sequence[str]],
  schema: schema_lib.Schema,
  spec: Spec,
  batch_size: int = 8192,
  bad: Optional[BadRecords] = None,
) -> BadRecords:
  """Checks every record of `files` and returns what is bad (for in-graph filtering)."""
  bad = bad if bad is not None else BadRecords()
  _check_files(files, schema, spec, batch_size, bad)
  return bad


def first_problem(
  files: Union[str, Sequence[str]], schema: schema_lib.Schema, spec: Spec, batch_size: int = 8192
) -> Optional[BadRecordError]:
  """The error of the first bad record of `files`, or None when every record passes."""
  try:
    _check_files(files, schema, spec, batch_size, None)
  except BadRecordError as e:
    return e
  return None
