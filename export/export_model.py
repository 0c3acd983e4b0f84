r"""Exports a trained model for TF Serving: `EXPORT_BASE/<version>/`, written atomically.

  python -m export.export_model --model_dir=/tmp/kaml --export_base=/tmp/kaml-serving \
      [--version=N] [--warmup_records='DIR/test-*' --num_warmup_records=10] [--strict]

The model is rebuilt from the model directory's config and every variable restored from its
best checkpoint (MODEL_DIR/best/, kept by training with validation; the latest if there is
none) or, with `--checkpoint=latest`, its latest one (a mismatch fails); the version's
`assets.extra/checkpoint.json` names the checkpoint exported. The version defaults to the current Unix time. The
SavedModel has four signatures (`saved_model_cli show --all --dir EXPORT_BASE/<version>`):
`serving_default` (features + target_action -> cvr, logit, valid), `predict_all` (features ->
probabilities, valid), `serve_examples` (serialized tf.Example -> cvr, logit, valid,
missing_features) and `regress` (TF Serving's Regress API: inputs -> outputs = cvr); a model
calibrated for the restored checkpoint (`pipelines.train --calibrate`) serves calibrated
scores in all of them and ships `assets/calibration.json`. A bad row (target outside [0, N),
NaN or infinite dense input, Example without target_action or with a multi-valued list
longer than max_values or holding the pad value) gets valid = false and a fill value;
`--strict` makes it fail the whole request instead. `--export_base` may be any tf.io.gfile
URL (gs://; s3:// and hdfs:// with `pip install kaml-tf[io]`). `--warmup_records`
also writes TF Serving's warm-up file from those log records (every signature at batch 1 and
64); it needs the `tensorflow-serving-api` package, and logs whose folder holds another
schema's `schema.json` are refused, naming the model directory. Prints the path of the new
version.
"""

from absl import app
from absl import flags

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
from kaml_tf.serving import exporter
from pipelines import common
from pipelines import dataclass_flags

_VERSION = flags.DEFINE_integer(
  "version", None, "Version number (default: Unix time).", lower_bound=0
)
_WARMUP_RECORDS = flags.DEFINE_string(
  "warmup_records",
  "",
  "Log files (glob) whose first "
  "records become TF Serving warm-up requests; needs "
  "tensorflow-serving-api. A schema.json beside them must "
  "be the model's. Empty: no warm-up file.",
)
_NUM_WARMUP = flags.DEFINE_integer(
  "num_warmup_records", 10, "Warm-up requests to write.", lower_bound=1
)
_STRICT = flags.DEFINE_boolean(
  "strict", False, "Fail a whole request on a bad row instead of marking the row invalid."
)
dataclass_flags.use(common.MODEL_DIR, common.EXPORT_BASE, common.CHECKPOINT, common.MODEL_NAME)


@common.job
def main(argv) -> None:
  del argv
  model_dir = dataclass_flags.required(common.MODEL_DIR)
  export_base = dataclass_flags.required(common.EXPORT_BASE)
  try:
    path = exporter.export_model(
      model_dir,
      export_base,
      _VERSION.value,
      warmup_files=_WARMUP_RECORDS.value or None,
      num_warmup_records=_NUM_WARMUP.value,
      model_name=common.MODEL_NAME.value,
      checkpoint=common.CHECKPOINT.value,
      strict=_STRICT.value,
    )
  except FileExistsError as e:
    raise app.UsageError(f"--version: {e}") from None
  print(path)


if __name__ == "__main__":
  common.run(main)
