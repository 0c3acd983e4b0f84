"""Latency of the exported signatures on a loaded SavedModel (a benchmark, not a test).

`measure_latency` times `serving_default` (the selector) and `predict_all` (every action) on
the same batches, for each batch size: batches are the given records repeated to the batch
size and converted to tensors beforehand, so only the signature call is timed. The two
signatures alternate call by call, and which goes first alternates too, so a busy shared
machine slows both alike and their ratio stays meaningful.
"""

import time
from typing import Any, Dict, Mapping, Sequence

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import numpy as np
import tensorflow as tf

from kaml_tf.serving import client
from kaml_tf.serving import module as module_lib

TIMED_SIGNATURES = (module_lib.SERVING_DEFAULT, module_lib.PREDICT_ALL)


def _batch(
  records: Mapping[str, np.ndarray],
  names: Sequence[str],
  size: int,
  specs: Mapping[str, tf.TensorSpec],
) -> Dict[str, tf.Tensor]:
  """The first `size` rows of `records` repeated cyclically, as the signature's tensors."""
  n = len(records[names[0]])
  rows = np.arange(size) % n
  return {k: tf.constant(np.asarray(records[k])[rows], dtype=specs[k].dtype) for k in names}


def measure_latency(
  export_dir: str,
  records: Mapping[str, np.ndarray],
  batch_sizes: Sequence[int] = (1, 256),
  iterations: int = 200,
  warmup: int = 10,
) -> Dict[str, Any]:
  """Times `serving_default` and `predict_all` of an export per batch size.

  Args:
    export_dir: A version folder written by `kaml_tf.serving.exporter`.
    records: `{field: (n,)}` with every feature and `target_action` (e.g.
      `client.read_records`); rows whose target is not in [0, N) are skipped: the export
      only fills them in (or, strict, rejects them), which is not the latency of scoring.
    batch_sizes: Rows per call.
    iterations: Timed calls of each signature per batch size.
    warmup: Untimed calls of each signature per batch size first.

  Returns:
    ```
    {"export_dir": str, "iterations": int, "warmup": int, "batch_sizes": [int, ...],
     "latency_ms": {signature: {str(batch): {"p50": ms, "p99": ms, "mean": ms}}},
     "ratio_to_predict_all": {str(batch): {"p50": x, "p99": x}}}
    ```
    where the ratio is `serving_default`'s figure over `predict_all`'s.

  Raises:
    ValueError: for bad arguments, or no record with a target action.
  """
  sizes = list(batch_sizes)
  if not sizes or any(
    isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 1 for b in sizes
  ):
    raise ValueError(f"batch_sizes: expected positive integers, got {list(batch_sizes)}")
  if iterations < 1:
    raise ValueError(f"iterations: must be >= 1, got {iterations}")
  if warmup < 0:
    raise ValueError(f"warmup: must be >= 0, got {warmup}")
  model = client.ExportedModel(export_dir)
  schema = model.schema
  names = list(schema.feature_names) + [module_lib.TARGET_INPUT]
  missing = [k for k in names if k not in records]
  if missing:
    raise ValueError(f"records: missing field(s) {missing}")
  target = np.asarray(records[module_lib.TARGET_INPUT])
  keep = np.flatnonzero((target >= 0) & (target < schema.num_actions))
  if keep.size == 0:
    raise ValueError(f"records: no row with a target action in [0, {schema.num_actions})")
  rows = {k: np.asarray(records[k])[keep] for k in names}

  functions = {s: model.saved_model.signatures[s] for s in TIMED_SIGNATURES}
  specs = {s: model.input_specs(s) for s in TIMED_SIGNATURES}
  latency: Dict[str, Dict[str, Dict[str, float]]] = {s: {} for s in TIMED_SIGNATURES}
  ratio: Dict[str, Dict[str, float]] = {}
  for size in sizes:
    inputs = {s: _batch(rows, sorted(specs[s]), int(size), specs[s]) for s in TIMED_SIGNATURES}
    for _ in range(warmup):
      for s in TIMED_SIGNATURES:
        functions[s](**inputs[s])
    times = {s: [] for s in TIMED_SIGNATURES}
    for i in range(iterations):
      order = TIMED_SIGNATURES if i % 2 == 0 else TIMED_SIGNATURES[::-1]
      for s in order:
        start = time.perf_counter()
        outputs = functions[s](**inputs[s])
        for v in outputs.values():
          v.numpy()  # Include the copy-out a server does.
        times[s].append((time.perf_counter() - start) * 1e3)
    key = str(int(size))
    for s in TIMED_SIGNATURES:
      t = np.asarray(times[s])
      latency[s][key] = {
        "p50": float(np.percentile(t, 50)),
        "p99": float(np.percentile(t, 99)),
        "mean": float(t.mean()),
      }
    select, every = latency[module_lib.SERVING_DEFAULT][key], latency[module_lib.PREDICT_ALL][key]
    ratio[key] = {"p50": select["p50"] / every["p50"], "p99": select["p99"] / every["p99"]}
  return {
    "export_dir": export_dir,
    "iterations": iterations,
    "warmup": warmup,
    "batch_sizes": [int(b) for b in sizes],
    "latency_ms": latency,
    "ratio_to_predict_all": ratio,
  }
