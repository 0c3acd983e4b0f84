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

Distributed training (BUILD.md): `--strategy=multi_worker` or `--strategy=parameter_server`,
with TF_CONFIG naming the cluster and this task; the same command runs on every host. Under
parameter_server a "worker" or "ps" task only serves the chief, until it is killed.
"""

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
from kaml_tf import schema as schema_lib
from kaml_tf.training import config as config_lib
from kaml_tf.training import strategies
from kaml_tf.training import trainer
from pipelines import common
from pipelines import dataclass_flags

# Every field of RunConfig is a flag (its help and default: kaml_tf.training.config and
# kaml_tf.models.config); the ones other jobs take too come from pipelines.common.
dataclass_flags.define(config_lib.RunConfig)
dataclass_flags.use(common.MODEL_DIR)


def run_config_from_flags() -> config_lib.RunConfig:
  """The typed `RunConfig` of the flags; an `app.UsageError` naming a bad flag otherwise."""
  return dataclass_flags.build(config_lib.RunConfig)


@common.job
def main(argv):
  del argv
  run_config = run_config_from_flags()
  model_dir = dataclass_flags.required(common.MODEL_DIR)
  run_config.validate_against(schema_lib.Schema.load(run_config.data.schema_path).num_actions)
  if strategies.serve_if_server_task(run_config.optim.strategy):
    return
  strategy = strategies.make(run_config.optim.strategy, run_config.optim.ps_min_shard_bytes)
  result = trainer.train(run_config, model_dir, strategy=strategy)
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
  common.run(main)
