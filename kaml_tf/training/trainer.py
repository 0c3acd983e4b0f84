"""Runs a training job: builds data, network and task from a `RunConfig` and fits resumably.

Epoch e reads the training files in an order shuffled with seed `seed + e`; a checkpoint
records the epoch and the batches done within it, so a rerun after a kill skips exactly those
batches and continues. Only the chief writes config, checkpoints and TensorBoard logs; other
workers save into a scratch directory (checkpoint saving is a collective under
MultiWorkerMirroredStrategy, so every worker must take part) and resume from the chief's
checkpoints, so the model directory must be on storage every worker can read.

With a validation set (--validation, or the last --validation_days days of the training logs,
which training then skips), `validation_loop` evaluates after every epoch and every
--eval_every_steps steps, keeps the best network in MODEL_DIR/best/ and stops early after
--early_stopping_patience evaluations without improvement.

Parameter-server training (`--strategy=parameter_server`). The chief runs this module; Keras
`fit` dispatches each step to a free worker, which reads the variables from the ps tasks and
applies its own gradient there (asynchronous training). The input is a `DatasetCreator` over
the dataset factory, which each worker runs for itself: TF 2.16 gives every worker the same
input context (one pipeline, id 0) and the same traced graph, so the workers cannot split the
files between them; each reads every training file, repeated, in an order shuffled with a seed
it draws itself (hence --shuffle_buffer > 0), and an epoch is --steps_per_epoch steps of any
workers. A resumed run therefore continues at the checkpoint's step with fresh shuffles rather
than skipping the batches done. The statistics tables and input counters are created in the
strategy's scope: every worker gets its own copy of the tables, and the counters live on a ps
task, so they add up what all workers read. Checkpoints, validation, calibration and
TensorBoard (epoch-level only) stay on the chief; a save or an evaluation first waits for the
steps already dispatched.
"""

import contextlib
import dataclasses
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from typing import Dict, List, Optional

import kaml_tf  # noqa: F401
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.calibration import fitting as calibration_fitting
from kaml_tf.data import counters as counters_lib
from kaml_tf.data import dataset as dataset_lib
from kaml_tf.data import days as days_lib
from kaml_tf.data import point_in_time
from kaml_tf.data import stats as stats_lib
from kaml_tf.logs import parquet as parquet_logs
from kaml_tf.logs import records
from kaml_tf.logs import validation
from kaml_tf import atomic
from kaml_tf.losses import joint
from kaml_tf.models import builder
from kaml_tf.training import checkpointing
from kaml_tf.training import cluster
from kaml_tf.training import config as config_lib
from kaml_tf.training import model_dir as model_dir_lib
from kaml_tf.training import optimizers
from kaml_tf.training import strategies
from kaml_tf.training import task as task_lib
from kaml_tf.training import validation_loop
from kaml_tf.training import warm_start

# The class of the no-op strategy used outside any `strategy.scope()` (read at import, when no
# scope is open): the only strategy whose datasets stay plain `tf.data.Dataset`s.
_DEFAULT_STRATEGY_TYPE = type(tf.distribute.get_strategy())


@dataclasses.dataclass
class TrainResult:
  """What a finished `train` call did.

  Attributes:
    epochs: Epochs completed in the model directory (including earlier runs; an epoch cut
      short by early stopping counts).
    steps: Optimizer steps taken in total.
    resumed_from: Checkpoint restored at start, or None for a fresh run.
    history: Per-epoch logs (loss terms, AUCs, validation) of this call.
    seconds: Wall time of this call's fitting.
    samples_per_second: Training throughput of this call.
    skipped_bad_records: What --skip_bad_records skipped (`BadRecords.to_dict()`), or None
      when the run did not skip.
    validation_days: [first, last] days held out by --validation_days, or None.
    validation_history: Every validation evaluation of the run (including earlier calls).
    best: The best evaluation (`early_stopping.EarlyStopping.best`), or None.
    stopped_early: Whether early stopping ended the run.
    warm_started_from: The other run's checkpoint this run started from
      (`optim.warm_start_from`), or None.
    epoch_seconds: Wall time of each epoch this call fitted (`history` order), the first
      one's tracing included.
    variable_shards: Under parameter-server training, the devices of the shards of each
      partitioned network variable by name (e.g. an embedding table over two ps tasks);
      None under other strategies.
  """

  epochs: int
  steps: int
  resumed_from: Optional[str]
  history: List[Dict[str, float]]
  seconds: float
  samples_per_second: float
  skipped_bad_records: Optional[Dict[str, object]] = None
  validation_days: Optional[List[int]] = None
  validation_history: List[Dict[str, float]] = dataclasses.field(default_factory=list)
  best: Optional[Dict[str, object]] = None
  stopped_early: bool = False
  warm_started_from: Optional[str] = None
  epoch_seconds: List[float] = dataclasses.field(default_factory=list)
  variable_shards: Optional[Dict[str, List[str]]] = None


