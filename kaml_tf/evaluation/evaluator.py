"""Scores test logs with a trained model and computes the paper's evaluation (section 4.1.4).

Test files are read in a fixed order (files sorted, records in file order), so the same
model and files always give the same predictions and metrics.
"""

import dataclasses
import json
import math
from typing import Dict, Optional, Sequence, Tuple, Union

import kaml_tf  # noqa: F401
import numpy as np
import tensorflow as tf

from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.logs import validation
from kaml_tf.evaluation import metrics as metrics_lib
from kaml_tf import atomic
from kaml_tf.training import trained_model as trained_model_lib


@dataclasses.dataclass
class Predictions:
  """Model outputs and labels of every test record, in file order.

  Attributes:
    probabilities: (n, N) each action scored as the target: what the model serves
      (calibrated when the model is).
    labels: (n, N) reported labels.
    target_action: (n,) target index, -1 for "Other".
    true_labels: (n, N) complete labels, or None when the logs have none.
    logits: (n, N) the network's raw logits.
    raw_probabilities: (n, N) sigmoid(logits), the uncalibrated probabilities.
  """

  probabilities: np.ndarray
  labels: np.ndarray
  target_action: np.ndarray
  true_labels: Optional[np.ndarray]
  logits: np.ndarray
  raw_probabilities: np.ndarray


def _in_days(batch: Dict[str, np.ndarray], days: Tuple[int, int]) -> Dict[str, np.ndarray]:
  """The rows of a column batch whose `day` lies in [first, last]."""
  day = batch[schema_lib.DAY]
  keep = (day >= days[0]) & (day <= days[1])
  return batch if keep.all() else {k: v[keep] for k, v in batch.items()}


def predict(
  model: trained_model_lib.TrainedModel,
  files: Union[str, Sequence[str]],
  batch_size: int = 8192,
  bad: Optional[validation.BadRecords] = None,
  days: Optional[Tuple[int, int]] = None,
) -> Predictions:
  """Scores every record of `files` (files sorted, records in file order).

  Args:
    model: The trained model.
    files: Test logs (glob, comma-separated globs or list of TFRecord or Parquet files).
    batch_size: Records per scoring batch.
    bad: None: a malformed record raises `validation.BadRecordError` naming it; otherwise
      malformed records are skipped and counted in `bad`.
    days: (first, last): score only the records whose `day` is in [first, last]
      (inclusive); None scores every record.
  """
  schema = model.schema
  spec = schema.parse_spec()
  score = model.traced_scores()
  parts: Dict[str, list] = {"p": [], "y": [], "t": [], "true": [], "logit": [], "raw": []}
  for path in records.list_files(files):
    for _, batch in validation.checked_batches(path, schema, spec, batch_size, bad):
      if days is not None:
        batch = _in_days(batch, days)
        if not batch[schema_lib.DAY].size:
          continue
      scores = score({k: tf.constant(batch[k]) for k in schema.feature_names})
      for key, value in zip(("logit", "raw", "p"), scores):
        parts[key].append(value.numpy())
      parts["y"].append(np.stack([batch[k] for k in schema.label_keys], axis=1))
      parts["t"].append(batch[schema_lib.TARGET_ACTION])
      if schema.has_true_labels:
        parts["true"].append(np.stack([batch[k] for k in schema.true_label_keys], axis=1))
  n = schema.num_actions
  cat = lambda xs, shape: np.concatenate(xs) if xs else np.zeros(shape)  # noqa: E731
  return Predictions(
    probabilities=cat(parts["p"], (0, n)).astype(np.float64),
    labels=cat(parts["y"], (0, n)).astype(np.int64),
    target_action=cat(parts["t"], (0,)).astype(np.int64),
    true_labels=cat(parts["true"], (0, n)).astype(np.int64) if schema.has_true_labels else None,
    logits=cat(parts["logit"], (0, n)).astype(np.float64),
    raw_probabilities=cat(parts["raw"], (0, n)).astype(np.float64),
  )


