"""Validation while training: the paper's metrics on held-out data, and early stopping.

The validation set is `--validation=GLOB`, or the last `--validation_days=K` days found in
`--train` (held out of training: the training pipeline keeps the other days). After every
epoch, and every `eval_every_steps` global steps, the current network scores it and the
metrics are exactly those of `pipelines.evaluate` (`evaluator.predict` then
`evaluator.metrics_of`, i.e. `metrics.per_target_metrics`): per-target AUC and LogLoss of
each action and pooled. The pooled AUC selects (`early_stopping.SELECTION_METRIC`): the best
network so far is kept in MODEL_DIR/best/ and `early_stopping_patience` evaluations in a row
without improvement stop training. Each evaluation is logged, written to TensorBoard
(MODEL_DIR/logs/validation) and to train_summary.json (`validation_history`, `best`).

State and kills. The rule's state is a string variable of the training checkpoint. At an
evaluation the state is updated, a checkpoint is saved, and only then is the best checkpoint
written; a job killed between the two resumes from that very checkpoint, whose network is the
best one, and writes it again (`restore`). Evaluations happen at fixed global steps and epoch
ends, so a resumed run evaluates where the uninterrupted one did.

Multi-worker. Only the chief scores the validation set. Its selection score is broadcast to
every worker (a sum over replicas to which only the chief contributes), and every worker
applies the same rule to the same score: all write the best checkpoint together (a checkpoint
write may be a collective; non-chief workers write theirs into their scratch directory) and
all stop after the same step. Scoring on every worker would only repeat the chief's work, and
workers whose scores differed in the last bit (other hosts, other math libraries) would take
different decisions and hang in the next collective. Only the chief writes files in the model
directory.

Parameter-server training. The chief alone runs the program: it scores the validation set
with the network whose variables live on the ps tasks, once the steps dispatched so far have
run, and decides alone.
"""

import dataclasses
import logging
import math
import os
from typing import Any, Dict, List, Optional

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.data import days as days_lib
from kaml_tf.logs import validation as validation_lib
from kaml_tf.evaluation import evaluator
from kaml_tf.training import cluster
from kaml_tf.training import config as config_lib
from kaml_tf.training import early_stopping
from kaml_tf.training import trained_model

SELECTION_METRIC = early_stopping.SELECTION_METRIC
WRITER_DIR = "validation"
STATE_NAME = "early_stopping"


@dataclasses.dataclass(frozen=True)
class ValidationSet:
  """What a run validates on, and which training days it keeps.

  Attributes:
    files: Validation logs (glob(s)).
    days: Inclusive (first, last) day range of the validation rows; None: every row.
    train_days: Inclusive (first, last) day range the training pipeline keeps; None: all.
  """

  files: str
  days: Optional[days_lib.DayRange] = None
  train_days: Optional[days_lib.DayRange] = None


def check_config(run_config: config_lib.RunConfig) -> None:
  """Refuses early stopping or step evaluations without a validation set.

  Raises:
    config_lib.ConfigError: naming the flag.
  """
  data, optim = run_config.data, run_config.optim
  if data.validation_files or data.validation_days:
    return
  for name in ("early_stopping_patience", "eval_every_steps"):
    if getattr(optim, name):
      raise config_lib.ConfigError(
        f"{name}: needs a validation set: --validation=GLOB or --validation_days=K"
      )


def validation_set(run_config: config_lib.RunConfig) -> Optional[ValidationSet]:
  """The run's validation set; with `validation_days` the days of `train_files` are read.

  Raises:
    config_lib.ConfigError: naming `validation_days` when the logs do not hold more days.
  """
  data = run_config.data
  if data.validation_files:
    return ValidationSet(files=data.validation_files)
  if not data.validation_days:
    return None
  found = _final_days(data)
  try:
    split = days_lib.hold_out_last(found, data.validation_days)
  except ValueError as e:
    raise config_lib.ConfigError(f"validation_days: {e} (--train={data.train_files})") from None
  logging.info(
    "--validation_days=%d: training on days %d..%d, validating on days %d..%d",
    data.validation_days,
    *split.train,
    *split.validation,
  )
  return ValidationSet(files=data.train_files, days=split.validation, train_days=split.train)


