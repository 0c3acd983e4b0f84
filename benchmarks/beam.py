"""The `beam` section: rows/s of the data jobs on Beam next to the local jobs, same logs.

For each of the statistics job, the Table 1 report and the conversion to Parquet, one run of
the local job (`kaml_tf.data.stats`, `kaml_tf.data.mask_report`, `kaml_tf.logs.conversion`)
and one of its Beam pipeline (`kaml_tf.beam`) on `--runner` (default: the DirectRunner with
two worker threads), wall time and rows/s; the report uses the statistics the local job just
computed, the conversions write to a temporary folder removed afterwards. The Beam figures
include the pipeline's start-up, which small logs are dominated by.
"""

import os
import shutil
import tempfile
import time
from typing import Any, Callable, Dict, List

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)

from kaml_tf.data import mask_report
from kaml_tf.data import stats as stats_lib
from kaml_tf.logs import conversion

from benchmarks import inputs
from benchmarks.config import BenchmarkConfig

SECTION = "beam"
JOBS = ("compute_stats", "mask_report", "convert_logs")


def _timed(run: Callable[[], Any]) -> float:
  start = time.perf_counter()
  run()
  return time.perf_counter() - start


def run(config: BenchmarkConfig) -> Dict[str, Any]:
  """The section: each job once locally and once on Beam.

  Returns:
    `{"rows", "runner", "beam_pipeline_args", "jobs": {job: {"local_seconds",
    "beam_seconds", "local_rows_per_second", "beam_rows_per_second", "beam_over_local"}}}`.
  """
  from kaml_tf.beam import conversion as beam_conversion  # pylint: disable=g-import-not-at-top
  from kaml_tf.beam import mask_report as beam_mask_report  # pylint: disable=g-import-not-at-top
  from kaml_tf.beam import stats as beam_stats  # pylint: disable=g-import-not-at-top

  logs = config.required("logs", SECTION)
  schema = inputs.load_schema(config, SECTION)
  stats_config = config.stats_config()
  beam = config.beam_config()
  folder = tempfile.mkdtemp(prefix="kaml-beam-bench-")
  near = os.path.join(folder, "result")
  stats = stats_lib.compute_stats(logs, schema, stats_config)
  batch = config.read_batch_size

  def convert(name):
    prefix = os.path.join(folder, name, "train")
    return conversion.ConversionConfig(output_prefix=prefix, batch_size=batch, num_shards=2)

  runs = {
    "compute_stats": (
      lambda: stats_lib.compute_stats(logs, schema, stats_config),
      lambda: beam_stats.compute_stats(logs, schema, stats_config, beam, near),
    ),
    "mask_report": (
      lambda: mask_report.compute_mask_report(logs, schema, stats, batch_size=batch),
      lambda: beam_mask_report.compute_mask_report(
        logs, schema, stats, beam, near, batch_size=batch
      ),
    ),
    "convert_logs": (
      lambda: conversion.convert_logs(logs, schema, convert("local")),
      lambda: beam_conversion.convert_logs(logs, schema, convert("beam"), beam),
    ),
  }
  jobs = {}
  try:
    for name in JOBS:
      local_seconds, beam_seconds = (_timed(r) for r in runs[name])
      jobs[name] = {
        "local_seconds": local_seconds,
        "beam_seconds": beam_seconds,
        "local_rows_per_second": stats.rows_read / local_seconds,
        "beam_rows_per_second": stats.rows_read / beam_seconds,
        "beam_over_local": local_seconds / beam_seconds,
      }
  finally:
    shutil.rmtree(folder, ignore_errors=True)
  return {
    "rows": stats.rows_read,
    "runner": beam.runner,
    "beam_pipeline_args": beam.beam_pipeline_args,
    "jobs": jobs,
  }


def summary(result: Dict[str, Any]) -> List[str]:
  """One line per job."""
  return [
    "beam: %s on %d rows: local %.0f rows/s (%.1f s), %s %.0f rows/s (%.1f s)"
    % (
      name,
      result["rows"],
      job["local_rows_per_second"],
      job["local_seconds"],
      result["runner"],
      job["beam_rows_per_second"],
      job["beam_seconds"],
    )
    for name, job in result["jobs"].items()
  ]
