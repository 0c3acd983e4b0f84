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
from pipelines import common

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
# These names exist in other entry points too, with the same type, meaning and default (the
# defaults of pipelines/train.py; `repeats` that of pipelines/benchmark.py): absl accepts a
# second definition only when one side allows the override, and the test suite imports every
# pipeline into one process, where the last definition's default would win.
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Output folder OUT.", allow_override=True)
_REPEATS = flags.DEFINE_integer(
  "repeats", 3, "Runs per configuration (seeds --seed, --seed + 1, ...).", allow_override=True
)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the first run.", allow_override=True)
_EPOCHS = flags.DEFINE_integer("epochs", 1, "Epochs.", allow_override=True)
_BATCH = flags.DEFINE_integer("batch_size", 5000, "Global batch size.", allow_override=True)
_LR = flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.", allow_override=True)
_STEPS = flags.DEFINE_integer(
  "steps_per_epoch", None, "Cap on steps per epoch.", allow_override=True
)
_STATS = flags.DEFINE_string(
  "stats",
  "",
  "Simulated suites: conversion statistics to use "
  "(default: computed into OUT/stats.parquet over every train day).",
  allow_override=True,
)
_SHUFFLE = flags.DEFINE_integer(
  "shuffle_buffer", 100_000, "Shuffle buffer rows (0: off).", allow_override=True
)

# The flags that define an experiment, in the order the reproducing command lists them.
_COMMAND_FLAGS = (
  _SUITE,
  _DATA_DIR,
  _STATS,
  _KUAIRAND_LOG,
  _KUAIRAND_USERS,
  _OUTPUT_DIR,
  _REPEATS,
  _SEED,
  _EPOCHS,
  _BATCH,
  _LR,
  _STEPS,
  _SHUFFLE,
  _CONFIGS,
  _MODEL_OVERRIDES,
)
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
  for flag in (_SUITE, _OUTPUT_DIR):
    if not flag.value:
      raise app.UsageError(f"--{flag.name} is required")
  try:
    return runner.ExperimentConfig(
      suite=_SUITE.value,
      output_dir=_OUTPUT_DIR.value,
      data_dir=_DATA_DIR.value or "",
      repeats=_REPEATS.value,
      base_seed=_SEED.value,
      epochs=_EPOCHS.value,
      batch_size=_BATCH.value,
      learning_rate=_LR.value,
      steps_per_epoch=_STEPS.value,
      stats_path=_STATS.value,
      kuairand_log=_KUAIRAND_LOG.value,
      kuairand_user_features=_KUAIRAND_USERS.value,
      configs=tuple(c.strip() for c in _CONFIGS.value),
      model_overrides=_model_overrides(),
      shuffle_buffer=_SHUFFLE.value,
      command=command_from_flags(),
    )
  except ValueError as e:
    message = str(e)
    # ExperimentConfig errors start with the field name; two fields have differently named
    # flags.
    for field, flag in (("base_seed", "seed"), ("stats_path", "stats")):
      if message.startswith(field + ":"):
        message = flag + message[len(field) :]
    raise app.UsageError(f"--{message}") from None


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  common.setup_logging()
  config = config_from_flags()
  results = runner.run_experiment(config)
  for block in results["blocks"]:
    print(f"\n{report.BLOCK_TITLES[block]}\n{report.format_table(results, block)}")


if __name__ == "__main__":
  app.run(main)
