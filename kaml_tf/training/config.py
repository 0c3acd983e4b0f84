"""Typed configuration of a training run, saved as `config.json` next to the checkpoints.

`RunConfig` nests the model, data, loss and optimisation settings. Entry points build it once
from flags; the library only ever sees these dataclasses. The saved JSON is what evaluation and
export read to rebuild the exact model, and what a rerun compares against before resuming.
"""

import dataclasses
import json
import os
from typing import Any, Dict, Mapping, Optional, Tuple

from kaml_tf import atomic
from kaml_tf import configs
from kaml_tf.data import masks
from kaml_tf.data import point_in_time
from kaml_tf.models import config as model_config_lib
from kaml_tf.training import optimizers
from kaml_tf.training import strategies

CONFIG_FILE = "config.json"
DEFAULT_EMBEDDING_LEARNING_RATE = 0.05

ConfigError = configs.ConfigError

_SKIP_BAD_RECORDS_HELP = (
  "Skip malformed log records (bad CRC or truncation, missing or mistyped fields, labels "
  "outside {0, 1}, targets outside [-1, N), NaN or infinite dense values, empty files), "
  "count them, log the total at the end and write it to the job's output metadata "
  "(train_summary.json for training). Default: fail on the first one with an error naming "
  "its file, record and field."
)


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """Where the training data comes from and how labels are masked (help: each field's).

  Days of --train, oldest first: training days, then `validation_days` K validation days,
  then `label_delay_days` L days excluded. The last L days are excluded, not trained on with
  partial labels: a conversion not reported yet is a false negative, and the newest days
  hold the most of them. Validation comes before them for the same reason: validating on
  labels that are known to be incomplete would score every model on false negatives.
  """

  schema_path: str = configs.field(help="The logs' schema.json.", flag="schema")
  train_files: str = configs.field(
    help="Glob(s) of training logs, comma-separated allowed: TFRecord, or Parquet "
    "(pipelines.convert_logs; the faster input).",
    flag="train",
  )
  stats_path: str = configs.field(
    "",
    "Conversion statistics (pipelines.compute_stats); needed by --mask=adm.",
    flag="stats",
  )
  mask_policy: str = configs.field(
    masks.BASE,
    "Mask policy: base (the target action only), adm (plus the actions the ad task reports "
    "often enough, eq. 8), all (every label), oracle (true labels; simulated data).",
    flag="mask",
    choices=masks.POLICIES,
  )
  alpha: Tuple[int, ...] = configs.field(
    (),
    "ADM thresholds, integers >= 1, one per action (default: the data path's, "
    "kaml_tf.data.masks.DEFAULT_ALPHA).",
  )
  validation_files: str = configs.field(
    "",
    "Glob(s) of validation logs, evaluated after each epoch (see --validation_days).",
    flag="validation",
  )
  shuffle_buffer: int = configs.field(
    100_000,
    "Rows shuffled together, one permuted window at a time (0: off; kaml_tf.data.dataset).",
  )
  skip_bad_records: bool = configs.field(False, _SKIP_BAD_RECORDS_HELP)
  parallel_reads: int = configs.field(
    0,
    "Reader threads per input pipeline (-1: tf.data picks). 0 reads the files in turn on "
    "the pipeline's own thread: the least CPU, and the fastest from local disk; give "
    "threads to logs on remote storage (GCS, HDFS).",
  )
  stats_mode: str = configs.field(
    point_in_time.AUTO,
    "How ADM joins --stats: point_in_time (daily statistics from compute_stats "
    "--as_of=daily: a row of day d is masked by counts of days d-T..d-1), static (one "
    "window, --as_of=end), or empty for the file's kind.",
    choices=point_in_time.STATS_MODES,
  )
  validation_days: int = configs.field(
    0,
    "Hold the last K days found in --train out of training and validate on them (0: off; "
    "not with --validation).",
  )
  label_delay_days: int = configs.field(
    0,
    "Conversion delay L: the last L days found in --train are not final (conversions still "
    "arriving) and excluded from training and validation; --validation_days are the K days "
    "before them (0: off).",
  )

  def __post_init__(self):
    object.__setattr__(self, "alpha", tuple(self.alpha))
    if self.validation_days < 0:
      raise self._error("validation_days", f"must be >= 0, got {self.validation_days}")
    if self.label_delay_days < 0:
      raise self._error("label_delay_days", f"must be >= 0, got {self.label_delay_days}")
    if self.validation_days and self.validation_files:
      raise self._error(
        "validation_days",
        "give either --validation (explicit files) or --validation_days (the last days of "
        "--train), not both",
      )
    if self.mask_policy not in masks.POLICIES:
      raise self._error(
        "mask_policy",
        f"unknown policy {self.mask_policy!r}; expected one of {list(masks.POLICIES)}",
      )
    if self.mask_policy == masks.ADM and not self.stats_path:
      raise self._error(
        "stats_path",
        "--mask=adm needs the conversion statistics file (--stats), "
        "written by `python -m pipelines.compute_stats`",
      )
    if any(isinstance(a, bool) or not isinstance(a, int) or a < 1 for a in self.alpha):
      raise self._error(
        "alpha", f"thresholds are window conversion counts, integers >= 1; got {list(self.alpha)}"
      )
    if self.shuffle_buffer < 0:
      raise self._error("shuffle_buffer", f"must be >= 0, got {self.shuffle_buffer}")
    if self.stats_mode not in point_in_time.STATS_MODES:
      raise self._error(
        "stats_mode",
        f"unknown {self.stats_mode!r}; expected one of {list(point_in_time.STATS_MODES)}",
      )
    if self.parallel_reads < -1:
      raise self._error(
        "parallel_reads", f"must be >= 0, or -1 to let tf.data pick, got {self.parallel_reads}"
      )

  @classmethod
  def _error(cls, name: str, message: str) -> ConfigError:
    return ConfigError.of(cls, name, message)


