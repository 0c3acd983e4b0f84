"""The `serving` section: latency of an export's signatures (`kaml_tf.serving.latency`).

`serving_default` and `predict_all` of the export `--export_dir` are called on the first
records of `--logs` (valid targets only), at each batch size of `--serving_batch_sizes`.
"""

from typing import Any, Dict, List

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)

from kaml_tf.serving import client
from kaml_tf.serving import latency

from benchmarks import inputs
from benchmarks.config import BenchmarkConfig

SECTION = "serving"


def run(config: BenchmarkConfig) -> Dict[str, Any]:
  """The section: `latency.measure_latency` of the export on `--serving_records` records."""
  export_dir = config.required("export_dir", SECTION)
  logs = config.required("logs", SECTION)
  schema = inputs.load_schema(config, SECTION)
  rows = client.read_records(logs, schema, config.serving_records, valid_targets_only=True)
  return latency.measure_latency(
    export_dir,
    rows,
    batch_sizes=list(config.serving_batch_sizes),
    iterations=config.serving_iterations,
  )


def summary(result: Dict[str, Any]) -> List[str]:
  """The lines printed for the section's figures: p50 and p99 per signature and batch size."""
  return [
    "serving %s batch %s: p50 %.2f ms, p99 %.2f ms" % (signature, size, ms["p50"], ms["p99"])
    for signature, by_size in result["latency_ms"].items()
    for size, ms in by_size.items()
  ]
