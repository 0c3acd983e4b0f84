"""The training / evaluation input pipeline: logs -> `(features, targets)` batches.

`make_dataset(files, schema, stats, policy, batch_size, ..., input_context)` builds the
`tf.data` pipeline; it is a shorthand for `DatasetFactory(schema, stats, config)`, whose
instances are callables taking an optional `tf.distribute.InputContext` (they fit
`strategy.distribute_datasets_from_function` directly). Per input pipeline it

1. lists the files (sorted) and keeps its share of them (`files[pipeline_id::num_pipelines]`,
   or every num_pipelines-th record when there are fewer files than pipelines);
2. reads `cycle_length` of them in turn, a record from each (file order shuffled too when
   shuffling), on the pipeline's own thread unless `parallel_reads` asks for reader threads;
   Parquet logs (`kaml_tf.logs.parquet`) are read a column slice at a time instead;
3. batches the serialized records, then parses each batch with one `tf.io.parse_example`
   (Parquet slices are already columns: they are re-cut into batches and checked); with
   `days=(first, last)` only the rows whose `day` lies in [first, last] are kept, and the
   rows left are re-cut into full batches;
   when shuffling, the batches are windows of `shuffle_buffer` records, each parsed at once,
   permuted uniformly and cut into `batch_size` batches;
4. joins the ad-task statistics in-graph (`stats.WindowCountsLookup`: a `StaticHashTable`
   from ad task id to a row of the counts matrix, then `tf.gather`; for daily statistics
   `point_in_time.DailyCountsLookup`, keyed on (ad task id, day)) and computes the masks
   (`masks.training_mask`);
5. prefetches.

Why windows and not `Dataset.shuffle`: tf.data moves every element through its stages one by
one, and on a 2-core trainer a per-record stage costs as much CPU as the model's own step
(measured at 5000-record batches: a parallel interleave 46 ms of CPU per batch against 12 ms
read in turn, a 100k-record `shuffle` 26 ms against 2 ms for permuting a parsed window). A
window permutation mixes every record of a window with every other one, as a buffer of that
size does on average; it never mixes records of different windows, which a sliding buffer
does a little (its tail). Each epoch is still a permutation of the records, and a seed makes
it reproducible.

Each element is `(features, targets)`:

* `features`: `{name: (batch,) tensor}` for every schema feature, plus `"hke_indicator"`
  (batch, N) float32 = one_hot(target_action) (all zeros for "Other");
* `targets`: `"labels"`, `"mask"`, `"is_target"`, each (batch, N) float32, plus
  `"true_labels"` (batch, N) float32 when the schema has true labels. Under the `oracle`
  policy `"labels"` are the true labels and the mask is all ones.

`batch_size` is the size of the batches a pipeline yields: under `tf.distribute` pass the
per-replica size, `input_context.get_per_replica_batch_size(global_batch_size)`.

Evaluation order (`shuffle_buffer=0`) is deterministic: sorted files, a deterministic
interleave and deterministic parallel maps; a seeded shuffle is reproducible too. An ad task
missing from the statistics falls back to the base mask; such samples are counted by an
`InputCounters` (host-side variables the pipeline adds to as it produces batches, prefetched
ones included) whose `log()` reports them. Under point-in-time statistics
(`DatasetConfig.stats_mode`, `kaml_tf.data.point_in_time`) a row whose ad task has no
statistics for the row's day (no click in the T days before) is a cold start: base mask,
counted as `cold_start_samples`.
"""

import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple, Union

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
from absl import logging
import numpy as np
import tensorflow as tf

from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.data import masks as masks_lib
from kaml_tf.logs import parquet as parquet_logs
from kaml_tf.data import point_in_time
from kaml_tf.data import stats as stats_lib
from kaml_tf.logs import validation

HKE_INDICATOR = schema_lib.HKE_INDICATOR
LABELS = "labels"
MASK = "mask"
IS_TARGET = "is_target"
TRUE_LABELS = "true_labels"

Features = Dict[str, tf.Tensor]
Targets = Dict[str, tf.Tensor]


def _stack(parsed: Dict[str, tf.Tensor], keys: Sequence[str]) -> tf.Tensor:
  """(batch, len(keys)) float32 from int64 (batch,) label columns."""
  return tf.cast(tf.stack([parsed[k] for k in keys], axis=1), tf.float32)


