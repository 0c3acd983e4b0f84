r"""Runs an experiment suite K times with different seeds and reports it like the paper.

Simulated suites (`baselines` = Table 2 plus KAML on PLE and TAML, `ablation` = Table 4,
`oracle` = Table 3's design), on the output of `pipelines.simulate`:
  python -m pipelines.experiment --suite=ablation --data_dir=DATA --output_dir=OUT \
      --repeats=3 --epochs=8 [--trials_per_config=6] [--configs=MMoE,KAML]
KuaiRand (Table 3), converting the log again for every seed:
  python -m pipelines.experiment --suite=kuairand --output_dir=OUT --repeats=5 --epochs=8 \
      --batch_size=1000 [--kuairand_log=...] [--kuairand_user_features=...]

By default every configuration follows the validation protocol (`experiments.protocol`): its
settings are chosen on the last train day(s) with `--trials_per_config` trials, the same for
every configuration, over its own knobs of `--search_space`; every run is early-stopped and
calibrated on those days (`--protocol_*`), ADM joins point-in-time statistics, and the test
split is scored once. `--protocol=fixed_epochs` trains `--epochs` epochs with the suite's
settings instead (how the committed docs/results/{baselines,ablation,oracle,kuairand} were run).
The job fails before training when an action's target traffic in the test split has fewer
than `--min_test_positives` positives.

Run r of every configuration uses seed `--seed` + r. Writes OUT/runs/<configuration>/seed-<r>/
(model directory, predictions and metrics.json), OUT/tuning/<configuration>/ (the search),
OUT/results.json (every run's metrics, mean and std per configuration, bootstrap intervals,
the settings chosen, the test positives), OUT/results.md (the paper's table layout, best in
bold, RelaImpr of KAML and the plug-ins over the best baseline) and PNG plots of AUC and
LogLoss by configuration. Progress is printed per run; rerunning the same command skips
finished runs and trials and resumes unfinished ones. Layout and rules: `experiments.runner`;
configurations: `experiments.suites`.
"""

import dataclasses
import json
import os
import shlex
from typing import Any, Dict

from absl import app
from absl import flags

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
from experiments import protocol
from experiments import report
from experiments import runner
from experiments import suites
from kaml_tf.training import optimizers
from kaml_tf.tuning import search_space as space_lib
from pipelines import common
from pipelines import dataclass_flags

# The KuaiRand slice that ships with the repository (data/kuairand/, CC BY-SA 4.0).
_KUAIRAND_DIR = os.path.join(
  os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "kuairand"
)

# Every ExperimentConfig setting but the model overrides and the search space (JSON objects,
# --model_overrides and --search_space) and the command (this job's own); --seed, --stats, --output_dir and the training ones are
# pipelines.common's. The KuaiRand files default to the shared slice of the repository.
_FLAGS = dataclass_flags.define(
  runner.ExperimentConfig, exclude=("model_overrides", "search_space", "command")
)
flags.set_default(
  _FLAGS["kuairand_log"], os.path.join(_KUAIRAND_DIR, "kuairand_27k_likehate_kcore15.tsv.gz")
)
flags.set_default(
  _FLAGS["kuairand_user_features"], os.path.join(_KUAIRAND_DIR, "user_features_pure.csv.gz")
)
_MODEL_OVERRIDES = flags.DEFINE_string(
  "model_overrides",
  "",
  "JSON object of ModelConfig fields shared by every configuration, "
  "e.g. '{\"expert_units\": [64, 32]}'; any of: " + ", ".join(runner.model_config_fields()) + ".",
)
_SEARCH_SPACE = flags.DEFINE_string(
  "search_space",
  "",
  "validation protocol: JSON object of candidate lists replacing those of "
  "experiments.protocol.DEFAULT_SPACE, e.g. '{\"dropout\": [0.0, 0.2]}'; any of: "
  + ", ".join(f.name for f in dataclasses.fields(space_lib.SearchSpace))
  + ".",
)

# Settings of the validation protocol, left out of the fixed-epochs command.
_VALIDATION_ONLY = (
  "protocol_validation_days",
  "protocol_patience",
  "protocol_eval_every_steps",
  "protocol_calibrate",
  "trials_per_config",
  "search_space",
)
# The flags that define an experiment, in the order the reproducing command lists them.
_COMMAND_FLAGS = (
  "suite",
  "data_dir",
  "stats",
  "kuairand_log",
  "kuairand_user_features",
  "output_dir",
  "repeats",
  "seed",
  "epochs",
  "batch_size",
  "learning_rate",
  "embedding_optimizer",
  "embedding_learning_rate",
  "steps_per_epoch",
  "shuffle_buffer",
  "configs",
  "model_overrides",
  "protocol",
  *_VALIDATION_ONLY,
  "min_test_positives",
  "bootstrap_resamples",
  "interval_method",
)
# Left out of the command of a run with one Adam, as before they existed.
_EMBEDDING_OPTIMIZER = ("embedding_optimizer", "embedding_learning_rate")
_SIMULATED_ONLY = ("data_dir", "stats")
_KUAIRAND_ONLY = ("kuairand_log", "kuairand_user_features")


def command_from_flags() -> str:
  """The exact command of this experiment: every flag that defines it, with its value."""
  kuairand = suites.get(flags.FLAGS.suite).data == suites.KUAIRAND
  fixed = flags.FLAGS.protocol == protocol.FIXED_EPOCHS
  one_adam = flags.FLAGS.embedding_optimizer == optimizers.ADAM
  parts = ["python", "-m", "pipelines.experiment"]
  for name in _COMMAND_FLAGS:
    value = flags.FLAGS[name].value
    if (
      name in (_KUAIRAND_ONLY if not kuairand else _SIMULATED_ONLY)
      or (fixed and name in _VALIDATION_ONLY)
      or (one_adam and name in _EMBEDDING_OPTIMIZER)
      or value is None
      or value == ""
      or value == []
    ):
      continue
    if isinstance(value, bool):
      parts.append(f"--{name}" if value else f"--no{name}")
      continue
    if isinstance(value, list):
      value = ",".join(value)
    parts.append(f"--{name}={value}")
  return shlex.join(parts)


def _json_object(holder: flags.FlagHolder) -> Dict[str, Any]:
  """The JSON object of a string flag ({} when empty); a UsageError naming the flag."""
  text = holder.value
  if not text:
    return {}
  try:
    value = json.loads(text)
  except json.JSONDecodeError as e:
    raise app.UsageError(f"--{holder.name}: not valid JSON ({e}): {text!r}") from None
  if not isinstance(value, dict):
    raise app.UsageError(f"--{holder.name}: expected a JSON object, got {text!r}")
  return value


def config_from_flags() -> runner.ExperimentConfig:
  """The typed `ExperimentConfig` of the flags; a UsageError naming the flag otherwise."""
  dataclass_flags.required(_FLAGS["suite"])
  return dataclass_flags.build(
    runner.ExperimentConfig,
    model_overrides=_json_object(_MODEL_OVERRIDES),
    search_space=_json_object(_SEARCH_SPACE),
    command=command_from_flags(),
  )


@common.job
def main(argv):
  del argv
  config = config_from_flags()
  try:
    results = runner.run_experiment(config)
  except runner.ExperimentError as e:
    # Another experiment in --output_dir, too few test positives, a budget larger than a
    # configuration's settings: each message names the flag to change; one FATAL line.
    raise app.UsageError(str(e)) from None
  for block in results["blocks"]:
    print(f"\n{report.BLOCK_TITLES[block]}\n{report.format_table(results, block)}")


if __name__ == "__main__":
  common.run(main)
