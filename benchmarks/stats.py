"""The `stats` section: rows/s of the statistics job (`kaml_tf.data.stats.compute_stats`).

The job runs over `--logs` and, when given, over `--parquet_logs` (the same records as
Parquet), `--turns` times each, the two alternating turn by turn so that both see the same
load of a shared machine. Each run's rows per wall second and per CPU second (all threads of
the process: pyarrow decodes on several) are recorded; the summary reports the fastest turn.
"""

import statistics
import time
from typing import Any, Dict, List, Tuple

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)

from kaml_tf import schema as schema_lib
from kaml_tf.data import stats as stats_lib
from kaml_tf.logs import records

from benchmarks import inputs
from benchmarks.config import BenchmarkConfig
from benchmarks.config import ConfigError

SECTION = "stats"
# The flags whose logs the section reads, in the order they are timed.
LOG_FLAGS = ("logs", "parquet_logs")


def _sources(config: BenchmarkConfig) -> List[Tuple[str, str]]:
  """(flag, glob) of the logs to time; a `ConfigError` when neither flag is set."""
  sources = [(flag, getattr(config, flag)) for flag in LOG_FLAGS if getattr(config, flag)]
  if not sources:
    raise ConfigError(f"--logs or --parquet_logs is required by the {SECTION} section", "logs")
  return sources


def _time_once(
  files: str, schema: schema_lib.Schema, stats_config: stats_lib.StatsConfig
) -> Dict[str, Any]:
  """One run of the statistics job: its rows, ad tasks, wall and CPU seconds, and rates."""
  start, cpu_start = time.perf_counter(), time.process_time()
  result = stats_lib.compute_stats(files, schema, stats_config)
  seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
  return {
    "rows": result.rows_read,
    "ad_tasks": result.num_ad_tasks,
    "seconds": seconds,
    "cpu_seconds": cpu_seconds,
    "rows_per_second": result.rows_read / seconds,
    "rows_per_cpu_second": result.rows_read / max(cpu_seconds, 1e-9),
  }


def _figures(files: str, turns: List[Dict[str, Any]]) -> Dict[str, Any]:
  """The fastest turn's figures, with the median rate and every turn's."""
  best = max(turns, key=lambda t: t["rows_per_second"])
  return best | {
    "format": stats_lib.log_format(records.list_files(files)[0]),
    "median_rows_per_second": statistics.median(t["rows_per_second"] for t in turns),
    "turns": turns,
  }


def run(config: BenchmarkConfig) -> Dict[str, Any]:
  """The section: `--turns` runs of the statistics job on each of `--logs`, `--parquet_logs`.

  Returns:
    `{"runs": {flag: figures}, "read_batch_size", "window_days", "as_of"}`, where `figures`
    of the logs of `flag` are the fastest turn's `{"rows", "ad_tasks", "seconds",
    "cpu_seconds", "rows_per_second", "rows_per_cpu_second"}` plus `"format"` (tfrecord or
    parquet), `"median_rows_per_second"` and `"turns"` (every turn's figures).
  """
  sources = _sources(config)
  schema = inputs.load_schema(config, SECTION)
  stats_config = config.stats_config()
  turns: Dict[str, List[Dict[str, Any]]] = {flag: [] for flag, _ in sources}
  for _ in range(config.turns):
    for flag, files in sources:
      turns[flag].append(_time_once(files, schema, stats_config))
  return {
    "runs": {flag: _figures(files, turns[flag]) for flag, files in sources},
    "read_batch_size": stats_config.read_batch_size,
    "window_days": stats_config.window_days,
    "as_of": stats_config.as_of,
  }


def summary(result: Dict[str, Any]) -> List[str]:
  """One line per log format timed."""
  return [
    "stats (%s, --%s): %d rows in %.2f s, %.0f rows/s, %.0f rows per CPU second"
    % (
      run["format"],
      flag,
      run["rows"],
      run["seconds"],
      run["rows_per_second"],
      run["rows_per_cpu_second"],
    )
    for flag, run in result["runs"].items()
  ]