# Ends every file's list of bad record indices, so a lookup never falls off the end.
_NO_RECORD = np.iinfo(np.int64).max


def _contains(sorted_values: tf.Tensor, value: tf.Tensor) -> tf.Tensor:
  """Whether int64 `value` is in the sorted (k,) `sorted_values` that end in `_NO_RECORD`."""
  position = tf.searchsorted(sorted_values, tf.reshape(value, [1]))[0]
  return tf.equal(tf.gather(sorted_values, position), value)


def _permute(columns: Dict[str, tf.Tensor], seed: tf.Tensor) -> Dict[str, tf.Tensor]:
  """The rows of `{field: (n,)}` in the random order of the (2,) int64 stateless `seed`."""
  n = tf.shape(columns[schema_lib.TARGET_ACTION])[0]
  order = tf.random.experimental.stateless_shuffle(tf.range(n), seed)
  return {k: tf.gather(v, order) for k, v in columns.items()}


class DatasetError(ValueError):
  """The pipeline cannot be built as asked; the message names the file or setting."""


def _check_days(days: Optional[Tuple[int, int]]) -> Optional[Tuple[int, int]]:
  """`days` as an (first, last) int pair, checked; None stays None."""
  if days is None:
    return None
  if len(days) != 2 or int(days[0]) > int(days[1]):
    raise DatasetError(f"days must be a (first, last) pair with first <= last, got {days!r}")
  return int(days[0]), int(days[1])


@dataclasses.dataclass(frozen=True)
class DatasetConfig:
  """Settings of one input pipeline.

  Attributes:
    files: TFRecord or Parquet logs (one format): a glob, comma-separated globs, or a
      tuple of paths.
    batch_size: Examples per yielded batch (per replica under `tf.distribute`).
    mask: The mask policy and ADM thresholds.
    shuffle_buffer: Records shuffled together (one permuted window, parsed at once: about
      200 bytes of memory per record); 0 reads in a deterministic order (evaluation), > 0
      also shuffles the file order (training).
    seed: Shuffle seed; with a seed the order is reproducible, without one parallel stages
      also run non-deterministically (a little faster).
    repeat: Repeat forever (training loops that count steps).
    drop_remainder: Drop the last partial batch (static batch shape).
    cycle_length: Files read at a time, a record from each in turn.
    parallel_reads: Reader threads (tf.data.AUTOTUNE = -1 lets tf.data pick). 0 reads on
      the pipeline's own thread: the cheapest in CPU, and the fastest from local disk; give
      threads to logs on remote storage (GCS, HDFS), whose reads wait on the network.
    stats_mode: How ADM joins the statistics (`point_in_time.STATS_MODES`): "" picks
      "point_in_time" for daily statistics and "static" otherwise.
  """

  files: Union[str, Tuple[str, ...]]
  batch_size: int
  mask: masks_lib.MaskConfig = masks_lib.MaskConfig()
  shuffle_buffer: int = 0
  seed: Optional[int] = None
  repeat: bool = False
  drop_remainder: bool = False
  cycle_length: int = 4
  parallel_reads: int = 0
  stats_mode: str = point_in_time.AUTO

  def __post_init__(self):
    if not isinstance(self.files, str):
      object.__setattr__(self, "files", tuple(self.files))
    if self.batch_size < 1:
      raise DatasetError(f"batch_size must be >= 1, got {self.batch_size}")
    if self.shuffle_buffer < 0:
      raise DatasetError(f"shuffle_buffer must be >= 0, got {self.shuffle_buffer}")
    if self.cycle_length < 1:
      raise DatasetError(f"cycle_length must be >= 1, got {self.cycle_length}")
    if self.parallel_reads < 0 and self.parallel_reads != tf.data.AUTOTUNE:
      raise DatasetError(
        f"parallel_reads must be >= 0 or tf.data.AUTOTUNE (-1), got {self.parallel_reads}"
      )

  @property
  def shuffle(self) -> bool:
    return self.shuffle_buffer > 0