def is_chief(strategy: tf.distribute.Strategy) -> bool:
  """True on the worker that owns the outputs (always true without multi-worker)."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not resolver.cluster_spec().as_dict():
    return True
  task_type, task_id = resolver.task_type, resolver.task_id
  return task_type == "chief" or (
    task_type == "worker" and task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()
  )


def build_task(schema: schema_lib.Schema, run_config: config_lib.RunConfig) -> task_lib.KamlTask:
  """The network wrapped with the run's loss, compiled with Adam (call inside the scope).

  With `optim.embedding_optimizer` other than adam, the embedding tables get that optimizer
  (`kaml_tf.training.optimizers`) and Adam the other variables.
  """
  network = builder.build_model(schema, run_config.model)
  loss_cfg = run_config.loss
  loss = joint.KamlLoss(
    gamma=loss_cfg.gamma,
    bce_weights=loss_cfg.bce_weights or None,
    betas=loss_cfg.rank_betas or None,
    masked_pairs_only=loss_cfg.masked_pairs_only,
    extended_weight=loss_cfg.extended_weight or None,
  )
  optim = run_config.optim
  task = task_lib.KamlTask(
    network,
    loss,
    schema.actions,
    optimizers.embedding_optimizer(optim.embedding_optimizer, optim.embedding_learning_rate),
  )
  task.compile(optimizer=tf.keras.optimizers.Adam(optim.learning_rate))
  # Slots now, not in the first step: a train function that creates variables is traced a
  # second time, which is slow under MultiWorkerMirroredStrategy
  # (measured: docs/results/timings/library.md#optimizer-slots-before-the-first-step).
  task.build_optimizers()
  return task


class _Datasets:
  """Builds the (distributed) training datasets of a run (validation: `validation_loop`)."""

  def __init__(
    self,
    schema,
    run_config: config_lib.RunConfig,
    strategy,
    train_days: Optional[days_lib.DayRange] = None,
  ):
    self._schema = schema
    self._train_days = train_days
    self._config = run_config
    self._strategy = strategy
    data = run_config.data
    self._stats = stats_lib.load_stats(data.stats_path, schema) if data.stats_path else None
    self.counters = counters_lib.InputCounters()
    self.spec = dataset_lib.parse_spec(schema, with_day=self._train_days is not None)
    self.files = [f for f in (data.train_files, data.validation_files) if f]
    # Under --skip_bad_records every file is checked once up front; the pipelines then filter
    # the bad records in-graph on every epoch.
    self.bad_records = self._scan() if data.skip_bad_records else None

  def _scan(self) -> validation.BadRecords:
    logging.info("--skip_bad_records: checking every record of %s", ", ".join(self.files))
    bad = validation.BadRecords()
    for files in self.files:
      validation.scan(files, self._schema, self.spec, bad=bad)
    # The totals are logged once, at the end of the job.
    return bad

  def diagnose(self, error: Exception) -> Exception:
    """The `BadRecordError` naming the record behind a failed step, else `error` itself."""
    for files in self.files:
      found = validation.first_problem(files, self._schema, self.spec)
      if found is not None:
        return found
    return error

  def _make(self, files: str, shuffle_seed, batches_done: int, ctx, repeat: bool = False):
    data, optim = self._config.data, self._config.optim
    batch = ctx.get_per_replica_batch_size(optim.batch_size) if ctx else optim.batch_size
    ds = dataset_lib.make_dataset(
      files,
      self._schema,
      stats=self._stats,
      policy=data.mask_policy,
      batch_size=batch,
      alpha=data.alpha or None,
      shuffle_buffer=data.shuffle_buffer if shuffle_seed is not None else 0,
      seed=shuffle_seed,
      input_context=ctx,
      counters=self.counters,
      bad_records=self.bad_records,
      parallel_reads=data.parallel_reads,
      stats_mode=data.stats_mode,
      days=self._train_days,
      repeat=repeat,
    )
    return ds.skip(batches_done) if batches_done else ds

  def train(self, epoch: int, batches_done: int):
    if strategies.is_parameter_server(self._strategy):
      # Keras hands it to each worker (the module docstring): no epoch order, nothing skipped.
      return tf.keras.utils.experimental.DatasetCreator(self._worker_stream)
    seed = self._config.optim.seed + epoch
    return self._strategy.distribute_datasets_from_function(
      lambda ctx: self._make(self._config.data.train_files, seed, batches_done, ctx)
    )

  def _worker_stream(self, ctx):
    """One parameter-server worker's endless stream, traced on the chief into its own graph."""
    # TF pairs a tensor seed with the graph's seed and compares the pair with (0, 0) in Python,
    # which fails in a graph when that seed is 0 (--seed=0); this graph's seed is set apart
    # (it changes nothing else: the tensor seed alone orders the stream).
    tf.random.set_seed(1)
    return self._make(self._config.data.train_files, _worker_seed(), 0, ctx, repeat=True)


