r"""A simulated month of the daily loop: gated, warm-started production next to retraining.

  python -m pipelines.daily_month --output_dir=OUT [--month_days=28] [--rows_per_day=12000] \
      [--first_run_day=7] [--corrupt_day=20] [--drift_day=14 --new_task_share=0.2 \
      --report_switch_share=0.2] [simulation flags] [daily loop, model and optimizer flags]

Simulates the month (`pipelines.simulate`'s world flags; the rows and days come from
--month_days and --rows_per_day), runs `pipelines.daily`'s loop on every day from
--first_run_day, and scores on each next day the served model, the day's candidate and a
model retrained from scratch on the candidate's days (`experiments.month`). Writes
OUT/month.json and OUT/month.md; a killed run resumes where it stopped.
"""

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
from kaml_tf.daily import config as daily_config
from kaml_tf.datasets.simulation import simulator
from kaml_tf.models import config as model_config_lib
from kaml_tf.training import config as config_lib
from experiments import month as month_lib
from pipelines import common
from pipelines import dataclass_flags

_DERIVED = ("num_rows", "train_days", "test_days")
dataclass_flags.define(month_lib.MonthConfig, exclude=("output_dir",))
dataclass_flags.define(simulator.SimulationConfig, exclude=_DERIVED)
_LOOP_FOLDERS = ("day", "logs_root", "models_root", "exports_root")
dataclass_flags.define(daily_config.DailyConfig, exclude=_LOOP_FOLDERS + ("model", "loss", "optim"))
dataclass_flags.define(model_config_lib.ModelConfig)
dataclass_flags.define(config_lib.LossConfig)
dataclass_flags.define(
  config_lib.OptimConfig, exclude=("warm_start_from", "warm_start_optimizer", "calibrate")
)
dataclass_flags.use(common.OUTPUT_DIR)


def configs_from_flags():
  """(MonthConfig, the world's SimulationConfig, the loop's DailyConfig) of the flags."""
  month = dataclass_flags.build(
    month_lib.MonthConfig, output_dir=dataclass_flags.required(common.OUTPUT_DIR)
  )
  # The month sets the world's rows and days (`MonthConfig.simulation`); placeholders here.
  world = dataclass_flags.build(
    simulator.SimulationConfig, num_rows=month.month_days, train_days=1, test_days=1
  )
  daily = dataclass_flags.build(
    daily_config.DailyConfig, day=0, logs_root="", models_root="", exports_root=""
  )
  return month, world, daily


@common.job
def main(argv):
  del argv
  month, world, daily = configs_from_flags()
  result = month_lib.run_month(month, world, daily)
  summary = result["summary"]
  print(
    "mean test AUC: served %.4f, candidate %.4f, scratch %.4f; kept days %s"
    % (
      summary["served"]["auc"],
      summary["candidate"]["auc"],
      summary["scratch"]["auc"],
      summary["kept_days"] or "none",
    )
  )


if __name__ == "__main__":
  common.run(main)