@dataclasses.dataclass(frozen=True)
class LossConfig:
  """KAML's joint loss (eq. 13): gamma * masked BCE + (1 - gamma) * RLU ranking loss."""

  gamma: float = configs.field(
    1.0,
    "gamma of eq. 13: the weight of the BCE term in [0, 1]; 1.0 switches the ranking loss "
    "(RLU) off.",
    flag="rank_gamma",
  )
  rank_betas: Tuple[float, ...] = configs.field(
    (), "Ranking weights beta_k, one per action (default: all ones)."
  )
  bce_weights: Tuple[float, ...] = configs.field(
    (), "BCE weights, one per action (default: all ones)."
  )
  masked_pairs_only: bool = configs.field(
    False, "Rank only masked samples (restrict ranking pairs to them; an ablation)."
  )
  extended_weight: Tuple[float, ...] = configs.field(
    (),
    "Soft ADM (kaml_tf.losses.soft_adm): the BCE weight in [0, 1] of an extended cell "
    "(masked, not the row's target); one value for all actions or one per action "
    "(default 1 = ADM; 0 = the base mask's loss).",
  )

  def __post_init__(self):
    object.__setattr__(self, "rank_betas", tuple(float(b) for b in self.rank_betas))
    object.__setattr__(self, "bce_weights", tuple(float(b) for b in self.bce_weights))
    if not 0.0 <= self.gamma <= 1.0:
      raise ConfigError.of(LossConfig, "gamma", f"must be in [0, 1], got {self.gamma}")
    object.__setattr__(self, "extended_weight", tuple(float(w) for w in self.extended_weight))
    if not all(0.0 <= w <= 1.0 for w in self.extended_weight):
      raise ConfigError.of(
        LossConfig,
        "extended_weight",
        f"each weight must be in [0, 1] (0 = base mask, 1 = ADM), got {list(self.extended_weight)}",
      )