def _worker_seed() -> tf.Tensor:
  """An int64 shuffle seed drawn where the dataset graph runs: each worker draws its own.

  Both op seeds 0 make the kernel seed itself from the OS, whatever `tf.random.set_seed`
  says, so the one graph the chief traces draws another seed on every worker.
  """
  return tf.raw_ops.RandomUniformInt(
    shape=tf.constant([], tf.int32),
    minval=tf.constant(0, tf.int64),
    maxval=tf.constant(2**31 - 1, tf.int64),
    seed=0,
    seed2=0,
  )


def _callbacks(
  state, run_config, log_dir: Optional[str], batches_done: int, validation=None, per_step=True
):
  callbacks = [
    checkpointing.CheckpointCallback(
      state, run_config.optim.checkpoint_every_steps, batches_done, validation
    )
  ]
  if log_dir:
    callbacks.append(
      tf.keras.callbacks.TensorBoard(
        log_dir=log_dir,
        update_freq=run_config.optim.log_every_steps if per_step else "epoch",
        profile_batch=0,
      )
    )
  return callbacks


def _restore(state, model_dir: str, strategy, chief: bool) -> Optional[str]:
  """Restores the latest checkpoint of `model_dir`; every worker must resume the same one.

  A non-chief worker saves into scratch but reads the chief's checkpoints: workers that
  started from different steps would run different numbers of collectives and hang.

  Raises:
    model_dir_lib.ModelDirError: if the workers restored different progress.
  """
  if chief:
    path = state.restore_latest()
  else:
    path = tf.train.latest_checkpoint(os.path.join(model_dir, model_dir_lib.CHECKPOINT_DIR))
    if path:
      state.checkpoint.restore(path).assert_existing_objects_matched().expect_partial()
  steps = cluster.gather_over_replicas(strategy, int(state.global_step))
  if len(set(steps)) > 1:
    raise model_dir_lib.ModelDirError(
      f"{model_dir}: the workers resumed from different steps {steps}; the model directory "
      "must be on storage shared by every worker (e.g. GCS or NFS), not a local path"
    )
  return path


