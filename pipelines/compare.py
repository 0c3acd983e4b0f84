r"""Compares trained configurations on a test set, with seed spread and paired intervals.

  python -m pipelines.compare --test='DIR/test-*' --reference=mmoe \
      --runs='mmoe=/runs/mmoe/seed-*,kaml=/runs/kaml/seed-*' --output_dir=/tmp/compare

Each `name=GLOB` is one configuration; the GLOB's model directories (sorted) are its seeds,
paired by position with the reference's. Every run is restored from its best checkpoint
(`--checkpoint=latest` for the last) and scored as served (calibrated if it was trained with
--calibrate) and raw. Writes OUTPUT_DIR/comparison.json and comparison.md atomically and
prints the tables.
"""

import glob
import json
import os

from absl import app
from absl import flags

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf.evaluation import comparison
from kaml_tf.evaluation import evaluator
from kaml_tf import atomic
from kaml_tf.training import trained_model
from pipelines import common

_RUNS = flags.DEFINE_list("runs", None, "Configurations as name=GLOB of model directories.")
_REFERENCE = flags.DEFINE_string("reference", None, "The configuration compared against.")
_TEST = flags.DEFINE_string(
  "test", None, "Glob(s) of test logs (TFRecord or Parquet).", allow_override=True
)
_OUTPUT_DIR = flags.DEFINE_string(
  "output_dir", None, "Where to write the comparison.", allow_override=True
)
_CHECKPOINT = common.define_checkpoint()
_RESAMPLES = flags.DEFINE_integer("resamples", 1000, "Bootstrap resamples.", lower_bound=1)
_SEED = flags.DEFINE_integer("bootstrap_seed", 0, "Seed of the bootstrap.")


def _parse_runs(values):
  runs = {}
  for value in values:
    name, sep, pattern = value.partition("=")
    if not sep or not name or not pattern:
      raise app.UsageError(f"--runs: expected name=GLOB, got {value!r}")
    dirs = sorted(glob.glob(pattern))
    if not dirs:
      raise app.UsageError(f"--runs: {pattern!r} ({name}) matches no model directory")
    runs[name] = dirs
  return runs


def _score(name, model_dirs, test_files):
  served, raw, calibrated, labels, target = [], [], [], None, None
  for model_dir in model_dirs:
    tf.keras.backend.clear_session()
    model = trained_model.load(model_dir, checkpoint=_CHECKPOINT.value)
    predictions = evaluator.predict(model, test_files)
    served.append(predictions.probabilities)
    raw.append(predictions.raw_probabilities)
    calibrated.append(model.calibration is not None)
    labels, target = predictions.labels, predictions.target_action
  config = comparison.Configuration(
    name=name, model_dirs=model_dirs, served=served, raw=raw, calibrated=calibrated
  )
  return config, labels, target, model.schema.actions


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  common.setup_logging()
  for flag in (_RUNS, _REFERENCE, _TEST, _OUTPUT_DIR):
    if not flag.value:
      raise app.UsageError(f"--{flag.name} is required")
  runs = _parse_runs(_RUNS.value)
  if _REFERENCE.value not in runs:
    raise app.UsageError(f"--reference: {_REFERENCE.value!r} is not one of {sorted(runs)}")
  counts = {name: len(dirs) for name, dirs in runs.items()}
  if len(set(counts.values())) != 1:
    raise app.UsageError(
      f"--runs: every configuration needs the same number of seeds to pair them, got {counts}"
    )
  scored = [_score(name, dirs, _TEST.value) for name, dirs in runs.items()]
  labels, target, actions = scored[0][1], scored[0][2], scored[0][3]
  result = comparison.compare(
    labels, target, [s[0] for s in scored], _REFERENCE.value, actions, _RESAMPLES.value, _SEED.value
  )
  os.makedirs(_OUTPUT_DIR.value, exist_ok=True)
  atomic.write_text(
    os.path.join(_OUTPUT_DIR.value, "comparison.json"),
    json.dumps(evaluator.strict_json(result), indent=2) + "\n",
  )
  text = "\n".join(comparison.format_markdown(result, view) for view in comparison.VIEWS)
  atomic.write_text(os.path.join(_OUTPUT_DIR.value, "comparison.md"), text)
  print(text)


if __name__ == "__main__":
  app.run(main)
