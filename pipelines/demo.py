r"""The main job end to end on built-in (simulated) data; what `make demo` runs.

  python -m pipelines.demo --output_dir=/tmp/kaml-demo [--simulated_rows=300000] [--max_epochs=3]

1. simulates ad logs (28 train days + 1 test day) with ground truth;
2. computes point-in-time ADM statistics: for each day, the conversions of the 28 days
   before it, so that no row's mask sees its own day or a later one;
3. prints the paper's Table 1 for these logs (samples trained per action, base vs ADM);
4. trains a base MMoE and KAML (MMoE + ADM + HKE + RLU) under the fair protocol: the last
   train day is held out for validation, each model stops early at its best validation
   per-target AUC (`--max_epochs` is the maximum) and is calibrated on that day;
5. evaluates both (best checkpoint, calibrated) on the test day, each sample on its target
   action, with RelaImpr;
6. exports KAML as a versioned SavedModel and scores a few test records through its
   `serving_default` signature.
Every step writes into `--output_dir`; rerunning reuses finished steps (training resumes).
"""

import json
import os

from absl import flags

import kaml_tf  # noqa: F401
from kaml_tf import schema as schema_lib
from kaml_tf.data import mask_report
from kaml_tf.data import stats as stats_lib
from kaml_tf.evaluation import evaluator
from kaml_tf.evaluation import metrics as metrics_lib
from kaml_tf.models import config as model_config_lib
from kaml_tf.serving import client
from kaml_tf.serving import exporter
from kaml_tf.datasets.simulation import simulator
from kaml_tf.training import config as config_lib
from kaml_tf.training import trained_model
from kaml_tf.training import trainer
from pipelines import common
from pipelines import dataclass_flags

# The demo's own sizes: --num_rows (pipelines.simulate) and --epochs (pipelines.train) mean
# the same for every job that takes them, with smaller defaults than the demo's.
_SIMULATED_ROWS = flags.DEFINE_integer(
  "simulated_rows", 300_000, "Simulated rows (train + test).", lower_bound=1
)
_MAX_EPOCHS = flags.DEFINE_integer(
  "max_epochs",
  3,
  "Most training epochs of each model (early stopping on the validation day may end sooner).",
  lower_bound=1,
)
dataclass_flags.use(common.OUTPUT_DIR, common.BATCH_SIZE, common.SEED)

MODELS = {
  "mmoe": dict(model=model_config_lib.ModelConfig(), mask="base", gamma=1.0),
  "kaml": dict(model=model_config_lib.ModelConfig(hke=True), mask="adm", gamma=0.9),
}


def _banner(text: str) -> None:
  print(f"\n=== {text} ===", flush=True)


def _simulate(data_dir: str) -> schema_lib.Schema:
  if not os.path.exists(schema_lib.schema_path(data_dir)):
    config = simulator.SimulationConfig(num_rows=_SIMULATED_ROWS.value, seed=common.SEED.value)
    report = simulator.write_simulation(config, data_dir, num_shards=4)
    print(simulator.format_report(report["report"]))
  return schema_lib.Schema.load(schema_lib.schema_path(data_dir))


def _stats(data_dir: str, schema: schema_lib.Schema) -> str:
  path = os.path.join(data_dir, "stats_daily.parquet")
  if not os.path.exists(path):
    stats = stats_lib.compute_stats(
      os.path.join(data_dir, "train-*"),
      schema,
      stats_lib.StatsConfig(window_days=28, as_of="daily"),
    )
    stats.save(path)
  return path


def _train(name: str, data_dir: str, stats_path: str, out: str) -> str:
  spec = MODELS[name]
  run_config = config_lib.RunConfig(
    data=config_lib.DataConfig(
      schema_path=schema_lib.schema_path(data_dir),
      train_files=os.path.join(data_dir, "train-*"),
      stats_path=stats_path,
      mask_policy=spec["mask"],
      validation_days=1,
    ),
    model=spec["model"],
    loss=config_lib.LossConfig(gamma=spec["gamma"]),
    optim=config_lib.OptimConfig(
      batch_size=common.BATCH_SIZE.value,
      epochs=_MAX_EPOCHS.value,
      seed=common.SEED.value,
      early_stopping_patience=2,
      eval_every_steps=_eval_every(),
      calibrate=True,
    ),
  )
  model_dir = os.path.join(out, name)
  result = trainer.train(run_config, model_dir)
  final = result.history[-1] if result.history else {}
  print(
    f"{name}: {result.steps} steps, {result.samples_per_second:,.0f} samples/s; "
    + ", ".join(f"{k}={final[k]:.4f}" for k in ("bce", "rank", "total") if k in final)
  )
  if result.best:
    print(
      f"{name}: best validation per-target AUC {result.best['score']:.4f} at step "
      f"{result.best['global_step']}" + (" (stopped early)" if result.stopped_early else "")
    )
  return model_dir


def _eval_every() -> int:
  """About four validations per epoch: the best point often lies inside an epoch."""
  train_rows = _SIMULATED_ROWS.value * 27 // 29
  return max(1, train_rows // common.BATCH_SIZE.value // 4)


def _evaluate(model_dir: str, data_dir: str) -> dict:
  path = os.path.join(model_dir, "metrics.json")
  result = evaluator.evaluate(
    trained_model.load(model_dir), os.path.join(data_dir, "test-*"), oracle=True
  )
  evaluator.write_metrics(path, result)
  print(evaluator.format_table(result))
  return result


def _serve(model_dir: str, data_dir: str, out: str, schema: schema_lib.Schema) -> None:
  export_dir = exporter.export_model(
    model_dir, os.path.join(out, "export", "kaml"), warmup_files=os.path.join(data_dir, "test-*")
  )
  print(f"exported {export_dir}")
  scored = client.score_log_records(export_dir, os.path.join(data_dir, "test-*"), limit=5)
  for i, target in enumerate(scored[schema_lib.TARGET_ACTION]):
    print(
      f"  record {i}: ad task {scored[schema_lib.AD_TASK_ID][i]:>5}, target "
      f"{schema.actions[target]:<14} cvr={scored['cvr'][i]:.4f}"
    )


@common.job
def main(argv):
  del argv
  out = dataclass_flags.required(common.OUTPUT_DIR)
  data_dir = os.path.join(out, "data")
  _banner(f"1. simulate {_SIMULATED_ROWS.value:,} rows into {data_dir}")
  schema = _simulate(data_dir)
  _banner("2. point-in-time conversion statistics (for each day, the 28 days before it)")
  stats_path = _stats(data_dir, schema)
  stats = stats_lib.load_stats(stats_path, schema)
  print(f"{stats.num_ad_tasks} ad tasks in the window -> {stats_path}")
  _banner("3. Table 1: share of samples trained per action")
  print(
    mask_report.compute_mask_report(os.path.join(data_dir, "train-*"), schema, stats).to_markdown()
  )
  metrics = {}
  for name in MODELS:
    _banner(f"4. train {name}")
    model_dir = _train(name, data_dir, stats_path, out)
    _banner(f"5. evaluate {name} on the test day")
    metrics[name] = _evaluate(model_dir, data_dir)
  _banner("RelaImpr of KAML over the base MMoE (eq. 14)")
  print(
    json.dumps(
      evaluator.strict_json(metrics_lib.rela_impr_between(metrics["kaml"], metrics["mmoe"])),
      indent=2,
    )
  )
  _banner("6. export KAML and score test records through serving_default")
  _serve(os.path.join(out, "kaml"), data_dir, out, schema)


if __name__ == "__main__":
  common.run(main)
