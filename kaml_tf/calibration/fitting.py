"""Fits a trained model's calibration on validation logs and saves it with the checkpoint.

`fit_for` is the trainer's `--calibrate` step: it scores the validation rows with the restored
model (the evaluator's `predict`, so the same rows and logits evaluation sees), fits each
action on its own target traffic (`platt.fit`) and writes `MODEL_DIR/calibration.json`
atomically, naming the checkpoint whose logits it was fitted on.
"""

import logging
from typing import Optional, Sequence, Tuple, Union

from kaml_tf.calibration import platt
from kaml_tf.logs import validation
from kaml_tf.evaluation import evaluator
from kaml_tf.training import trained_model as trained_model_lib


def fit_for(
  model: Union[str, trained_model_lib.TrainedModel],
  files: Union[str, Sequence[str]],
  days: Optional[Tuple[int, int]] = None,
  *,
  model_dir: Optional[str] = None,
  skip_bad_records: bool = False,
  batch_size: int = 8192,
) -> platt.Calibration:
  """Fits the calibration of a trained model on `files` and saves it in its model directory.

  Args:
    model: A model directory (its latest checkpoint is restored), or a restored model.
    files: Validation logs (glob, comma-separated globs or list).
    days: Keep only the rows of days [first, last]; None keeps every row.
    model_dir: The model directory to save into, required when `model` is a restored model.
    skip_bad_records: Skip malformed records (counted in `fitted_on["skipped_bad_records"]`)
      instead of failing on the first one, naming it.
    batch_size: Records per scoring batch.

  Returns:
    The calibration written to `MODEL_DIR/calibration.json`.

  Raises:
    ValueError: if `model` is a restored model and `model_dir` is not given.
    validation.BadRecordError: naming the first malformed record, without `skip_bad_records`.
  """
  if isinstance(model, str):
    model_dir, model = model, trained_model_lib.load(model)
  if model_dir is None:
    raise ValueError("fit_for: model_dir is required when model is a restored model")
  # Passed only when given: the evaluator's day filter comes with the validation-days change.
  extra = {"days": days} if days is not None else {}
  bad = validation.BadRecords() if skip_bad_records else None
  predictions = evaluator.predict(model, files, batch_size=batch_size, bad=bad, **extra)
  source = {
    "files": files if isinstance(files, str) else list(files),
    "days": list(days) if days is not None else None,
  }
  if bad is not None:
    bad.log("calibrate")
    source["skipped_bad_records"] = bad.to_dict()
  calibration = platt.fit(
    predictions, model.schema.actions, platt.CheckpointRef.of(model_dir, model.checkpoint), source
  )
  path = calibration.save(model_dir)
  logging.info(
    "calibration for %s written to %s: a=%s b=%s",
    calibration.checkpoint.name,
    path,
    [round(x, 4) for x in calibration.a],
    [round(x, 4) for x in calibration.b],
  )
  return calibration
