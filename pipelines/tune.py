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

from absl import app
from absl import flags

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
from kaml_tf import schema as schema_lib
from kaml_tf.training import config as config_lib
from kaml_tf.tuning import search as search_lib
from kaml_tf.tuning import search_space as space_lib
from kaml_tf.tuning import tuner
from pipelines import common
from pipelines import train as train_job

_TUNE_DIR = flags.DEFINE_string("tune_dir", None, "Output directory of the search.")
_BUDGET = flags.DEFINE_integer(
  "tune_budget",
  12,
  "Trials in total, the base run included. Give every compared method the same budget.",
)
_SEARCH = flags.DEFINE_enum(
  "tune_search",
  search_lib.COORDINATE,
  list(search_lib.STRATEGIES),
  "coordinate: one knob at a time from the base run; random: uniform draws from the grid.",
)
_TUNE_SEED = flags.DEFINE_integer("tune_seed", 0, "Seed of random search.")
_SPACE_LR = flags.DEFINE_list(
  "tune_learning_rate", ["5e-4", "1e-3", "2e-3"], "Learning rates to try."
)
_SPACE_GAMMA = flags.DEFINE_list(
  "tune_rank_gamma",
  ["0.8", "0.9", "1.0"],
  "rank_gamma values to try (only when the base run uses RLU).",
)
_SPACE_DROPOUT = flags.DEFINE_list("tune_dropout", [], "Dropout rates to try.")
_SPACE_L2 = flags.DEFINE_list("tune_embedding_l2", [], "Embedding L2 coefficients to try.")
_SPACE_ALPHA = flags.DEFINE_list(
  "tune_alpha", [], "ADM thresholds to try for each action (--mask=adm only)."
)
_SPACE_WEIGHT = flags.DEFINE_list(
  "tune_extended_weight",
  ["0", "0.5", "1"],
  "Extended weights to try for each action; 0 switches ADM off for that action (--mask=adm only).",
)


def tune_config_from_flags() -> tuner.TuneConfig:
  """The typed search config; a UsageError naming the flag otherwise."""
  try:
    space = space_lib.SearchSpace(
      learning_rate=common.floats(_SPACE_LR.value, "tune_learning_rate"),
      rank_gamma=common.floats(_SPACE_GAMMA.value, "tune_rank_gamma"),
      dropout=common.floats(_SPACE_DROPOUT.value, "tune_dropout"),
      embedding_l2=common.floats(_SPACE_L2.value, "tune_embedding_l2"),
      alpha=common.ints(_SPACE_ALPHA.value, "tune_alpha"),
      extended_weight=common.floats(_SPACE_WEIGHT.value, "tune_extended_weight"),
    )
    return tuner.TuneConfig(
      space=space, budget=_BUDGET.value, strategy=_SEARCH.value, seed=_TUNE_SEED.value
    )
  except (ValueError, flags.ValidationError) as e:
    raise app.UsageError(str(e) if str(e).startswith("--") else f"--{e}") from None


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  common.setup_logging()
  for flag in (_TUNE_DIR,):
    if not flag.value:
      raise app.UsageError(f"--{flag.name} is required")
  base = train_job.run_config_from_flags()
  tune_config = tune_config_from_flags()
  try:
    base.validate_against(schema_lib.Schema.load(base.data.schema_path).num_actions)
    tuner.check_base(base)
  except config_lib.ConfigError as e:
    raise app.UsageError(f"--{e}") from None
  report = tuner.tune(base, tune_config, _TUNE_DIR.value)
  print(tuner.format_markdown(report))
  print(
    f"best: trial {report['best']['id']} (validation score {report['best']['score']:.4f}); "
    f"config in {_TUNE_DIR.value}/config.json"
  )


if __name__ == "__main__":
  app.run(main)
