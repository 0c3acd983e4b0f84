r"""Trains a multi-task CVR model (KAML or a baseline) on TFRecord or Parquet logs.

Base MMoE:
  python -m pipelines.train --schema=DIR/schema.json --train='DIR/train-*' \
      --model_dir=/tmp/mmoe --mask=base
KAML (MMoE + ADM + HKE + RLU):
  python -m pipelines.train --schema=DIR/schema.json --train='DIR/train-*' \
      --stats=DIR/stats.parquet --model_dir=/tmp/kaml --mask=adm --hke --rank_gamma=0.9

Rerunning the same command after a crash or kill resumes from the latest checkpoint. Flag
errors fail before any work, naming the flag. A malformed record fails the job with an error
naming its file, record and field; `--skip_bad_records` checks every record first, trains on
the good ones and writes the skipped counts to MODEL_DIR/train_summary.json.

Validation and early stopping: `--validation_days=K` holds the last K days of --train out
(or `--validation=GLOB` names the logs); the per-target overall AUC is evaluated after every
epoch and every `--eval_every_steps`, the best network is kept in MODEL_DIR/best/ (what
evaluation and export use by default), and `--early_stopping_patience=P` stops after P
evaluations without improvement. `--calibrate` (needs a validation set) then fits per-action
Platt scaling on it for the best checkpoint into MODEL_DIR/calibration.json, which
evaluation and export apply.
"""

from absl import app
from absl import flags

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
from kaml_tf import schema as schema_lib
from kaml_tf.models import config as model_config_lib
from kaml_tf.training import config as config_lib
from kaml_tf.training import strategies
from kaml_tf.training import trainer
from pipelines import common

_SCHEMA = flags.DEFINE_string("schema", None, "The logs' schema.json.", allow_override=True)
_TRAIN = flags.DEFINE_string(
  "train",
  None,
  "Glob(s) of training logs: TFRecord, or Parquet (pipelines.convert_logs; the faster input).",
)
_MODEL_DIR = flags.DEFINE_string("model_dir", None, "Output directory.", allow_override=True)
_STATS = flags.DEFINE_string(
  "stats", "", "Conversion statistics (needed by --mask=adm).", allow_override=True
)
_STATS_MODE = flags.DEFINE_enum(
  "stats_mode",
  "",
  ["", "static", "point_in_time"],
  "How ADM joins --stats: "
  "point_in_time (daily statistics from compute_stats --as_of=daily: a row of day d is "
  "masked by counts of days d-T..d-1), static (one window, --as_of=end), or empty for the "
  "file's kind.",
  allow_override=True,
)
_VALIDATION = flags.DEFINE_string(
  "validation",
  "",
  "Glob(s) of validation logs, evaluated after each epoch (see --validation_days).",
)
_VALIDATION_DAYS = flags.DEFINE_integer(
  "validation_days",
  0,
  "Hold the last K days found in --train out of training and validate "
  "on them (0: off; not with --validation).",
  lower_bound=0,
)
_PATIENCE = flags.DEFINE_integer(
  "early_stopping_patience",
  0,
  "Stop after this many validation evaluations in a row "
  "without a better per-target overall AUC (0: never; --epochs is the maximum). The best "
  "network is kept in MODEL_DIR/best/.",
  lower_bound=0,
)
_EVAL_EVERY = flags.DEFINE_integer(
  "eval_every_steps",
  0,
  "Also validate every N global steps (0: after each epoch only).",
  lower_bound=0,
)
_MASK = flags.DEFINE_enum("mask", "base", ["base", "adm", "all", "oracle"], "Mask policy.")
_ALPHA = flags.DEFINE_list(
  "alpha",
  [],
  "ADM thresholds, one per action (default: the data path's default).",
  allow_override=True,
)
_MODEL = flags.DEFINE_enum("model", "mmoe", list(model_config_lib.BACKBONES), "Backbone.")
_HKE = flags.DEFINE_bool("hke", False, "Hierarchical knowledge extraction towers.")
_GAMMA = flags.DEFINE_float("rank_gamma", 1.0, "gamma of eq. 13; 1.0 disables RLU.")
_BETAS = flags.DEFINE_list("rank_betas", [], "Ranking weights beta_k, one per action.")
_BCE_WEIGHTS = flags.DEFINE_list("bce_weights", [], "BCE weights, one per action.")
_MASKED_PAIRS = flags.DEFINE_bool("masked_pairs_only", False, "Rank only masked samples.")
_EXTENDED_WEIGHT = flags.DEFINE_list(
  "extended_weight",
  [],
  "Soft ADM: BCE weight in [0, 1] of an extended cell (masked, not the "
  "row's target); one value for all actions or one per action (default 1 = ADM; 0 = base).",
)
_EMBEDDING_DIM = flags.DEFINE_integer("embedding_dim", None, "Override every embedding width.")
_NUM_EXPERTS = flags.DEFINE_integer("num_experts", 4, "MMoE experts.")
_EXPERT_UNITS = flags.DEFINE_list("expert_units", ["256", "128"], "Expert MLP widths.")
_TOWER_UNITS = flags.DEFINE_list("tower_units", ["64"], "Tower MLP widths.")
_DROPOUT = flags.DEFINE_float("dropout", 0.0, "Dropout rate.")
_EMBEDDING_L2 = flags.DEFINE_float(
  "embedding_l2", 0.0, "L2 on the looked-up embedding rows (mean over the batch)."
)
_LR = flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.", allow_override=True)
_BATCH = flags.DEFINE_integer("batch_size", 5000, "Global batch size.", allow_override=True)
_EPOCHS = flags.DEFINE_integer("epochs", 1, "Epochs.", allow_override=True)
_STEPS = flags.DEFINE_integer(
  "steps_per_epoch", None, "Cap on steps per epoch.", allow_override=True
)
_CKPT_EVERY = flags.DEFINE_integer("checkpoint_every", 0, "Also checkpoint every N steps.")
_SHUFFLE = flags.DEFINE_integer(
  "shuffle_buffer", 100_000, "Shuffle buffer rows (0: off).", allow_override=True
)
_PARALLEL_READS = flags.DEFINE_integer(
  "parallel_reads",
  0,
  "Reader threads per input pipeline (-1: tf.data picks). 0 reads the "
  "files in turn on the pipeline's own thread: the least CPU, and the fastest from local "
  "disk; give threads to logs on remote storage (GCS, HDFS).",
  lower_bound=-1,
)
_SEED = flags.DEFINE_integer(
  "seed", 0, "Seed of initialisation and shuffling.", allow_override=True
)
_DETERMINISTIC = flags.DEFINE_bool("deterministic", False, "TF op determinism (slower).")
_SKIP_BAD_RECORDS = common.define_skip_bad_records()
_CALIBRATE = flags.DEFINE_bool(
  "calibrate",
  False,
  "After training, fit per-action Platt scaling on the validation set "
  "(--validation), each action on its own target rows, into MODEL_DIR/calibration.json; "
  "evaluation and export then serve calibrated probabilities.",
)
_STRATEGY = flags.DEFINE_enum(
  "strategy", "default", ["default", "mirrored", "multi_worker"], "tf.distribute strategy."
)