def _check_distributable(run_config: config_lib.RunConfig, strategy) -> None:
  """Fails before any work on what tf-keras cannot fit from a distributed dataset.

  Under any strategy but the default one the datasets are distributed, and `fit` then needs
  the number of steps: it cannot run a distributed dataset to its end by itself.
  """
  if isinstance(strategy, _DEFAULT_STRATEGY_TYPE):
    return
  if strategies.is_parameter_server(strategy):
    check_parameter_server_inputs(run_config)
  if not run_config.optim.steps_per_epoch:
    raise config_lib.ConfigError(
      "steps_per_epoch: required under a tf.distribute strategy (Keras cannot find the end "
      "of a distributed dataset); set it to the steps of one pass, ceil(records of the "
      "largest worker's files / (batch_size / replicas)), or more: the epoch then ends when "
      "every worker has read all its files"
    )


def check_parameter_server_inputs(run_config: config_lib.RunConfig) -> None:
  """Refuses training logs the parameter-server workers cannot read.

  The Parquet reader is a Python generator (`tf.data.Dataset.from_generator`): it runs only
  in the process that built the dataset, and under ParameterServerStrategy the workers run a
  graph the chief traced.

  Raises:
    config_lib.ConfigError: naming `train_files` when they hold Parquet logs.
  """
  parquet = [
    f for f in records.list_files(run_config.data.train_files) if parquet_logs.is_parquet(f)
  ]
  if parquet:
    raise config_lib.ConfigError.of(
      config_lib.DataConfig,
      "train_files",
      f"{parquet[0]} is a Parquet log, which --strategy={strategies.PARAMETER_SERVER} cannot "
      "read (its reader is a Python generator, and the workers run a graph the chief "
      "traced); train on TFRecord logs (`pipelines.convert_logs --to_format=tfrecord`)",
    )


def train(
  run_config: config_lib.RunConfig,
  model_dir: str,
  strategy: Optional[tf.distribute.Strategy] = None,
  verbose: Optional[int] = None,
) -> TrainResult:
  """Trains (or resumes training) in `model_dir` and returns what was done.

  With `optim.calibrate`, the chief then fits the per-action calibration of the checkpoint
  evaluation and export restore by default (the best one, else the latest) on the validation
  set (its files, restricted to --validation_days when those were held out) and writes
  MODEL_DIR/calibration.json.

  Args:
    run_config: The resolved run configuration.
    model_dir: Output directory (see `kaml_tf.training.model_dir`).
    strategy: A `tf.distribute` strategy; the default strategy when None.
    verbose: Keras verbosity; default: a live progress bar on a terminal, one line per
      epoch otherwise (logs of batch jobs).

  Raises:
    config_lib.ConfigError: if per-action lists do not match the schema, a distributed
      run lacks steps_per_epoch, early stopping lacks a validation set, or the logs hold
      no more days than --validation_days.
    model_dir_lib.ModelDirError: if the directory is in use or holds another run, or the
      workers of a multi-worker run resumed from different checkpoints.
    point_in_time.StatsModeError: if `data.stats_mode` does not fit the statistics file.
  """
  schema = schema_lib.Schema.load(run_config.data.schema_path)
  run_config.validate_against(schema.num_actions)
  if run_config.data.stats_path:
    # Before the model directory is written: --stats_mode must fit the statistics file.
    # (Its schema is checked later, after the model directory's: a model dir of another
    # schema is the clearer error.)
    point_in_time.resolve_stats_mode(
      run_config.data.stats_mode, stats_lib.load_stats_header(run_config.data.stats_path)
    )
  strategy = strategy or tf.distribute.get_strategy()
  _check_distributable(run_config, strategy)
  validation_loop.check_config(run_config)
  # Before the model directory is written: a --validation_days the logs cannot serve fails
  # without leaving a run behind.
  validation_set = validation_loop.validation_set(run_config)
  train_days = validation_loop.training_days(run_config, validation_set)
  _check_stats_precede_validation(run_config, validation_set, schema)
  warm_start_path = (
    warm_start.source_checkpoint(run_config, schema) if run_config.optim.warm_start_from else None
  )
  chief = is_chief(strategy)
  if run_config.optim.deterministic:
    tf.config.experimental.enable_op_determinism()
  tf.keras.utils.set_random_seed(run_config.optim.seed)
  if chief:
    os.makedirs(model_dir, exist_ok=True)
  lock = model_dir_lib.DirectoryLock(model_dir) if chief else None
  scratch = None if chief else tempfile.mkdtemp(prefix="kaml-worker-")
  try:
    if lock:
      lock.__enter__()
    model_dir_lib.prepare(model_dir, run_config, schema, write=chief)
    result = _fit(
      run_config,
      schema,
      strategy,
      model_dir,
      scratch,
      verbose,
      validation_set,
      warm_start_path,
      train_days,
    )
    if chief and run_config.optim.calibrate:
      # Fitted for the checkpoint evaluation and export restore by default: the best one.
      calibration_fitting.fit_for(
        model_dir,
        validation_set.files,
        validation_set.days,
        skip_bad_records=run_config.data.skip_bad_records,
      )
    return result
  finally:
    if lock:
      lock.__exit__(None, None, None)
    if scratch:
      shutil.rmtree(scratch, ignore_errors=True)


