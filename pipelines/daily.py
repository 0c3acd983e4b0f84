r"""Runs one day of the production loop: validate, statistics, train, evaluate, gate, promote.

  python -m pipelines.daily --run_day=D --logs_root=LOGS --models_root=MODELS \
      --exports_root=EXPORTS [--training_days=7] [--label_delay_days=0] \
      [--auc_tolerance=0.002] [--logloss_tolerance=0.002] [model, loss and optimizer flags]

Layout, the conversion-delay rule and the steps: `kaml_tf.daily`. Each step is resumable:
rerunning a killed day continues it, rerunning a finished day changes nothing. The model,
loss and optimizer flags are those of `pipelines.train` (the candidate warm-starts from
production, so they must stay the same from day to day).

Exit codes (for the scheduler): 0, the day finished (MODELS/<D>/day_report.md says whether
the candidate was promoted or production kept); 2, bad input (no logs for the day, logs that
fail validation, nothing to train on, a production model of another schema or architecture): fix the input or the flags,
production is untouched; 1, any other error, including a second loop for the same day
(which refuses while the first runs); 3, the day finished but production's own AUC on the
newest complete day fell by more than --auc_alert_drop since its last evaluation (broken
labels, usually: look at that day's logs). Alert on 1, 2 and 3, and on many kept days in a
row.
"""

import sys

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
from kaml_tf.daily import config as daily_config
from kaml_tf.daily import errors
from kaml_tf.daily import lock
from kaml_tf.daily import loop
from kaml_tf.models import config as model_config_lib
from kaml_tf.training import config as config_lib
from pipelines import common
from pipelines import dataclass_flags

dataclass_flags.define(daily_config.DailyConfig, exclude=("model", "loss", "optim"))
dataclass_flags.define(model_config_lib.ModelConfig)
dataclass_flags.define(config_lib.LossConfig)
dataclass_flags.define(
  config_lib.OptimConfig, exclude=("warm_start_from", "warm_start_optimizer", "calibrate")
)


def _fail(message: str, code: int) -> None:
  sys.stderr.write(f"FATAL {message}\n")
  sys.stderr.flush()
  sys.exit(code)


@common.job
def main(argv):
  del argv
  config = dataclass_flags.build(daily_config.DailyConfig)
  try:
    report = loop.run_day(config)
  except errors.InputError as e:
    _fail(f"bad input: {e}", errors.EXIT_BAD_INPUT)
  except lock.DayLockedError as e:
    _fail(str(e), errors.EXIT_ERROR)
  decision = "promoted" if report["promoted"] else "kept production"
  print(f"day {config.day}: {decision}; " + "; ".join(report["reasons"]))
  if report.get("alerts"):
    sys.stderr.write("".join(f"ALERT {a}\n" for a in report["alerts"]))
    sys.stderr.flush()
    sys.exit(errors.EXIT_ALERT)


if __name__ == "__main__":
  common.run(main)