def run_config_from_flags():
  """Builds the typed `RunConfig` from the flags; raises UsageError naming a bad flag."""
  try:
    model = model_config_lib.ModelConfig(
      backbone=_MODEL.value,
      hke=_HKE.value,
      embedding_dim=_EMBEDDING_DIM.value,
      num_experts=_NUM_EXPERTS.value,
      dropout=_DROPOUT.value,
      embedding_l2=_EMBEDDING_L2.value,
      expert_units=common.ints(_EXPERT_UNITS.value, "expert_units"),
      tower_units=common.ints(_TOWER_UNITS.value, "tower_units"),
    )
    return config_lib.RunConfig(
      data=config_lib.DataConfig(
        schema_path=_SCHEMA.value,
        train_files=_TRAIN.value,
        stats_path=_STATS.value,
        mask_policy=_MASK.value,
        alpha=common.ints(_ALPHA.value, "alpha"),
        validation_files=_VALIDATION.value,
        shuffle_buffer=_SHUFFLE.value,
        skip_bad_records=_SKIP_BAD_RECORDS.value,
        parallel_reads=_PARALLEL_READS.value,
        stats_mode=_STATS_MODE.value,
        validation_days=_VALIDATION_DAYS.value,
      ),
      model=model,
      loss=config_lib.LossConfig(
        gamma=_GAMMA.value,
        rank_betas=common.floats(_BETAS.value, "rank_betas"),
        bce_weights=common.floats(_BCE_WEIGHTS.value, "bce_weights"),
        masked_pairs_only=_MASKED_PAIRS.value,
        extended_weight=common.floats(_EXTENDED_WEIGHT.value, "extended_weight"),
      ),
      optim=config_lib.OptimConfig(
        learning_rate=_LR.value,
        batch_size=_BATCH.value,
        epochs=_EPOCHS.value,
        steps_per_epoch=_STEPS.value,
        checkpoint_every_steps=_CKPT_EVERY.value,
        seed=_SEED.value,
        deterministic=_DETERMINISTIC.value,
        strategy=_STRATEGY.value,
        calibrate=_CALIBRATE.value,
        early_stopping_patience=_PATIENCE.value,
        eval_every_steps=_EVAL_EVERY.value,
      ),
    )
  except (ValueError, flags.ValidationError) as e:
    raise app.UsageError(str(e) if str(e).startswith(("--", "ModelConfig")) else f"--{e}") from None


def main(argv):
  del argv
  common.setup_logging()
  for flag in (_SCHEMA, _TRAIN, _MODEL_DIR):
    if not flag.value:
      raise app.UsageError(f"--{flag.name} is required")
  run_config = run_config_from_flags()
  try:
    run_config.validate_against(schema_lib.Schema.load(_SCHEMA.value).num_actions)
  except (config_lib.ConfigError, schema_lib.SchemaError) as e:
    raise app.UsageError(f"--{e}" if isinstance(e, config_lib.ConfigError) else str(e)) from None
  strategy = strategies.make(run_config.optim.strategy)
  result = trainer.train(run_config, _MODEL_DIR.value, strategy=strategy)
  final = result.history[-1] if result.history else {}
  print(
    f"trained {result.epochs} epoch(s), {result.steps} steps, "
    f"{result.samples_per_second:,.0f} samples/s; final: "
    + ", ".join(f"{k}={v:.4f}" for k, v in sorted(final.items()))
  )
  if result.best:
    print(
      f"best validation {result.best['metric']}={result.best['score']:.4f} at global step "
      f"{result.best['global_step']} ({result.best['checkpoint']})"
      + ("; stopped early" if result.stopped_early else "")
    )


if __name__ == "__main__":
  app.run(main)