def _check_stats_precede_validation(
  run_config: config_lib.RunConfig, validation_set, schema: schema_lib.Schema
) -> None:
  """Refuses static statistics that count a validation day (they would leak it into masks).

  Point-in-time statistics need no check: a row of day d only sees days before d, and the
  validation days follow the training days.
  """
  data = run_config.data
  if not (data.stats_path and validation_set and data.mask_policy == "adm"):
    return
  stats = stats_lib.load_stats_header(data.stats_path)
  if stats.days is not None:
    return
  first = (
    validation_set.days[0]
    if validation_set.days is not None
    else min(days_lib.days_in(validation_set.files, data.skip_bad_records, schema), default=None)
  )
  if first is not None and stats.window_end >= first:
    raise config_lib.ConfigError(
      f"stats: {data.stats_path} counts days {stats.window_start}..{stats.window_end}, which "
      f"include the first validation day {first}: its reports would decide training masks. "
      f"Recompute it with `compute_stats --end_day={first - 1}`, or use point-in-time "
      "statistics (`compute_stats --as_of=daily`)"
    )


def variable_shards(network: tf.keras.Model) -> Dict[str, List[str]]:
  """The devices of each partitioned variable's shards, by variable name (shard order)."""
  shards: Dict[str, List[str]] = {}
  for variable in network.variables:
    # A shard of a ShardedVariable is called `<name>/part_<i>:0`.
    name, found = re.subn(r"/part_\d+(:\d+)?$", "", variable.name)
    if found:
      shards.setdefault(name, []).append(variable.device)
  return shards


def _is_empty(dataset: tf.data.Dataset) -> bool:
  """Whether a (default-strategy, so plain) dataset yields nothing."""
  return not any(True for _ in dataset.take(1))


