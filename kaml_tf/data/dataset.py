"""The training / evaluation input pipeline: logs -> `(features, targets)` batches.

`make_dataset(files, schema, stats, policy, batch_size, ..., input_context)` builds the
`tf.data` pipeline; it is a shorthand for `DatasetFactory(schema, stats, config)`, whose
instances are callables taking an optional `tf.distribute.InputContext` (they fit
`strategy.distribute_datasets_from_function` directly). `DatasetFactory.__call__` composes the
stages, each in its own module:

1. `sources`: list the files (sorted, one format) and keep this input pipeline's share
   (`files[pipeline_id::num_pipelines]`, or every num_pipelines-th record when there are
   fewer files than pipelines); check each file's first record;
2. `shuffling.shuffle_files`: when training, shuffle the file order;
3. `sources.read_tfrecords` / `read_parquet`: read `cycle_length` files in turn, a record
   (TFRecord) or a column slice (Parquet) from each, dropping the `bad_records` that
   --skip_bad_records found;
4. batch the records and parse them (`parsing`: one `tf.io.parse_example` per batch, values
   asserted in-graph, multi-valued features padded to (batch, max_values); Parquet slices are
   already columns: re-cut and checked). When shuffling
   a "batch" is a window of `shuffle_buffer` records, parsed at once;
5. `day_filter`: with `days=(first, last)` keep the rows whose `day` lies in [first, last];
6. `shuffling.permuted_batches`: when shuffling, permute each window and cut it into
   `batch_size` batches;
7. `joining.StatsJoin`: join the ad-task statistics (static, or point in time), compute the
   masks, count the batch (`counters.InputCounters`), yielding `(features, targets)`;
8. prefetch.

The elements are `(features, targets)` as `joining` describes them, keyed by `HKE_INDICATOR`,
`LABELS`, `MASK`, `IS_TARGET` and `TRUE_LABELS`. `batch_size` is the size of the batches a
pipeline yields: under `tf.distribute` pass the per-replica size,
`input_context.get_per_replica_batch_size(global_batch_size)`.

Evaluation order (`shuffle_buffer=0`) is deterministic: sorted files, a deterministic
interleave and deterministic parallel maps; a seeded shuffle is reproducible too (a resumed
epoch skips the batches it has done, so its order must not change).
"""

import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple, Union

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.data import bad_records as bad_records_lib
from kaml_tf.data import counters as counters_lib
from kaml_tf.data import day_filter
from kaml_tf.data import joining
from kaml_tf.data import masks as masks_lib
from kaml_tf.data import parsing
from kaml_tf.data import point_in_time
from kaml_tf.data import shuffling
from kaml_tf.data import sources
from kaml_tf.data import stats as stats_lib
from kaml_tf.logs import parquet as parquet_logs
from kaml_tf.logs import validation