@dataclasses.dataclass(frozen=True)
class OptimConfig:
  """Optimisation and bookkeeping. Defaults are the paper's (Adam, 1e-3, batch 5000)."""

  learning_rate: float = configs.field(1e-3, "Adam learning rate.")
  embedding_optimizer: str = configs.field(
    optimizers.ADAM,
    "Optimizer of the embedding tables: adam (one Adam for every variable), adagrad or ftrl "
    "(the tables at --embedding_learning_rate, every other variable with Adam at "
    "--learning_rate; kaml_tf.training.optimizers).",
    choices=optimizers.EMBEDDING_OPTIMIZERS,
  )
  embedding_learning_rate: float = configs.field(
    DEFAULT_EMBEDDING_LEARNING_RATE,
    "Learning rate of --embedding_optimizer=adagrad or ftrl (not used with adam).",
  )
  batch_size: int = configs.field(5000, "Global batch size (split across replicas).")
  epochs: int = configs.field(
    1, "Passes over the training files (the most, with --early_stopping_patience)."
  )
  steps_per_epoch: Optional[int] = configs.field(
    None, "Cap on steps per epoch (default: until the files are exhausted)."
  )
  checkpoint_every_steps: int = configs.field(
    0, "Also checkpoint every N steps (0: only at epoch ends).", flag="checkpoint_every"
  )
  keep_checkpoints: int = configs.field(3, "Checkpoints kept on disk.")
  seed: int = configs.field(0, "Seed of initialisation and shuffling.")
  deterministic: bool = configs.field(
    False, "TF op determinism: bit-for-bit repeatable runs, slower."
  )
  strategy: str = configs.field(
    "default",
    "tf.distribute strategy: default (one device), mirrored (local devices), multi_worker "
    "(TF_CONFIG's cluster), parameter_server (TF_CONFIG's chief, worker and ps tasks; "
    "asynchronous, the embedding tables sharded over the ps tasks).",
    choices=strategies.NAMES,
  )
  ps_min_shard_bytes: int = configs.field(
    strategies.DEFAULT_MIN_SHARD_BYTES,
    "Under --strategy=parameter_server: a variable is cut along its first axis into shards "
    "of at least this many bytes, at most one per ps task (a smaller one stays whole).",
  )
  log_every_steps: int = configs.field(50, "TensorBoard scalar frequency, in steps.")
  calibrate: bool = configs.field(
    False,
    "After training, fit per-action Platt scaling on the validation set (--validation or "
    "--validation_days), each action on its own target rows, into MODEL_DIR/calibration.json "
    "(kaml_tf.calibration); evaluation and export then serve calibrated probabilities.",
  )
  early_stopping_patience: int = configs.field(
    0,
    "Stop after this many validation evaluations in a row without a better per-target "
    "overall AUC (0: never; --epochs is the maximum). The best network is kept in "
    "MODEL_DIR/best/.",
  )
  eval_every_steps: int = configs.field(
    0, "Also validate every N global steps (0: after each epoch only)."
  )
  warm_start_from: str = configs.field(
    "",
    "Start a new run from this model directory's network (its best checkpoint, else its "
    "latest): same schema and model config; then train on --train only. Ignored once this "
    "run has checkpoints of its own (it resumes). See kaml_tf.training.warm_start.",
  )
  warm_start_optimizer: bool = configs.field(
    False,
    "With --warm_start_from, restore the optimizer state too (from the training checkpoint "
    "of the best network's step); default: a fresh optimizer.",
  )

  def __post_init__(self):
    if not self.learning_rate > 0:
      raise self._error("learning_rate", f"must be > 0, got {self.learning_rate}")
    self._check_embedding_optimizer()
    for name in (
      "batch_size",
      "epochs",
      "keep_checkpoints",
      "log_every_steps",
      "ps_min_shard_bytes",
    ):
      if getattr(self, name) < 1:
        raise self._error(name, f"must be >= 1, got {getattr(self, name)}")
    if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
      raise self._error("steps_per_epoch", f"must be >= 1, got {self.steps_per_epoch}")
    if self.checkpoint_every_steps < 0:
      raise self._error(
        "checkpoint_every_steps", f"must be >= 0, got {self.checkpoint_every_steps}"
      )
    for name in ("early_stopping_patience", "eval_every_steps"):
      if getattr(self, name) < 0:
        raise self._error(name, f"must be >= 0, got {getattr(self, name)}")
    if self.warm_start_optimizer and not self.warm_start_from:
      raise self._error("warm_start_optimizer", "needs --warm_start_from")
    if self.strategy not in strategies.NAMES:
      raise self._error(
        "strategy", f"unknown {self.strategy!r}; expected one of {list(strategies.NAMES)}"
      )

  def _check_embedding_optimizer(self) -> None:
    if self.embedding_optimizer not in optimizers.EMBEDDING_OPTIMIZERS:
      raise self._error(
        "embedding_optimizer",
        f"unknown {self.embedding_optimizer!r}; expected one of "
        f"{list(optimizers.EMBEDDING_OPTIMIZERS)}",
      )
    if not self.embedding_learning_rate > 0:
      raise self._error(
        "embedding_learning_rate", f"must be > 0, got {self.embedding_learning_rate}"
      )
    if self.embedding_optimizer == optimizers.ADAM:
      # A rate that would be silently ignored.
      if self.embedding_learning_rate != DEFAULT_EMBEDDING_LEARNING_RATE:
        raise self._error(
          "embedding_learning_rate",
          f"is only used with --embedding_optimizer={optimizers.ADAGRAD} or "
          f"{optimizers.FTRL}; under {optimizers.ADAM} the tables train at --learning_rate",
        )
    elif self.strategy == strategies.PARAMETER_SERVER:
      raise self._error(
        "embedding_optimizer",
        f"{self.embedding_optimizer} is not supported with "
        f"--strategy={strategies.PARAMETER_SERVER} (its tables are sharded over the ps tasks "
        "and only one optimizer is set up for them); use --embedding_optimizer=adam or "
        "another strategy",
      )

  @classmethod
  def _error(cls, name: str, message: str) -> ConfigError:
    return ConfigError.of(cls, name, message)


