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
from pipelines import dataclass_flags

_RUNS = flags.DEFINE_list("runs", None, "Configurations as name=GLOB of model directories.")
_REFERENCE = flags.DEFINE_string("reference", None, "The configuration compared against.")
dataclass_flags.use(common.TEST, common.OUTPUT_DIR, common.CHECKPOINT)
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
    model = trained_model.load(model_dir, checkpoint=common.CHECKPOINT.value)
    predictions = evaluator.predict(model, test_files)
    served.append(predictions.probabilities)
    raw.append(predictions.raw_probabilities)
    calibrated.append(model.calibration is not None)
    labels, target = predictions.labels, predictions.target_action
  config = comparison.Configuration(
    name=name, model_dirs=model_dirs, served=served, raw=raw, calibrated=calibrated
  )
  return config, labels, target, model.schema.actions


@common.job
def main(argv):
  del argv
  runs_flag, reference, test, output_dir = (
    dataclass_flags.required(h) for h in (_RUNS, _REFERENCE, common.TEST, common.OUTPUT_DIR)
  )
  runs = _parse_runs(runs_flag)
  if reference not in runs:
    raise app.UsageError(f"--reference: {reference!r} is not one of {sorted(runs)}")
  counts = {name: len(dirs) for name, dirs in runs.items()}
  if len(set(counts.values())) != 1:
    raise app.UsageError(
      f"--runs: every configuration needs the same number of seeds to pair them, got {counts}"
    )
  scored = [_score(name, dirs, test) for name, dirs in runs.items()]
  labels, target, actions = scored[0][1], scored[0][2], scored[0][3]
  result = comparison.compare(
    labels, target, [s[0] for s in scored], reference, actions, _RESAMPLES.value, _SEED.value
  )
  os.makedirs(output_dir, exist_ok=True)
  atomic.write_text(
    os.path.join(output_dir, "comparison.json"),
    json.dumps(evaluator.strict_json(result), indent=2) + "\n",
  )
  text = "\n".join(comparison.format_markdown(result, view) for view in comparison.VIEWS)
  atomic.write_text(os.path.join(output_dir, "comparison.md"), text)
  print(text)


if __name__ == "__main__":
  common.run(main)