# The pipeline's public names; each is defined by the stage that owns it.
HKE_INDICATOR = joining.HKE_INDICATOR
LABELS = joining.LABELS
MASK = joining.MASK
IS_TARGET = joining.IS_TARGET
TRUE_LABELS = joining.TRUE_LABELS
DatasetError = sources.DatasetError
parse_spec = parsing.parse_spec


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
      also run non-deterministically (a little faster). An int64 scalar tensor works too
      (e.g. a seed drawn in-graph on each parameter-server worker).
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
  seed: Union[None, int, tf.Tensor] = None
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
    counters: Optional[counters_lib.InputCounters] = None,
    bad_records: Optional[validation.BadRecords] = None,
    days: Optional[Tuple[int, int]] = None,
  ):
    """Checks the policy, the statistics and the schema against each other.

    Args:
      schema: The logs' schema.
      stats: Ad-task statistics (required by `adm`; checked against `schema` and
        `config.stats_mode` when given), static or daily.
      config: Files, batching, masks and shuffling.
      counters: Where to count samples and unknown ad tasks; a new one when None.
      bad_records: Under --skip_bad_records, the result of `validation.scan` over the files
        with `parse_spec`: its bad records are dropped (`bad_records`). None: every record
        must be valid (a bad one fails the pipeline; `validation.first_problem` names it).
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
    self._counters = counters if counters is not None else counters_lib.InputCounters()
    self._join = joining.StatsJoin(schema, stats, self._mask, self._stats_mode, self._counters)
    spec = parse_spec(schema, with_day=days is not None or self._join.by_day)
    self._parser = parsing.RecordParser(schema, spec)
    self._bad_records = bad_records

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
  def parse_spec(self) -> Dict[str, schema_lib.ParseFeature]:
    """The `tf.io.parse_example` spec the pipeline parses each batch with."""
    return self._parser.spec

  @property
  def counters(self) -> counters_lib.InputCounters:
    """Samples and unknown ad-task samples produced so far by this factory's pipelines."""
    return self._counters

  def log_counters(self) -> Tuple[int, int]:
    """Logs and returns (unknown ad-task samples, samples read)."""
    source = self._stats.source if self._stats is not None else "the statistics"
    return self._counters.log(source)

  def files_for(
    self, input_context: Optional[tf.distribute.InputContext] = None
  ) -> Tuple[List[str], bool]:
    """This pipeline's share of the sorted log files (`sources.pipeline_share`).

    Returns:
      (files, whether records still need sharding): with fewer files than input pipelines
      every pipeline reads all files and keeps every num_pipelines-th record.

    Raises:
      DatasetError: when Parquet and TFRecord logs are mixed.
    """
    files, shard = self._share(input_context)
    return files, shard is not None

  def _share(
    self, input_context: Optional[tf.distribute.InputContext]
  ) -> Tuple[List[str], Optional[sources.RecordShard]]:
    files = sources.list_logs(self._config.files, self._bad_records)
    return sources.pipeline_share(files, input_context)

  def __call__(self, input_context: Optional[tf.distribute.InputContext] = None) -> tf.data.Dataset:
    """Builds the pipeline for one input pipeline (all files when `input_context` is None)."""
    config, parser, days = self._config, self._parser, self._days
    files, shard = self._share(input_context)
    if self._bad_records is None:
      # Reads on the host, eagerly, also when the factory is traced (parameter-server
      # training traces it on the chief for its workers).
      with tf.init_scope():
        sources.check_first_records(files, self._schema, parser.spec)
    # A seeded shuffle stays reproducible (a resumed epoch can skip the batches it has seen);
    # only an unseeded shuffle lets parallel stages hand out elements as they finish.
    deterministic = not config.shuffle or config.seed is not None
    parallel = dict(num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    # Records are parsed a batch at a time, or, when shuffling, a whole window at a time.
    size = config.shuffle_buffer if config.shuffle else config.batch_size
    drop = config.drop_remainder and not config.shuffle
    # With a day filter the batches are cut again after it, so none is dropped before.
    cut_drop = drop and days is None

    ds = sources.file_dataset(files)
    if config.shuffle:
      ds = shuffling.shuffle_files(ds, len(files), config.seed)
    interleave = sources.Interleave(
      min(config.cycle_length, len(files)), config.parallel_reads, deterministic
    )
    if parquet_logs.is_parquet(files[0]):
      rows = -(-size // interleave.cycle_length)
      ds = sources.read_parquet(
        ds, interleave, parser.dtypes, rows, self._bad_records, shard, parser.widths, self._schema
      )
      ds = ds.repeat() if config.repeat else ds
      # Slices of each file, concatenated across the files read in turn.
      ds = ds.rebatch(size, drop_remainder=cut_drop).map(parser.check, **parallel)
    else:
      table = bad_records_lib.table_for(self._bad_records, files)
      ds = sources.read_tfrecords(ds, interleave, table, shard)
      ds = ds.repeat() if config.repeat else ds
      ds = ds.batch(size, drop_remainder=cut_drop).map(parser.parse, **parallel)
    if days is not None:
      ds = day_filter.keep_days(ds, days, deterministic)
      # Shuffle windows are cut into batches below.
      ds = ds if config.shuffle else ds.rebatch(size, drop_remainder=drop)
    if config.shuffle:
      ds = shuffling.permuted_batches(
        ds, config.batch_size, config.seed, config.drop_remainder, deterministic
      )
    ds = ds.map(self._join, **parallel).prefetch(tf.data.AUTOTUNE)
    return ds.with_options(_options(deterministic, sharded=input_context is not None))


def _options(deterministic: bool, sharded: bool) -> tf.data.Options:
  options = tf.data.Options()
  options.deterministic = deterministic
  if sharded:
    # Sharded by pipeline here; tf.distribute must not shard again.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
  return options


def make_dataset(
  files: Union[str, Sequence[str]],
  schema: schema_lib.Schema,
  stats: Optional[stats_lib.ConversionStats] = None,
  policy: str = masks_lib.ADM,
  batch_size: int = 5000,
  alpha: Optional[Sequence[int]] = None,
  shuffle_buffer: int = 0,
  seed: Union[None, int, tf.Tensor] = None,
  input_context: Optional[tf.distribute.InputContext] = None,
  counters: Optional[counters_lib.InputCounters] = None,
  repeat: bool = False,
  drop_remainder: bool = False,
  bad_records: Optional[validation.BadRecords] = None,
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
    seed: Shuffle seed (an int, or an int64 scalar tensor).
    input_context: Shards the files (or records) across input pipelines.
    counters: Counts samples and unknown ad tasks; pass one to read them afterwards.
    repeat: Repeat forever.
    drop_remainder: Drop the last partial batch.
    bad_records: Bad records to drop (`validation.scan` of `files`), or None.
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
  return DatasetFactory(schema, stats, config, counters, bad_records, days)(input_context)
