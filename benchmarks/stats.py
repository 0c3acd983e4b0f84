"""The `stats` section: rows/s of the statistics job (`kaml_tf.data.stats.compute_stats`)."""

import time
from typing import Any, Dict, List

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)

from kaml_tf.data import stats as stats_lib

from benchmarks import inputs
from benchmarks.config import BenchmarkConfig

SECTION = "stats"


def run(config: BenchmarkConfig) -> Dict[str, Any]:
  """The section: one run of the statistics job over `--logs`, with its window settings.

  Returns:
    `{"rows", "ad_tasks", "seconds", "rows_per_second", "rows_per_cpu_second",
    "read_batch_size", "window_days"}`.
  """
  logs = config.required("logs", SECTION)
  schema = inputs.load_schema(config, SECTION)
  stats_config = config.stats_config()
  start, cpu_start = time.perf_counter(), time.process_time()
  result = stats_lib.compute_stats(logs, schema, stats_config)
  seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
  return {
    "rows": result.rows_read,
    "ad_tasks": result.num_ad_tasks,
    "seconds": seconds,
    "rows_per_second": result.rows_read / seconds,
    "rows_per_cpu_second": result.rows_read / max(cpu_seconds, 1e-9),
    "read_batch_size": stats_config.read_batch_size,
    "window_days": stats_config.window_days,
  }


def summary(result: Dict[str, Any]) -> List[str]:
  """The line printed for the section's figures."""
  return [
    "stats: %d rows in %.1f s, %.0f rows/s"
    % (result["rows"], result["seconds"], result["rows_per_second"])
  ]