def parse_spec(
  schema: schema_lib.Schema, with_day: bool = False
) -> Dict[str, tf.io.FixedLenFeature]:
  """What the pipeline parses of each record: features, ad task, target and labels.

  Args:
    schema: The logs' schema.
    with_day: Also the `day` field (what a day filter needs).
  """
  fields = list(schema.feature_names) + [schema_lib.AD_TASK_ID, schema_lib.TARGET_ACTION]
  if with_day:
    fields.append(schema_lib.DAY)
  fields += list(schema.label_keys)
  if schema.has_true_labels:
    fields += list(schema.true_label_keys)
  full = schema.parse_spec()
  return {k: full[k] for k in dict.fromkeys(fields)}


class InputCounters:
  """Host-side counts of what input pipelines produced: samples, unknown ad tasks, cold starts.

  The variables are created eagerly, outside any `tf.function`, and the pipelines add to them
  from their parsing functions, so one object can be shared by every pipeline of a run (per
  worker under multi-worker training: sum them across workers).
  """

  def __init__(self):
    with tf.init_scope():
      self._unknown = tf.Variable(
        tf.constant(0, tf.int64), trainable=False, name="unknown_ad_task_samples"
      )
      self._samples = tf.Variable(tf.constant(0, tf.int64), trainable=False, name="samples_read")
      self._cold_start = tf.Variable(
        tf.constant(0, tf.int64), trainable=False, name="cold_start_samples"
      )

  @property
  def unknown_ad_task_samples(self) -> int:
    """Samples whose ad task is missing from the statistics (given the base mask)."""
    return int(self._unknown.numpy())

  @property
  def samples_read(self) -> int:
    return int(self._samples.numpy())

  @property
  def cold_start_samples(self) -> int:
    """Point-in-time samples whose ad task had no statistics for their day (base mask)."""
    return int(self._cold_start.numpy())

  def add(
    self, unknown: tf.Tensor, samples: tf.Tensor, cold_start: Optional[tf.Tensor] = None
  ) -> List[tf.Operation]:
    """The in-graph updates for one batch (int64 scalars)."""
    updates = [self._unknown.assign_add(unknown), self._samples.assign_add(samples)]
    if cold_start is not None:
      updates.append(self._cold_start.assign_add(cold_start))
    return updates

  def reset(self) -> None:
    self._unknown.assign(0)
    self._samples.assign(0)
    self._cold_start.assign(0)

  def log(self, stats_source: str = "the statistics") -> Tuple[int, int]:
    """Logs and returns (unknown ad-task samples, samples read); logs cold starts too."""
    unknown, total = self.unknown_ad_task_samples, self.samples_read
    cold = self.cold_start_samples
    if cold:
      logging.warning(
        "%d of %d samples (%.3f%%) are cold starts: their ad task has no point-in-time "
        "statistics for their day in %s (no click in the window before it); they were given "
        "the base mask",
        cold,
        total,
        100.0 * cold / max(total, 1),
        stats_source,
      )
    if unknown:
      logging.warning(
        "%d of %d samples (%.3f%%) belong to ad tasks missing from %s; they were given the "
        "base mask",
        unknown,
        total,
        100.0 * unknown / max(total, 1),
        stats_source,
      )
    else:
      logging.info("%d samples read; no ad task was missing from %s", total, stats_source)
    return unknown, total


