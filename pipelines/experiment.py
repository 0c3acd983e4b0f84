r"""Runs an experiment suite K times with different seeds and reports it like the paper.

Simulated suites (`baselines` = Table 2, `ablation` = Table 4, `oracle` = Table 3's design),
on the output of `pipelines.simulate`:
  python -m pipelines.experiment --suite=ablation --data_dir=DATA --output_dir=OUT \
      --repeats=5 --epochs=2 [--stats=DATA/stats.parquet] [--configs=MMoE,KAML]
KuaiRand (Table 3), converting the log again for every seed:
  python -m pipelines.experiment --suite=kuairand --output_dir=OUT --repeats=5 --epochs=3 \
      --batch_size=1000 [--kuairand_log=...] [--kuairand_user_features=...]

Run r of every configuration uses seed `--seed` + r. Writes OUT/runs/<configuration>/seed-<r>/
(model directory and metrics.json), OUT/results.json (every run's metrics, mean and std per
configuration), OUT/results.md (the paper's table layout, best in bold, RelaImpr of KAML over
the best baseline) and PNG plots of AUC and LogLoss by configuration. Progress is printed per
run; rerunning the same command skips finished runs and resumes unfinished ones. Layout and
rules: `experiments.runner`; configurations: `experiments.suites`.
"""

import json
import shlex
from typing import Any, Dict

from absl import app
from absl import flags

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
from experiments import report
from experiments import runner
from experiments import suites
from kaml_tf.training import config as config_lib
from pipelines import common
from pipelines import dataclass_flags

_KUAIRAND_DIR = "../shared/data/kuairand"

_SUITE = flags.DEFINE_enum("suite", None, list(suites.SUITES), "The experiment suite.")
_DATA_DIR = flags.DEFINE_string(
  "data_dir",
  None,
  "Simulated suites: the output folder of pipelines.simulate (schema.json, train-*, test-*).",
)
_CONFIGS = flags.DEFINE_list(
  "configs", [], "Run only these configurations of the suite (default: all)."
)
_MODEL_OVERRIDES = flags.DEFINE_string(
  "model_overrides",
  "",
  "JSON object of ModelConfig fields shared by every configuration, "
  "e.g. '{\"expert_units\": [64, 32]}'; any of: " + ", ".join(runner.model_config_fields()) + ".",
)
_KUAIRAND_LOG = flags.DEFINE_string(
  "kuairand_log",
  f"{_KUAIRAND_DIR}/kuairand_27k_likehate_kcore15.tsv",
  "kuairand: the KuaiRand log, converted once per seed.",
)
_KUAIRAND_USERS = flags.DEFINE_string(
  "kuairand_user_features",
  f"{_KUAIRAND_DIR}/user_features_pure.csv",
  "kuairand: the KuaiRand user features CSV.",
)
_REPEATS = flags.DEFINE_integer(
  "repeats", 3, "Runs per configuration (seeds --seed, --seed + 1, ...)."
)
dataclass_flags.use(
  common.OUTPUT_DIR,
  common.SEED,
  common.EPOCHS,
  common.BATCH_SIZE,
  common.LEARNING_RATE,
  common.STEPS_PER_EPOCH,
  common.STATS,
  common.SHUFFLE_BUFFER,
)

# The flags that define an experiment, in the order the reproducing command lists them.
_COMMAND_FLAGS = (
  _SUITE,
  _DATA_DIR,
  common.STATS,
  _KUAIRAND_LOG,
  _KUAIRAND_USERS,
  common.OUTPUT_DIR,
  _REPEATS,
  common.SEED,
  common.EPOCHS,
  common.BATCH_SIZE,
  common.LEARNING_RATE,
  common.STEPS_PER_EPOCH,
  common.SHUFFLE_BUFFER,
  _CONFIGS,
  _MODEL_OVERRIDES,
)
# ExperimentConfig fields whose flag has another name.
_FLAG_OF_FIELD = {"base_seed": "seed", "stats_path": "stats"}
_SIMULATED_ONLY = ("data_dir", "stats")
_KUAIRAND_ONLY = ("kuairand_log", "kuairand_user_features")


def command_from_flags() -> str:
  """The exact command of this experiment: every flag that defines it, with its value."""
  kuairand = suites.get(_SUITE.value).data == suites.KUAIRAND
  parts = ["python", "-m", "pipelines.experiment"]
  for flag in _COMMAND_FLAGS:
    value = flag.value
    if (
      flag.name in (_KUAIRAND_ONLY if not kuairand else _SIMULATED_ONLY)
      or value is None
      or value == ""
      or value == []
    ):
      continue
    if isinstance(value, list):
      value = ",".join(value)
    parts.append(f"--{flag.name}={value}")
  return shlex.join(parts)


def _model_overrides() -> Dict[str, Any]:
  text = _MODEL_OVERRIDES.value
  if not text:
    return {}
  try:
    value = json.loads(text)
  except json.JSONDecodeError as e:
    raise app.UsageError(f"--model_overrides: not valid JSON ({e}): {text!r}") from None
  if not isinstance(value, dict):
    raise app.UsageError(f"--model_overrides: expected a JSON object, got {text!r}")
  return value


def config_from_flags() -> runner.ExperimentConfig:
  """The typed `ExperimentConfig` of the flags; a UsageError naming the flag otherwise."""
  for flag in (_SUITE, common.OUTPUT_DIR):
    dataclass_flags.required(flag)
  try:
    return runner.ExperimentConfig(
      suite=_SUITE.value,
      output_dir=common.OUTPUT_DIR.value,
      data_dir=_DATA_DIR.value or "",
      repeats=_REPEATS.value,
      base_seed=common.SEED.value,
      epochs=common.EPOCHS.value,
      batch_size=common.BATCH_SIZE.value,
      learning_rate=common.LEARNING_RATE.value,
      steps_per_epoch=common.STEPS_PER_EPOCH.value,
      stats_path=common.STATS.value,
      kuairand_log=_KUAIRAND_LOG.value,
      kuairand_user_features=_KUAIRAND_USERS.value,
      configs=tuple(c.strip() for c in _CONFIGS.value),
      model_overrides=_model_overrides(),
      shuffle_buffer=common.SHUFFLE_BUFFER.value,
      command=command_from_flags(),
    )
  except config_lib.ConfigError as e:
    raise app.UsageError(f"--{_FLAG_OF_FIELD.get(e.field, e.flag)}: {e.detail}") from None
  except ValueError as e:
    # The suites' own checks (unknown suite or configuration, model overrides) name them.
    raise app.UsageError(f"--{e}") from None


@common.job
def main(argv):
  del argv
  config = config_from_flags()
  results = runner.run_experiment(config)
  for block in results["blocks"]:
    print(f"\n{report.BLOCK_TITLES[block]}\n{report.format_table(results, block)}")


if __name__ == "__main__":
  common.run(main)