@dataclasses.dataclass(frozen=True)
class RunConfig:
  """Everything that defines a training run."""

  data: DataConfig
  model: model_config_lib.ModelConfig
  loss: LossConfig = LossConfig()
  optim: OptimConfig = OptimConfig()

  def __post_init__(self):
    if self.optim.calibrate and not (self.data.validation_files or self.data.validation_days):
      raise ConfigError.of(
        OptimConfig,
        "calibrate",
        "the calibration is fitted on the validation set; give one with --validation_days "
        "or --validation",
      )
    if self.optim.strategy == strategies.PARAMETER_SERVER and not self.data.shuffle_buffer:
      raise ConfigError.of(
        DataConfig,
        "shuffle_buffer",
        f"must be > 0 under --strategy={strategies.PARAMETER_SERVER}: every worker reads "
        "every training file (TF 2.16 gives all workers one input pipeline), and only each "
        "worker's own shuffle keeps them from training on the same batches",
      )

  def validate_against(self, num_actions: int) -> None:
    """Checks the per-action lists against the schema's N actions."""
    for owner, name in (
      (DataConfig, "alpha"),
      (LossConfig, "rank_betas"),
      (LossConfig, "bce_weights"),
    ):
      values = getattr(self.data if owner is DataConfig else self.loss, name)
      if values and len(values) != num_actions:
        raise ConfigError.of(
          owner,
          name,
          f"expected {num_actions} values (one per action), got {len(values)}: {list(values)}",
        )
    weights = self.loss.extended_weight
    if len(weights) not in (0, 1, num_actions):
      raise ConfigError.of(
        LossConfig,
        "extended_weight",
        f"expected 1 value (all actions) or {num_actions} (one per action), "
        f"got {len(weights)}: {list(weights)}",
      )

  def to_dict(self) -> Dict[str, Any]:
    return {
      "data": dataclasses.asdict(self.data),
      "model": self.model.to_dict(),
      "loss": dataclasses.asdict(self.loss),
      "optim": dataclasses.asdict(self.optim),
    }

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), indent=2, sort_keys=True)

  @classmethod
  def from_dict(cls, data: Mapping[str, Any]) -> "RunConfig":
    return cls(
      data=DataConfig(**data["data"]),
      model=model_config_lib.ModelConfig.from_dict(data["model"]),
      loss=LossConfig(**data["loss"]),
      optim=OptimConfig(**data["optim"]),
    )

  def save(self, model_dir: str) -> None:
    atomic.write_text(os.path.join(model_dir, CONFIG_FILE), self.to_json() + "\n")

  @classmethod
  def load(cls, model_dir: str) -> "RunConfig":
    path = os.path.join(model_dir, CONFIG_FILE)
    if not os.path.exists(path):
      raise FileNotFoundError(
        f"{path}: no training config; is {model_dir} a model directory "
        "written by `python -m pipelines.train`?"
      )
    with open(path, encoding="utf-8") as f:
      return cls.from_dict(json.load(f))
