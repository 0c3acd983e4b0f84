r"""Evaluates a trained model on test logs (paper section 4.1.4) and writes metrics.json.

  python -m pipelines.evaluate --model_dir=DIR --test='DATA/test-*' --output=metrics.json \
      [--oracle]

Every test sample is evaluated once, on its target action; "Other" targets are skipped and
counted. `--oracle` (logs with true labels) also evaluates every action on every sample against
the true labels. Undefined metrics (an action without test positives) are written as null.
A malformed test record fails the job naming its file, record and field; with
`--skip_bad_records` such records are skipped, and their count is logged and written to
metrics.json under `skipped_bad_records`.
With `--base_metrics=F`, RelaImpr (eq. 14) against that file is printed.

The top-level metrics are of the probabilities the model serves: calibrated when the model
directory holds a `calibration.json` for the restored checkpoint (`pipelines.train
--calibrate`). `calibration` names it (checkpoint, a and b per action; null when
uncalibrated) and `raw` holds the same metrics of the uncalibrated sigmoid(logit).
`--checkpoint=best` (default) evaluates the best checkpoint a run with validation kept
(MODEL_DIR/best/; the latest one if there is none), `--checkpoint=latest` the latest;
metrics.json names the one used under `checkpoint` (relative to the model directory).
"""

import json

from absl import flags

import kaml_tf  # noqa: F401
from kaml_tf.evaluation import evaluator
from kaml_tf.evaluation import metrics as metrics_lib
from kaml_tf.training import model_dir as model_dir_lib
from kaml_tf.training import trained_model
from pipelines import common
from pipelines import dataclass_flags

_ORACLE = flags.DEFINE_bool("oracle", False, "Also evaluate every action on the true labels.")
_BASE = flags.DEFINE_string("base_metrics", "", "A baseline metrics.json for RelaImpr.")
dataclass_flags.use(
  common.MODEL_DIR, common.TEST, common.OUTPUT, common.SKIP_BAD_RECORDS, common.CHECKPOINT
)


@common.job
def main(argv):
  del argv
  model_dir, test, output = (
    dataclass_flags.required(h) for h in (common.MODEL_DIR, common.TEST, common.OUTPUT)
  )
  model = trained_model.load(model_dir, common.CHECKPOINT.value)
  # Logs of another schema often parse anyway and would be scored by the wrong model.
  model_dir_lib.check_logs_schema(model_dir, model.schema, test, "the test records'")
  result = evaluator.evaluate(
    model, test, oracle=_ORACLE.value, skip_bad_records=common.SKIP_BAD_RECORDS.value
  )
  result["checkpoint"] = model.checkpoint_name
  evaluator.write_metrics(output, result)
  print(evaluator.format_table(result))
  if _BASE.value:
    print(
      "RelaImpr vs",
      _BASE.value,
      json.dumps(metrics_lib.rela_impr_files(output, _BASE.value), indent=2),
    )


if __name__ == "__main__":
  common.run(main)
