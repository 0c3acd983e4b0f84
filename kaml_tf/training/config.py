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
from kaml_tf.models import config as model_config_lib

CONFIG_FILE = "config.json"
MASK_POLICIES = ("base", "adm", "all", "oracle")
# "" picks the statistics file's kind (kaml_tf.data.point_in_time).
STATS_MODES = ("", "static", "point_in_time")
STRATEGIES = ("default", "mirrored", "multi_worker")


class ConfigError(ValueError):
  """A configuration value is invalid; the message names the field (and so the flag)."""


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """Where the training data comes from and how labels are masked.

  Attributes:
    schema_path: The logs' `schema.json`.
    train_files: Glob(s) of training logs, TFRecord or Parquet (comma-separated allowed).
    stats_path: Parquet conversion statistics (required for the `adm` policy).
    mask_policy: One of `MASK_POLICIES`.
    alpha: Per-action ADM thresholds, integers >= 1 (length N), or empty for the data path's
      defaults (`kaml_tf.data.masks.DEFAULT_ALPHA`).
    validation_files: Optional glob(s) evaluated after each epoch.
    shuffle_buffer: Rows shuffled together, one permuted window at a time (0 disables
      shuffling; `kaml_tf.data.dataset`).
    parallel_reads: Reader threads per input pipeline (-1: tf.data picks); 0 reads the files
      in turn on the pipeline's thread, the cheapest from local disk.
    skip_bad_records: Scan the logs first and filter out malformed records (counted in
      train_summary.json) instead of failing on the first one.
    stats_mode: How ADM joins the statistics: "point_in_time" (daily statistics, on
      (ad task, day)), "static" (one window, on ad task), or "" for the file's kind.
    validation_days: Hold the last K days found in `train_files` out of training and
      validate on them (0: off; exclusive with `validation_files`).
  """

  schema_path: str
  train_files: str
  stats_path: str = ""
  mask_policy: str = "adm"
  alpha: Tuple[int, ...] = ()
  validation_files: str = ""
  shuffle_buffer: int = 100_000
  skip_bad_records: bool = False
  parallel_reads: int = 0
  stats_mode: str = ""
  validation_days: int = 0

  def __post_init__(self):
    object.__setattr__(self, "alpha", tuple(self.alpha))
    if self.validation_days < 0:
      raise ConfigError(f"validation_days: must be >= 0, got {self.validation_days}")
    if self.validation_days and self.validation_files:
      raise ConfigError(
        "validation_days: give either --validation (explicit files) or "
        "--validation_days (the last days of --train), not both"
      )
    if self.mask_policy not in MASK_POLICIES:
      raise ConfigError(
        f"mask: unknown policy {self.mask_policy!r}; expected one of {list(MASK_POLICIES)}"
      )
    if self.mask_policy == "adm" and not self.stats_path:
      raise ConfigError(
        "stats: --mask=adm needs the conversion statistics file (--stats), "
        "written by `python -m pipelines.compute_stats`"
      )
    if any(isinstance(a, bool) or not isinstance(a, int) or a < 1 for a in self.alpha):
      raise ConfigError(
        f"alpha: thresholds are window conversion counts, integers >= 1; got {list(self.alpha)}"
      )
    if self.shuffle_buffer < 0:
      raise ConfigError(f"shuffle_buffer: must be >= 0, got {self.shuffle_buffer}")
    if self.stats_mode not in STATS_MODES:
      raise ConfigError(
        f"stats_mode: unknown {self.stats_mode!r}; expected one of {list(STATS_MODES)}"
      )
    if self.parallel_reads < -1:
      raise ConfigError(
        f"parallel_reads: must be >= 0, or -1 to let tf.data pick, got {self.parallel_reads}"
      )


@dataclasses.dataclass(frozen=True)
class LossConfig:
  """KAML's joint loss (eq. 13): gamma * masked BCE + (1 - gamma) * RLU ranking loss.

  Attributes:
    gamma: Weight of the BCE term in [0, 1]; 1.0 switches the ranking loss off.
    rank_betas: Per-action ranking weights beta_k (length N), or empty for all ones.
    bce_weights: Per-action BCE weights (length N), or empty for all ones.
    masked_pairs_only: Restrict ranking pairs to masked samples (ablation).
    extended_weight: Soft ADM (`kaml_tf.losses.soft_adm`): the loss weight of an extended cell
      (mask 1, not the row's target), each in [0, 1]; one value for every action or one per
      action; empty = 1.0 (ADM as is). 0 gives the base mask's loss.
  """

  gamma: float = 1.0
  rank_betas: Tuple[float, ...] = ()
  bce_weights: Tuple[float, ...] = ()
  masked_pairs_only: bool = False
  extended_weight: Tuple[float, ...] = ()

  def __post_init__(self):
    object.__setattr__(self, "rank_betas", tuple(float(b) for b in self.rank_betas))
    object.__setattr__(self, "bce_weights", tuple(float(b) for b in self.bce_weights))
    if not 0.0 <= self.gamma <= 1.0:
      raise ConfigError(f"rank_gamma: must be in [0, 1], got {self.gamma}")
    object.__setattr__(self, "extended_weight", tuple(float(w) for w in self.extended_weight))
    if not all(0.0 <= w <= 1.0 for w in self.extended_weight):
      raise ConfigError(
        f"extended_weight: each weight must be in [0, 1] (0 = base mask, "
        f"1 = ADM), got {list(self.extended_weight)}"
      )