def training_days(
  run_config: config_lib.RunConfig, validation: Optional[ValidationSet]
) -> Optional[days_lib.DayRange]:
  """The (first, last) days the training pipeline keeps; None: every row of --train.

  The days before the validation days when they are held out of --train; else, with
  `label_delay_days` L, the days of --train but its last L (`config.DataConfig`).

  Raises:
    config_lib.ConfigError: naming `label_delay_days` when the logs do not hold more days.
  """
  if validation is not None and validation.train_days is not None:
    return validation.train_days
  if not run_config.data.label_delay_days:
    return None
  found = _final_days(run_config.data)
  logging.info(
    "--label_delay_days=%d: training on days %d..%d",
    run_config.data.label_delay_days,
    found[0],
    found[-1],
  )
  return found[0], found[-1]


def _final_days(data: config_lib.DataConfig) -> List[int]:
  """The days of --train whose labels are final: all but the last `label_delay_days`."""
  found = days_lib.days_in(
    data.train_files,
    skip_bad_records=data.skip_bad_records,
    schema=schema_lib.Schema.load(data.schema_path),
  )
  try:
    return days_lib.exclude_last(found, data.label_delay_days)
  except ValueError as e:
    raise config_lib.ConfigError(f"label_delay_days: {e} (--train={data.train_files})") from None


def flat_metrics(result: Dict[str, Any], actions) -> Dict[str, Optional[float]]:
  """The scalars of a `metrics.json` dict: pooled and per-action per-target AUC and LogLoss.

  Undefined values (an action without validation positives) are None, as in metrics.json.
  """
  result = evaluator.strict_json(result)
  flat = {
    SELECTION_METRIC: result["overall"]["auc"],
    "per_target_overall_logloss": result["overall"]["logloss"],
  }
  for action in actions:
    flat[f"per_target_auc_{action}"] = result["actions"][action]["auc"]
    flat[f"per_target_logloss_{action}"] = result["actions"][action]["logloss"]
  return flat


def _from_chief(
  strategy: tf.distribute.Strategy, value: Optional[float], chief: bool
) -> Optional[float]:
  """The chief's `value` (None: undefined) on every worker; a collective on several workers."""
  if not cluster.is_multi_worker(strategy):
    return value
  value = float("nan") if value is None else value
  calls = []

  def part(ctx):
    del ctx
    # One replica of the chief carries the value, every other replica zero: the sum is the
    # chief's value exactly (x + 0.0 == x, NaN included).
    first = not calls
    calls.append(True)
    return tf.constant(value if chief and first else 0.0, tf.float64)

  parts = strategy.experimental_distribute_values_from_function(part)
  total = float(strategy.reduce(tf.distribute.ReduceOp.SUM, parts, axis=None).numpy())
  return None if math.isnan(total) else total


