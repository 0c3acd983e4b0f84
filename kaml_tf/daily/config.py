"""`DailyConfig`: every setting of the daily loop, declared once (flags come from it)."""

import dataclasses

from kaml_tf import configs
from kaml_tf.models import config as model_config_lib
from kaml_tf.training import config as config_lib


@dataclasses.dataclass(frozen=True)
class DailyConfig:
  """Settings of one day's loop (help: each field's). See `kaml_tf.daily` for the layout."""

  # --run_day: --day is pipelines.infer_schema's day column, and every job imports together.
  day: int = configs.field(
    help="The run day D: day D's logs are the newest to arrive.", flag="run_day"
  )
  logs_root: str = configs.field(
    help="Folder of schema.json and one day=<D>/ folder of logs per day."
  )
  models_root: str = configs.field(
    help="Folder of the per-day candidate model directories and production.json."
  )
  exports_root: str = configs.field(help="Folder of the SavedModel versions TF Serving watches.")
  # --training_days: --train_days is pipelines.simulate's train window.
  train_days: int = configs.field(7, "Days of logs the candidate trains on.", flag="training_days")
  label_delay_days: int = configs.field(
    0,
    "Days L after which a day's conversions are final: on day D the newest complete day is "
    "D - L (evaluated on), training and statistics use the days before it.",
  )
  window_days: int = configs.field(
    28, "Statistics window T in days (the paper's four weeks by default)."
  )
  auc_tolerance: float = configs.field(
    0.002,
    "Promote only if the candidate's per-target overall AUC is at most this much below "
    "production's.",
  )
  logloss_tolerance: float = configs.field(
    0.002,
    "Promote only if the candidate's per-target overall LogLoss is at most this much above "
    "production's.",
  )
  auc_alert_drop: float = configs.field(
    0.05,
    "Alert (exit code 3, day report) when production's per-target AUC on the newest complete "
    "day is this much below its AUC at its previous evaluation (broken labels); 0: never.",
  )
  model: model_config_lib.ModelConfig = model_config_lib.ModelConfig()
  loss: config_lib.LossConfig = config_lib.LossConfig()
  optim: config_lib.OptimConfig = config_lib.OptimConfig()

  def __post_init__(self):
    if self.day < 0:
      raise self._error("day", f"must be >= 0, got {self.day}")
    for name in ("train_days", "window_days"):
      if getattr(self, name) < 1:
        raise self._error(name, f"must be >= 1, got {getattr(self, name)}")
    if self.label_delay_days < 0:
      raise self._error("label_delay_days", f"must be >= 0, got {self.label_delay_days}")
    for name in ("auc_tolerance", "logloss_tolerance", "auc_alert_drop"):
      if not getattr(self, name) >= 0:
        raise self._error(name, f"must be >= 0, got {getattr(self, name)}")
    if self.optim.warm_start_from:
      raise configs.ConfigError.of(
        config_lib.OptimConfig,
        "warm_start_from",
        "the daily loop warm-starts from production itself; leave it empty",
      )

  @classmethod
  def _error(cls, name: str, message: str) -> configs.ConfigError:
    return configs.ConfigError.of(cls, name, message)
