r"""Tunes a training run on its validation days only: alpha and extended weight per action,
rank_gamma, learning rate, dropout and embedding L2.

Takes every `pipelines.train` flag as the base run (which must early-stop on a validation
set), plus the search flags below. Each trial is an early-stopped run in
TUNE_DIR/trials/<id>; the best trial's config is written to TUNE_DIR/config.json and every
trial to TUNE_DIR/tuning_report.{json,md}. The test day is never read. Rerunning the same
command after a kill reuses the finished trials and resumes the interrupted one.

KAML, per-action ADM choices included:
  python -m pipelines.tune --schema=DIR/schema.json --train='DIR/train-*' \
      --stats=DIR/stats.parquet --mask=adm --hke --rank_gamma=0.9 \
      --validation_days=1 --early_stopping_patience=2 --epochs=8 \
      --tune_dir=/tmp/tune-kaml --tune_budget=12
A base-mask baseline with the same budget (searches learning rate, dropout, embedding L2):
  python -m pipelines.tune --schema=DIR/schema.json --train='DIR/train-*' --mask=base \
      --validation_days=1 --early_stopping_patience=2 --epochs=8 \
      --tune_dir=/tmp/tune-mmoe --tune_budget=12
"""

from absl import flags

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
from kaml_tf import schema as schema_lib
from kaml_tf.training import config as config_lib
from kaml_tf.tuning import tuner
from pipelines import common
from pipelines import dataclass_flags

# The base run: every pipelines.train flag; the search: TuneConfig's (--tune_*).
dataclass_flags.define(config_lib.RunConfig)
dataclass_flags.define(tuner.TuneConfig)
_TUNE_DIR = flags.DEFINE_string("tune_dir", None, "Output directory of the search.")


def tune_config_from_flags() -> tuner.TuneConfig:
  """The typed search config; an `app.UsageError` naming the flag otherwise."""
  return dataclass_flags.build(tuner.TuneConfig)


@common.job
def main(argv):
  del argv
  tune_dir = dataclass_flags.required(_TUNE_DIR)
  base = dataclass_flags.build(config_lib.RunConfig)
  tune_config = tune_config_from_flags()
  base.validate_against(schema_lib.Schema.load(base.data.schema_path).num_actions)
  tuner.check_base(base)
  report = tuner.tune(base, tune_config, tune_dir)
  print(tuner.format_markdown(report))
  print(
    f"best: trial {report['best']['id']} (validation score {report['best']['score']:.4f}); "
    f"config in {tune_dir}/config.json"
  )


if __name__ == "__main__":
  common.run(main)