class ValidationLoop:
  """Evaluates, keeps the best checkpoint and decides when to stop (see the module doc).

  Used as the `validation` hook of `checkpointing.CheckpointCallback`: `after_step` and
  `after_epoch` say whether they evaluated (the state changed, so a checkpoint must be
  saved), then `after_save` writes the best checkpoint if the evaluation improved.
  """

  def __init__(
    self,
    source: ValidationSet,
    run_config: config_lib.RunConfig,
    schema: schema_lib.Schema,
    network: tf.keras.Model,
    strategy: tf.distribute.Strategy,
    chief: bool,
    out_dir: str,
    model_dir: str,
    log_dir: Optional[str],
  ):
    """Creates the state variable (call outside any strategy scope, like the counters).

    Args:
      source: The validation set.
      run_config: The run's config (patience, evaluation frequency, bad-record policy).
      schema: The logs' schema.
      network: The network being trained.
      strategy: The training strategy.
      chief: Whether this worker owns the outputs.
      out_dir: Where this worker writes its best checkpoint (scratch on non-chief workers).
      model_dir: The model directory (the chief's best.json is read there on resume).
      log_dir: TensorBoard folder (None on non-chief workers).
    """
    self.source = source
    self._model = trained_model.TrainedModel(
      schema=schema, run_config=run_config, network=network, checkpoint=""
    )
    self._every = run_config.optim.eval_every_steps
    self._patience = run_config.optim.early_stopping_patience
    self._skip_bad = run_config.data.skip_bad_records
    self._strategy = strategy
    self._chief = chief
    self._out_dir = out_dir
    self._model_dir = model_dir
    self._writer_dir = os.path.join(log_dir, WRITER_DIR) if log_dir else None
    self._writer = None
    self._improved = False
    self.rule = early_stopping.EarlyStopping(self._patience)
    self.state = tf.Variable("", dtype=tf.string, trainable=False, name=STATE_NAME)

  @property
  def variables(self) -> Dict[str, tf.Variable]:
    """What `checkpointing.CheckpointState(extra=...)` must save."""
    return {STATE_NAME: self.state}

  @property
  def stopped(self) -> bool:
    return self.rule.stopped

  def restore(self, global_step: int) -> None:
    """Reads the state restored into the variable; rewrites a best checkpoint a kill lost.

    A collective under multi-worker training: every worker must call it.
    """
    self.rule = early_stopping.EarlyStopping.from_json(self.state.numpy().decode(), self._patience)
    best = self.rule.best
    if self.rule.stopped:
      logging.info(
        "this run stopped early at global step %d (best %s=%.6f at global step %d); "
        "nothing more to train",
        self.rule.last_global_step,
        SELECTION_METRIC,
        best["score"] if best else float("nan"),
        best["global_step"] if best else -1,
      )
    lost = False
    if self._chief and best is not None and best["global_step"] == global_step:
      on_disk = early_stopping.read_best(self._model_dir)
      lost = on_disk is None or on_disk["global_step"] != global_step
    if _from_chief(self._strategy, float(lost), self._chief) == 1.0:
      logging.info(
        "rewriting the best checkpoint (global step %d) a kill left unwritten", global_step
      )
      early_stopping.save_best(self._model.network, self._out_dir, best)

  def after_step(self, epoch: int, step: int, global_step: int) -> bool:
    """Evaluates every `eval_every_steps` global steps; returns whether it evaluated."""
    if not self._every or global_step % self._every:
      return False
    return self._evaluate(epoch, step, global_step)

  def after_epoch(self, epoch: int, steps: int, global_step: int) -> bool:
    """Evaluates at an epoch end, unless this network was just evaluated."""
    if self.rule.last_global_step == global_step:
      return False
    return self._evaluate(epoch, steps, global_step)

  def after_save(self) -> None:
    """Writes the best checkpoint if the last evaluation improved (every worker)."""
    if self._improved:
      early_stopping.save_best(self._model.network, self._out_dir, self.rule.best)
      self._improved = False
    if self.rule.stopped:
      logging.info(
        "early stopping at global step %d: %d evaluation(s) without improvement "
        "on %s; best %.6f at global step %d",
        self.rule.last_global_step,
        self.rule.evaluations_since_best,
        SELECTION_METRIC,
        self.rule.best["score"] if self.rule.best else float("nan"),
        self.rule.best["global_step"] if self.rule.best else -1,
      )

  def _evaluate(self, epoch: int, step: int, global_step: int) -> bool:
    entry: Dict[str, Any] = {"epoch": epoch, "step": step, "global_step": global_step}
    # Under parameter-server training the steps counted may still be queued on the workers.
    cluster.wait_for_scheduled_steps(self._strategy)
    if self._chief:
      entry.update(self.metrics())
    entry[SELECTION_METRIC] = _from_chief(self._strategy, entry.get(SELECTION_METRIC), self._chief)
    self._improved = self.rule.update(entry)
    self.state.assign(self.rule.to_json())
    if self._chief:
      self._log(entry)
    return True

  def metrics(self) -> Dict[str, float]:
    """The current network's flat validation metrics (`flat_metrics`)."""
    bad = validation_lib.BadRecords() if self._skip_bad else None
    predictions = evaluator.predict(self._model, self.source.files, bad=bad, days=self.source.days)
    actions = self._model.schema.actions
    return flat_metrics(evaluator.metrics_of(predictions, actions), actions)

  def _log(self, entry: Dict[str, Any]) -> None:
    logging.info(
      "validation after epoch %d batch %d (global step %d): %s=%s%s",
      entry["epoch"],
      entry["step"],
      entry["global_step"],
      SELECTION_METRIC,
      entry[SELECTION_METRIC],
      " (best so far)" if self._improved else "",
    )
    if self._writer_dir is None:
      return
    if self._writer is None:
      self._writer = tf.summary.create_file_writer(self._writer_dir)
    # Keras' TensorBoard callback makes recording conditional on its own batch counter.
    with self._writer.as_default(), tf.summary.record_if(True):
      for name, value in entry.items():
        if name not in ("epoch", "step", "global_step") and value is not None:
          tf.summary.scalar(name, value, step=entry["global_step"])
    self._writer.flush()
