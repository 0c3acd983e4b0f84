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
import os
import shlex
from typing import Any, Dict

from absl import app
from absl import flags

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
from experiments import report
from experiments import runner
from experiments import suites
from pipelines import common
from pipelines import dataclass_flags

# The KuaiRand slice that ships with the repository (data/kuairand/, CC BY-SA 4.0).
_KUAIRAND_DIR = os.path.join(
  os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "kuairand"
)

# Every ExperimentConfig setting but the model overrides (a JSON object, --model_overrides)
# and the command (this job's own); --seed, --stats, --output_dir and the training ones are
# pipelines.common's. The KuaiRand files default to the shared slice of the repository.
_FLAGS = dataclass_flags.define(runner.ExperimentConfig, exclude=("model_overrides", "command"))
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
  "steps_per_epoch",
  "shuffle_buffer",
  "configs",
  "model_overrides",
)
_SIMULATED_ONLY = ("data_dir", "stats")
_KUAIRAND_ONLY = ("kuairand_log", "kuairand_user_features")


def command_from_flags() -> str:
  """The exact command of this experiment: every flag that defines it, with its value."""
  kuairand = suites.get(flags.FLAGS.suite).data == suites.KUAIRAND
  parts = ["python", "-m", "pipelines.experiment"]
  for name in _COMMAND_FLAGS:
    value = flags.FLAGS[name].value
    if (
      name in (_KUAIRAND_ONLY if not kuairand else _SIMULATED_ONLY)
      or value is None
      or value == ""
      or value == []
    ):
      continue
    if isinstance(value, list):
      value = ",".join(value)
    parts.append(f"--{name}={value}")
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
  dataclass_flags.required(_FLAGS["suite"])
  return dataclass_flags.build(
    runner.ExperimentConfig, model_overrides=_model_overrides(), command=command_from_flags()
  )


@common.job
def main(argv):
  del argv
  config = config_from_flags()
  results = runner.run_experiment(config)
  for block in results["blocks"]:
    print(f"\n{report.BLOCK_TITLES[block]}\n{report.format_table(results, block)}")


if __name__ == "__main__":
  common.run(main)