class DatasetFactory:
  """Builds the `(features, targets)` pipeline; see the module docstring.

  Usage:
    factory = DatasetFactory(schema, stats, DatasetConfig(files="train-*", batch_size=5000))
    dataset = factory()                                # or, with 2 replicas:
    dist = strategy.distribute_datasets_from_function(factory)   # batch_size=2500 then
    ...
    factory.log_counters()
  """

  def __init__(
    self,
    schema: schema_lib.Schema,
    stats: Optional[stats_lib.ConversionStats],
    config: DatasetConfig,
    counters: Optional[InputCounters] = None,
    skip: Optional[validation.BadRecords] = None,
    days: Optional[Tuple[int, int]] = None,
  ):
    """Checks the policy, the statistics and the schema against each other.

    Args:
      schema: The logs' schema.
      stats: Ad-task statistics (required by `adm`; checked against `schema` and
        `config.stats_mode` when given), static or daily.
      config: Files, batching, masks and shuffling.
      counters: Where to count samples and unknown ad tasks; a new one when None.
      skip: Under --skip_bad_records, the result of `validation.scan` over the files with
        `parse_spec`: its bad records are filtered out in-graph. None: every record must
        be valid (a bad one fails the pipeline; `validation.first_problem` names it).
      days: (first, last): keep only the rows whose `day` is in [first, last] (inclusive);
        None keeps every row.

    Raises:
      MaskError: for `oracle` without true labels, or bad thresholds.
      StatsError: when `stats` come from a different schema (naming both fingerprints).
      StatsModeError: when `config.stats_mode` does not fit `stats` (naming --stats_mode).
      DatasetError: when `adm` is asked for without statistics, or `days` is not a
        (first, last) pair with first <= last.
    """
    self._days = _check_days(days)
    self._schema = schema
    self._config = config
    self._mask = config.mask.resolve(schema)
    if stats is not None:
      stats.check_schema(schema)
    elif self._mask.needs_stats:
      raise DatasetError(
        "mask policy 'adm' needs the ad-task statistics (run "
        "pipelines.compute_stats and pass its output)"
      )
    self._stats = stats
    self._stats_mode = point_in_time.resolve_stats_mode(config.stats_mode, stats)
    self._lookup = (
      point_in_time.counts_lookup(stats, self._stats_mode)
      if stats is not None and self._mask.needs_stats
      else None
    )
    self._parse_spec = parse_spec(schema, with_day=days is not None)
    if self._lookup is not None and self._stats_mode == point_in_time.POINT_IN_TIME:
      # The join needs each record's day.
      self._parse_spec[schema_lib.DAY] = schema.parse_spec()[schema_lib.DAY]
    self._fields = {k: f.dtype for k, f in self._parse_spec.items()}
    self._counters = counters if counters is not None else InputCounters()
    self._skip = skip

  @property
  def schema(self) -> schema_lib.Schema:
    return self._schema

  @property
  def stats_mode(self) -> str:
    """The resolved stats mode, `point_in_time.STATIC` or `POINT_IN_TIME`."""
    return self._stats_mode

  @property
  def mask_config(self) -> masks_lib.MaskConfig:
    """The resolved mask configuration (thresholds filled in)."""
    return self._mask

  @property
  def parse_spec(self) -> Dict[str, tf.io.FixedLenFeature]:
    """The `tf.io.parse_example` spec the pipeline parses each batch with."""
    return dict(self._parse_spec)

  @property
  def counters(self) -> InputCounters:
    """Samples and unknown ad-task samples produced so far by this factory's pipelines."""
    return self._counters

  def log_counters(self) -> Tuple[int, int]:
    """Logs and returns (unknown ad-task samples, samples read)."""
    source = self._stats.source if self._stats is not None else "the statistics"
    return self._counters.log(source)

  def files_for(
    self, input_context: Optional[tf.distribute.InputContext] = None
  ) -> Tuple[List[str], bool]:
    """This pipeline's share of the sorted log files.

    Returns:
      (files, whether records still need sharding): with fewer files than input pipelines
      every pipeline reads all files and keeps every num_pipelines-th record.

    Raises:
      DatasetError: when Parquet and TFRecord logs are mixed.
    """
    files = records.list_files(self._config.files)
    if self._skip is not None:
      files = [
        p for p in files if self._skip.readable.get(p, 1) > 0 and p not in self._skip.empty_files
      ]
      if not files:
        raise DatasetError(
          f"no readable records in {self._config.files!r} after skipping bad records"
        )
    kinds = {parquet_logs.is_parquet(p) for p in files}
    if len(kinds) > 1:
      raise DatasetError(
        f"{self._config.files!r} mixes Parquet and TFRecord logs; one "
        "pipeline reads one format (convert with pipelines.convert_logs)"
      )
    if input_context is None or input_context.num_input_pipelines <= 1:
      return files, False
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
      return files, True
    return files[input_context.input_pipeline_id :: num], False

  def _check_first_records(self, files: Sequence[str]) -> None:
    """Checks the first record of every file, so a schema mismatch names its file early.

    Raises:
      validation.BadRecordError: for an empty file or a first record that does not parse.
      validation.LogError: for a Parquet file without a needed column, or with one of
        another type.
    """
    for path in files:
      if parquet_logs.is_parquet(path):
        if not parquet_logs.check_file(path, self._fields):
          raise validation.BadRecordError(
            validation.Problem(path, None, None, validation.EMPTY_FILE, "has no records")
          )
        continue
      first = tf.data.TFRecordDataset(path, compression_type=records.compression_of(path))
      try:
        serialized = [r.numpy() for r in first.take(1)]
      except tf.errors.OpError:
        serialized = None
      found = (
        validation.first_problem(path, self._schema, self._parse_spec) if not serialized else None
      )
      if found is not None:
        raise found
      problem = validation.proto_problem(serialized[0], self._parse_spec)
      if problem is not None:
        raise validation.BadRecordError(validation.Problem(path, 0, *problem))

  def _value_checks(self, parsed: Dict[str, tf.Tensor]) -> List[tf.Operation]:
    """In-graph assertions of `validation.value_problems` (the trainer names the record)."""
    schema = self._schema
    target = parsed[schema_lib.TARGET_ACTION]
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
    labels = [k for k in schema.label_keys + schema.true_label_keys if k in parsed]
    if labels:
      stacked = tf.stack([parsed[k] for k in labels], axis=1)
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
          parsed[f.name], message=f"record field {f.name} must be finite"
        )
      )
    return checks

  @staticmethod
  def _reader(skip_table: Optional[Tuple[tf.Tensor, tf.Tensor, tf.Tensor]]):
    """(path, compression, file index) -> that file's records, bad ones filtered out."""

    def read(path: tf.Tensor, kind: tf.Tensor, file_id: tf.Tensor) -> tf.data.Dataset:
      ds = tf.data.TFRecordDataset(path, compression_type=kind, buffer_size=8 << 20)
      if skip_table is None:
        return ds
      limits, bad, splits = skip_table
      ds = ds.take(tf.gather(limits, file_id))
      own = bad[splits[file_id] : splits[file_id + 1]]
      return ds.enumerate().filter(lambda i, _: ~_contains(own, i)).map(lambda _, r: r)

    return read

  def _parquet_reader(self, rows: int, shard: Optional[Tuple[int, int]]):
    """(path, compression, file index) -> that Parquet file's column batches of <= `rows`.

    Args:
      rows: Records per read.
      shard: (pipelines, this pipeline's id) to keep every pipelines-th record, or None.
    """
    fields, skip = self._fields, self._skip
    signature = {k: tf.TensorSpec([None], d) for k, d in fields.items()}

    def generate(path: bytes):
      path = path.decode()
      bad = np.asarray(skip.bad_indices.get(path, []) if skip else [], np.int64)
      limit = skip.readable.get(path) if skip else None
      for batch in parquet_logs.read_batches(path, fields, rows, limit):
        problem = validation.null_problem(path, batch) if skip is None else None
        if problem is not None:
          raise validation.BadRecordError(problem)
        index = batch.first + np.arange(batch.size)
        keep = ~np.isin(index, bad)
        if shard is not None:
          keep &= index % shard[0] == shard[1]
        yield batch.columns if keep.all() else {k: v[keep] for k, v in batch.columns.items()}

    def read(path: tf.Tensor, kind: tf.Tensor, file_id: tf.Tensor) -> tf.data.Dataset:
      del kind, file_id  # Parquet compresses inside the file; bad records come by path
      return tf.data.Dataset.from_generator(generate, args=(path,), output_signature=signature)

    return read

  def parse(self, serialized: tf.Tensor) -> Tuple[Features, Targets]:
    """Turns a (batch,) string tensor of Examples into `(features, targets)`."""
    return self.to_examples(self.parse_records(serialized))

  def parse_records(self, serialized: tf.Tensor) -> Dict[str, tf.Tensor]:
    """Parses (n,) serialized Examples into `{field: (n,)}`, asserting their values."""
    return self.check_columns(tf.io.parse_example(serialized, self._parse_spec))

  def check_columns(self, columns: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """`{field: (n,)}` records, passed on once their values are asserted valid."""
    with tf.control_dependencies(self._value_checks(columns)):
      return {k: tf.identity(v) for k, v in columns.items()}

  def to_examples(self, parsed: Dict[str, tf.Tensor]) -> Tuple[Features, Targets]:
    """`{field: (batch,)}` parsed records -> `(features, targets)`, counted."""
    schema = self._schema
    n = schema.num_actions
    target = parsed[schema_lib.TARGET_ACTION]
    is_target = masks_lib.target_indicator(target, n)
    batch = tf.shape(target, out_type=tf.int64)[0]
    unknown = cold_start = tf.constant(0, tf.int64)
    if self._lookup is not None:
      counts, known = self._lookup(parsed[schema_lib.AD_TASK_ID], parsed.get(schema_lib.DAY))
      mask = masks_lib.training_mask(self._mask, target, n, counts, known)
      missing = batch - tf.reduce_sum(tf.cast(known, tf.int64))
      if self._stats_mode == point_in_time.POINT_IN_TIME:
        cold_start = missing
      else:
        unknown = missing
    else:
      mask = masks_lib.training_mask(self._mask, target, n)
    labels = _stack(parsed, schema.label_keys)
    targets = {IS_TARGET: is_target}
    if schema.has_true_labels:
      targets[TRUE_LABELS] = _stack(parsed, schema.true_label_keys)
    targets[LABELS] = targets[TRUE_LABELS] if self._mask.uses_true_labels else labels
    with tf.control_dependencies(self._counters.add(unknown, batch, cold_start)):
      targets[MASK] = tf.identity(mask)
    features = {name: parsed[name] for name in schema.feature_names}
    features[HKE_INDICATOR] = is_target
    return features, targets

  def _permuted(self, windows: tf.data.Dataset, deterministic: bool) -> tf.data.Dataset:
    """Windows of parsed records -> `batch_size` batches of each window's rows, permuted.

    Every window gets its own permutation, drawn from the seed and, through
    `Dataset.random`, a new stream on every pass over the dataset.
    """
    config = self._config
    seeds = tf.data.Dataset.random(seed=config.seed, rerandomize_each_iteration=True)
    windows = tf.data.Dataset.zip((windows, seeds.batch(2)))
    windows = windows.map(
      _permute, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic
    )
    return windows.rebatch(config.batch_size, drop_remainder=config.drop_remainder)

  def _skip_tensors(self, files: Sequence[str]) -> Optional[Tuple[tf.Tensor, tf.Tensor, tf.Tensor]]:
    """Per file: records to read (-1: all), and its sorted bad indices as a ragged row.

    Returns:
      None when nothing is skipped, else (limits (F,), bad indices (B,), row splits (F+1,)),
      each file's row ending in a sentinel that no record index reaches.
    """
    if self._skip is None or all(self._skip.is_clean(p) for p in files):
      return None
    limits, flat, splits = [], [], [0]
    for path in files:
      limits.append(self._skip.readable.get(path, -1))
      flat.extend(sorted(self._skip.bad_indices.get(path, ())) + [_NO_RECORD])
      splits.append(len(flat))
    return (
      tf.constant(limits, tf.int64),
      tf.constant(flat, tf.int64),
      tf.constant(splits, tf.int64),
    )

  def _columns(
    self,
    files: List[str],
    shard_records: bool,
    input_context: Optional[tf.distribute.InputContext],
    deterministic: bool,
  ) -> tf.data.Dataset:
    """The files' records as checked `{field: (n,)}` columns: batches, or shuffle windows."""
    config = self._config
    ds = tf.data.Dataset.from_tensor_slices(
      (files, [records.compression_of(p) for p in files], tf.range(len(files), dtype=tf.int64))
    )
    if config.shuffle:
      ds = ds.shuffle(len(files), seed=config.seed, reshuffle_each_iteration=True)
    parquet = parquet_logs.is_parquet(files[0])
    size = config.shuffle_buffer if config.shuffle else config.batch_size
    shard = (
      (input_context.num_input_pipelines, input_context.input_pipeline_id)
      if shard_records
      else None
    )
    cycle = min(config.cycle_length, len(files))
    reader = (
      self._parquet_reader(-(-size // cycle), shard)
      if parquet
      else self._reader(self._skip_tensors(files))
    )
    ds = ds.interleave(
      reader,
      cycle_length=cycle,
      block_length=1,
      num_parallel_calls=config.parallel_reads or None,
      deterministic=deterministic if config.parallel_reads else None,
    )
    if shard is not None and not parquet:
      ds = ds.shard(*shard)
    if config.repeat:
      ds = ds.repeat()
    drop = config.drop_remainder and not config.shuffle
    # With a day filter the batches are cut again after it, so none is dropped before.
    cut_drop = drop and self._days is None
    if parquet:
      # Slices of each file, concatenated across the files read in turn.
      ds = ds.rebatch(size, drop_remainder=cut_drop).map(
        self.check_columns, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic
      )
    else:
      ds = ds.batch(size, drop_remainder=cut_drop).map(
        self.parse_records, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic
      )
    if self._days is None:
      return ds
    ds = ds.map(self._in_days, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    ds = ds.filter(lambda columns: tf.size(columns[schema_lib.DAY]) > 0)
    # Shuffle windows are re-cut by `_permuted`; evaluation batches here.
    return ds if config.shuffle else ds.rebatch(size, drop_remainder=drop)

  def _in_days(self, columns: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """The rows of `{field: (n,)}` whose `day` lies in the factory's [first, last]."""
    day = columns[schema_lib.DAY]
    keep = (day >= self._days[0]) & (day <= self._days[1])
    return {k: tf.boolean_mask(v, keep) for k, v in columns.items()}

  def __call__(self, input_context: Optional[tf.distribute.InputContext] = None) -> tf.data.Dataset:
    """Builds the pipeline for one input pipeline (all files when `input_context` is None)."""
    config = self._config
    files, shard_records = self.files_for(input_context)
    if self._skip is None:
      self._check_first_records(files)
    # A seeded shuffle stays reproducible (a resumed epoch can skip the batches it has seen);
    # only an unseeded shuffle lets parallel stages hand out elements as they finish.
    deterministic = not config.shuffle or config.seed is not None
    ds = self._columns(files, shard_records, input_context, deterministic)
    if config.shuffle:
      ds = self._permuted(ds, deterministic)
    ds = ds.map(self.to_examples, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = deterministic
    if input_context is not None:
      # Sharded by pipeline above; tf.distribute must not shard again.
      options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.with_options(options)


def make_dataset(
  files: Union[str, Sequence[str]],
  schema: schema_lib.Schema,
  stats: Optional[stats_lib.ConversionStats] = None,
  policy: str = masks_lib.ADM,
  batch_size: int = 5000,
  alpha: Optional[Sequence[int]] = None,
  shuffle_buffer: int = 0,
  seed: Optional[int] = None,
  input_context: Optional[tf.distribute.InputContext] = None,
  counters: Optional[InputCounters] = None,
  repeat: bool = False,
  drop_remainder: bool = False,
  skip: Optional[validation.BadRecords] = None,
  parallel_reads: int = 0,
  stats_mode: str = point_in_time.AUTO,
  days: Optional[Tuple[int, int]] = None,
) -> tf.data.Dataset:
  """Builds one input pipeline of `(features, targets)` batches (see the module docstring).

  Args:
    files: TFRecord or Parquet logs: a glob, comma-separated globs or a list of paths.
    schema: The logs' schema.
    stats: Ad-task statistics; required by the `adm` policy.
    policy: `base`, `adm`, `all` or `oracle`.
    batch_size: Examples per batch (per replica under `tf.distribute`).
    alpha: ADM thresholds, one per action (None: `masks.default_alpha`).
    shuffle_buffer: Records in the shuffle buffer; 0 keeps a deterministic order.
    seed: Shuffle seed.
    input_context: Shards the files (or records) across input pipelines.
    counters: Counts samples and unknown ad tasks; pass one to read them afterwards.
    repeat: Repeat forever.
    drop_remainder: Drop the last partial batch.
    skip: Bad records to filter out (`validation.scan` of `files`), or None.
    parallel_reads: Reader threads (see `DatasetConfig`).
    stats_mode: "", "static" or "point_in_time" (see `DatasetConfig`).
    days: (first, last): keep only the rows whose `day` is in [first, last]; None: all.

  Returns:
    The `tf.data.Dataset`.
  """
  config = DatasetConfig(
    files=files if isinstance(files, str) else tuple(files),
    batch_size=batch_size,
    mask=masks_lib.MaskConfig(policy, None if alpha is None else tuple(alpha)),
    shuffle_buffer=shuffle_buffer,
    seed=seed,
    repeat=repeat,
    drop_remainder=drop_remainder,
    parallel_reads=parallel_reads,
    stats_mode=stats_mode,
  )
  return DatasetFactory(schema, stats, config, counters, skip, days)(input_context)