@dataclasses.dataclass(frozen=True)
class OptimConfig:
  """Optimisation and bookkeeping. Defaults are the paper's (Adam, 1e-3, batch 5000).

  Attributes:
    learning_rate: Adam learning rate.
    batch_size: Global batch size (split across replicas).
    epochs: Passes over the training files.
    steps_per_epoch: Cap on steps per epoch (None: until the files are exhausted).
    checkpoint_every_steps: Extra checkpoints every N steps (0: only at epoch ends).
    keep_checkpoints: Checkpoints kept on disk.
    seed: Seeds initialisation and shuffling.
    deterministic: Enable TF op determinism (bit-for-bit repeatable, slower).
    strategy: One of `STRATEGIES`.
    log_every_steps: TensorBoard scalar frequency.
    calibrate: After training, fit per-action Platt scaling on the validation set and write
      MODEL_DIR/calibration.json (`kaml_tf.calibration`).
    early_stopping_patience: Validation evaluations in a row without improvement that stop
      training (0: off; `epochs` is then the maximum).
    eval_every_steps: Also evaluate the validation set every N global steps (0: only after
      each epoch).
  """

  learning_rate: float = 1e-3
  batch_size: int = 5000
  epochs: int = 1
  steps_per_epoch: Optional[int] = None
  checkpoint_every_steps: int = 0
  keep_checkpoints: int = 3
  seed: int = 0
  deterministic: bool = False
  strategy: str = "default"
  log_every_steps: int = 50
  calibrate: bool = False
  early_stopping_patience: int = 0
  eval_every_steps: int = 0

  def __post_init__(self):
    if not self.learning_rate > 0:
      raise ConfigError(f"learning_rate: must be > 0, got {self.learning_rate}")
    for name in ("batch_size", "epochs", "keep_checkpoints", "log_every_steps"):
      if getattr(self, name) < 1:
        raise ConfigError(f"{name}: must be >= 1, got {getattr(self, name)}")
    if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
      raise ConfigError(f"steps_per_epoch: must be >= 1, got {self.steps_per_epoch}")
    if self.checkpoint_every_steps < 0:
      raise ConfigError(f"checkpoint_every: must be >= 0, got {self.checkpoint_every_steps}")
    for name in ("early_stopping_patience", "eval_every_steps"):
      if getattr(self, name) < 0:
        raise ConfigError(f"{name}: must be >= 0, got {getattr(self, name)}")
    if self.strategy not in STRATEGIES:
      raise ConfigError(f"strategy: unknown {self.strategy!r}; expected one of {list(STRATEGIES)}")


@dataclasses.dataclass(frozen=True)
class RunConfig:
  """Everything that defines a training run."""

  data: DataConfig
  model: model_config_lib.ModelConfig
  loss: LossConfig = LossConfig()
  optim: OptimConfig = OptimConfig()

  def __post_init__(self):
    if self.optim.calibrate and not (self.data.validation_files or self.data.validation_days):
      raise ConfigError(
        "calibrate: the calibration is fitted on the validation set; give one "
        "with --validation_days or --validation"
      )

  def validate_against(self, num_actions: int) -> None:
    """Checks the per-action lists against the schema's N actions."""
    for flag, values in (
      ("alpha", self.data.alpha),
      ("rank_betas", self.loss.rank_betas),
      ("bce_weights", self.loss.bce_weights),
    ):
      if values and len(values) != num_actions:
        raise ConfigError(
          f"{flag}: expected {num_actions} values (one per action), "
          f"got {len(values)}: {list(values)}"
        )
    weights = self.loss.extended_weight
    if len(weights) not in (0, 1, num_actions):
      raise ConfigError(
        f"extended_weight: expected 1 value (all actions) or {num_actions} "
        f"(one per action), got {len(weights)}: {list(weights)}"
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