def _require_true_labels(available: bool) -> None:
  if not available:
    raise ValueError(
      "--oracle needs logs with true labels (simulated data, or the KuaiRand "
      "conversion); these logs' schema has has_true_labels=false"
    )


def metrics_of(predictions: Predictions, action_names: Sequence[str], oracle: bool = False) -> Dict:
  """The `metrics.json` dict: per-target metrics, plus the `oracle` block when asked."""
  if oracle:
    _require_true_labels(predictions.true_labels is not None)
  result = metrics_lib.per_target_metrics(
    predictions.probabilities, predictions.labels, predictions.target_action, action_names
  )
  if oracle:
    result["oracle"] = metrics_lib.all_action_metrics(
      predictions.probabilities, predictions.true_labels, action_names
    )
  return result


def evaluate(
  model: trained_model_lib.TrainedModel,
  files: Union[str, Sequence[str]],
  oracle: bool = False,
  skip_bad_records: bool = False,
) -> Dict:
  """Predicts `files` and returns the `metrics.json` dict.

  The top-level metrics (and `oracle`) are of the probabilities the model serves: calibrated
  when the model directory holds a calibration for the restored checkpoint. `calibration`
  is that calibration's summary (or None) and `raw` holds the same metrics of the raw,
  uncalibrated probabilities sigmoid(logit) (equal to the top level when uncalibrated).

  Under `skip_bad_records`, malformed records are skipped, logged and counted in the
  dict's `skipped_bad_records` (`validation.BadRecords.to_dict()`); otherwise the first one
  raises `validation.BadRecordError`.
  """
  if oracle:
    _require_true_labels(model.schema.has_true_labels)
  bad = validation.BadRecords() if skip_bad_records else None
  predictions = predict(model, files, bad=bad)
  result = evaluate_predictions(model, predictions, oracle=oracle)
  if bad is not None:
    bad.log("evaluate")
    result["skipped_bad_records"] = bad.to_dict()
  return result


def evaluate_predictions(
  model: trained_model_lib.TrainedModel, predictions: Predictions, oracle: bool = False
) -> Dict:
  """The `metrics.json` dict of `predictions` made by `model` (see `evaluate`)."""
  result = metrics_of(predictions, model.schema.actions, oracle=oracle)
  result["calibration"] = model.calibration.summary() if model.calibration else None
  result["raw"] = metrics_of(
    dataclasses.replace(predictions, probabilities=predictions.raw_probabilities),
    model.schema.actions,
    oracle=oracle,
  )
  return result


def strict_json(value):
  """NaN (an undefined AUC, e.g. an action with no test positives) becomes JSON null."""
  if isinstance(value, dict):
    return {k: strict_json(v) for k, v in value.items()}
  if isinstance(value, float) and math.isnan(value):
    return None
  return value


def write_metrics(path: str, result: Dict) -> None:
  """Writes `metrics.json` atomically, as strict JSON (undefined metrics are null)."""
  atomic.write_text(path, json.dumps(strict_json(result), indent=2, sort_keys=False) + "\n")


def format_table(result: Dict) -> str:
  """A markdown table of the per-target (and oracle) metrics, for logs and the demo.

  A calibrated model's raw metrics follow as the blocks "raw per-target" and "raw oracle".
  """
  lines = ["| block | action | AUC | LogLoss | count | positives |", "|---|---|---|---|---|---|"]
  blocks = [("per-target", result), ("oracle", result.get("oracle"))]
  if result.get("calibration"):
    blocks += [("raw per-target", result["raw"]), ("raw oracle", result["raw"].get("oracle"))]
  for block, data in blocks:
    if not data:
      continue
    for name, m in list(data["actions"].items()) + [("overall", data["overall"])]:
      lines.append(
        f"| {block} | {name} | {m['auc']:.4f} | {m['logloss']:.4f} | {m['count']} "
        f"| {m['positives']} |"
      )
  lines.append(f"skipped (target Other): {result['skipped_other']}")
  return "\n".join(lines)