def _fit(
  run_config,
  schema,
  strategy,
  model_dir,
  scratch,
  verbose,
  validation_set=None,
  warm_from=None,
  train_days=None,
) -> TrainResult:
  out_dir = scratch or model_dir
  if verbose is None:
    verbose = 1 if sys.stdout.isatty() else 2
  parameter_server = strategies.is_parameter_server(strategy)
  if parameter_server:
    # Verbose 1 (a live progress bar) is refused under ParameterServerStrategy.
    verbose = 2 if verbose == 1 else verbose
  # Under parameter-server training, in the scope each worker gets its own copy of the
  # statistics tables, and the input counters live on a ps task where every worker adds to
  # them (the module docstring).
  with strategy.scope() if parameter_server else contextlib.nullcontext():
    datasets = _Datasets(schema, run_config, strategy, train_days)
  with strategy.scope():
    task = build_task(schema, run_config)
  log_dir = None if scratch else os.path.join(model_dir, model_dir_lib.LOG_DIR)
  validation = (
    validation_loop.ValidationLoop(
      validation_set,
      run_config,
      schema,
      task.network,
      strategy,
      chief=not scratch,
      out_dir=out_dir,
      model_dir=model_dir,
      log_dir=log_dir,
    )
    if validation_set
    else None
  )
  # Outside the scope: the progress counters are host-side bookkeeping that callbacks read
  # with int(); created in the scope they would be MirroredVariables, which int() rejects.
  state = checkpointing.CheckpointState(
    task.network,
    task.optimizer,
    os.path.join(out_dir, model_dir_lib.CHECKPOINT_DIR),
    run_config.optim.keep_checkpoints,
    extra=validation.variables if validation else None,
    embedding_optimizer=task.embedding_optimizer,
  )
  resumed = _restore(state, model_dir, strategy, chief=not scratch)
  if resumed:
    logging.info(
      "resuming from %s (epoch %d, batch %d)", resumed, int(state.epoch), int(state.step_in_epoch)
    )
  warm_started = None
  if not resumed and warm_from:
    warm_started = warm_from
    with_optimizer = run_config.optim.warm_start_optimizer
    warm_start.restore(
      task.network,
      task.optimizer if with_optimizer else None,
      warm_from,
      task.embedding_optimizer if with_optimizer else None,
    )
    logging.info("warm start from %s%s", warm_from, " with its optimizer" if with_optimizer else "")
  if validation:
    validation.restore(int(state.global_step))
  history: List[Dict[str, float]] = []
  epoch_seconds: List[float] = []
  start_steps = int(state.global_step)
  started = time.time()
  optim = run_config.optim
  for epoch in range(int(state.epoch), optim.epochs):
    if validation and validation.stopped:
      break
    batches_done = int(state.step_in_epoch)
    steps = optim.steps_per_epoch - batches_done if optim.steps_per_epoch else None
    if (steps is not None and steps <= 0) or (
      steps is None and batches_done and _is_empty(datasets.train(epoch, batches_done))
    ):
      # Killed after the checkpoint of the epoch's last batch, before the epoch's own: the
      # epoch is done (Keras refuses to fit an empty dataset).
      state.epoch.assign(epoch + 1)
      state.step_in_epoch.assign(0)
      evaluated = validation is not None and validation.after_epoch(
        epoch, batches_done, int(state.global_step)
      )
      if steps is None or evaluated:
        state.save()
      if evaluated:
        validation.after_save()
      continue
    epoch_started = time.time()
    try:
      fitted = task.fit(
        datasets.train(epoch, batches_done),
        epochs=epoch + 1,
        initial_epoch=epoch,
        steps_per_epoch=steps,
        callbacks=_callbacks(
          state, run_config, log_dir, batches_done, validation, per_step=not parameter_server
        ),
        verbose=verbose,
      )
    except (tf.errors.InvalidArgumentError, tf.errors.DataLossError, UnicodeDecodeError) as e:
      # A malformed record fails deep inside the input pipeline (TF's message may quote its
      # bytes, which need not be UTF-8); name it instead.
      raise datasets.diagnose(e) from None
    epoch_seconds.append(time.time() - epoch_started)
    history.append({k: float(v[-1]) for k, v in fitted.history.items()})
    unknown, read, cold_start = cluster.sum_over_workers(
      strategy,
      datasets.counters.log(run_config.data.stats_path or "the statistics")
      + (datasets.counters.cold_start_samples,),
    )
    history[-1].update(
      unknown_ad_task_samples=float(unknown),
      samples_read=float(read),
      cold_start_samples=float(cold_start),
    )
    datasets.counters.reset()
  seconds = time.time() - started
  steps_done = int(state.global_step) - start_steps
  result = TrainResult(
    epochs=int(state.epoch),
    steps=int(state.global_step),
    resumed_from=resumed,
    history=history,
    seconds=seconds,
    samples_per_second=steps_done * optim.batch_size / max(seconds, 1e-9),
    skipped_bad_records=(
      datasets.bad_records.to_dict() if datasets.bad_records is not None else None
    ),
  )
  result.warm_started_from = warm_started
  result.epoch_seconds = epoch_seconds
  if parameter_server:
    result.variable_shards = variable_shards(task.network)
  if validation:
    source, rule = validation.source, validation.rule
    result.validation_days = list(source.days) if source.days else None
    result.validation_history = rule.history
    result.best = rule.best
    result.stopped_early = rule.stopped
  if datasets.bad_records is not None:
    datasets.bad_records.log("train")
  if not scratch:
    atomic.write_text(
      os.path.join(model_dir, model_dir_lib.SUMMARY_FILE),
      json.dumps(dataclasses.asdict(result), indent=2) + "\n",
    )
  return result
