r"""Benchmarks of the pipeline's parts, written as one JSON file.

  python -m pipelines.benchmark --sections=input --logs='DIR/train-*' \
      --schema=DIR/schema.json [--stats=DIR/stats.parquet] [--batch_size=5000] \
      --output=DIR/benchmark.json

Each section is a function registered in `SECTIONS` under its name; `--sections` picks which
run, in the order given, and their results go under `"sections"` in the output JSON (written
atomically). Sections:

* `input`: examples/s of the full input pipeline (`kaml_tf.data.dataset`: parse, statistics
  join and masks) against a bare `TFRecordDataset` + `tf.io.parse_example` of the same files,
  batch size and parse spec, with the same read parallelism, parallel parsing and prefetch, so
  the ratio isolates the cost of the join, the masks and the checks. The timed passes
  alternate in one process (bare then full, then full then bare, ...) after a short warm-up of
  each, and the best pass of each is compared (on a shared machine the best pass is the least
  disturbed); the median ratio is reported too, and so are rows per CPU second of the process
  (less sensitive to other jobs on the machine than wall time). The target is a ratio of at
  least 0.70.
* `train_step`: seconds per training step of the base MMoE and of KAML (MMoE + ADM + HKE +
  RLU, gamma 0.9) on the same in-memory batches of `--batch_size`, timed in turns
  (`kaml_tf.benchmarks.train_step`); target: KAML at most 1.3x the base step.
"""

import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from absl import app
from absl import flags
from absl import logging

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf import records
from kaml_tf import schema as schema_lib
from kaml_tf.data import dataset as dataset_lib
from kaml_tf.data import masks
from kaml_tf.data import stats as stats_lib
from kaml_tf.benchmarks import train_step
from kaml_tf.io import atomic
from kaml_tf.training import config as config_lib
from pipelines import compute_stats
from pipelines import mask_report

_SECTIONS = flags.DEFINE_list("sections", ["input"], "Benchmark sections to run, in order.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 5000, "Global batch size.",
                                   allow_override=True)
_INPUT_MASK = flags.DEFINE_enum("input_mask", masks.ADM, list(masks.POLICIES),
                                "Mask policy of the input pipeline benchmarked.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed passes of each pipeline.")
_STEPS = flags.DEFINE_integer("steps", 10, "Steps per timed turn of the train_step section.")
_MAX_BATCHES = flags.DEFINE_integer("max_batches", 0, "Batches per timed pass (0: every "
                                    "batch of the logs).")

INPUT_TARGET_RATIO = 0.70
_WARMUP_BATCHES = 3


@dataclasses.dataclass(frozen=True)
class InputBenchmarkConfig:
  """Settings of the `input` section.

  Attributes:
    files: TFRecord logs.
    batch_size: Examples per batch.
    mask: Mask policy and thresholds of the full pipeline.
    repeats: Timed passes of each pipeline.
    max_batches: Batches per pass; 0 for a full pass over the files.
  """
  files: str
  batch_size: int = 5000
  mask: masks.MaskConfig = masks.MaskConfig()
  repeats: int = 3
  max_batches: int = 0

  def __post_init__(self):
    if self.repeats < 1:
      raise ValueError(f"repeats must be >= 1, got {self.repeats}")
    if self.max_batches < 0:
      raise ValueError(f"max_batches must be >= 0, got {self.max_batches}")


def bare_dataset(files: Sequence[str], parse_spec: Dict[str, tf.io.FixedLenFeature],
                 batch_size: int, cycle_length: int) -> tf.data.Dataset:
  """`TFRecordDataset` + batched `parse_example`, nothing else (the baseline)."""
  kinds = {records.compression_of(p) for p in files}
  if len(kinds) != 1:
    raise ValueError(f"the benchmark needs files of one compression, got {sorted(kinds)}")
  ds = tf.data.TFRecordDataset(list(files), compression_type=kinds.pop(), buffer_size=8 << 20,
                               num_parallel_reads=min(cycle_length, len(files)))
  ds = ds.batch(batch_size)
  ds = ds.map(lambda s: tf.io.parse_example(s, parse_spec), num_parallel_calls=tf.data.AUTOTUNE,
              deterministic=True)
  return ds.prefetch(tf.data.AUTOTUNE)


def _rows(element) -> int:
  first = tf.nest.flatten(element)[0]
  return int(first.shape[0])


def time_pass(ds: tf.data.Dataset, max_batches: int = 0) -> Tuple[int, float, float]:
  """Iterates `ds` (at most `max_batches` batches when > 0).

  Returns:
    (rows, wall seconds, CPU seconds of the whole process, every tf.data thread included).
  """
  if max_batches:
    ds = ds.take(max_batches)
  rows = 0
  start, cpu_start = time.perf_counter(), time.process_time()
  for element in ds:
    rows += _rows(element)
  return rows, time.perf_counter() - start, time.process_time() - cpu_start


def run_input_benchmark(schema: schema_lib.Schema,
                        stats: Optional[stats_lib.ConversionStats],
                        config: InputBenchmarkConfig) -> Dict[str, Any]:
  """Times the full input pipeline against the bare parse (see the module docstring)."""
  data_config = dataset_lib.DatasetConfig(files=config.files, batch_size=config.batch_size,
                                          mask=config.mask)
  factory = dataset_lib.DatasetFactory(schema, stats, data_config)
  files, _ = factory.files_for()
  bare = bare_dataset(files, factory.parse_spec, config.batch_size, data_config.cycle_length)
  full = factory()
  # Warm-up: traces the functions and fills the page cache before anything is timed.
  time_pass(bare, _WARMUP_BATCHES)
  time_pass(full, _WARMUP_BATCHES)
  factory.counters.reset()
  passes: Dict[str, List[float]] = {"bare": [], "full": []}
  cpu_passes: Dict[str, List[float]] = {"bare": [], "full": []}
  rows = {}
  for repeat in range(config.repeats):
    # Alternate which pipeline goes first, so neither always runs right after the other.
    order = (("bare", bare), ("full", full)) if repeat % 2 == 0 else (("full", full),
                                                                       ("bare", bare))
    for name, ds in order:
      n, seconds, cpu_seconds = time_pass(ds, config.max_batches)
      rows[name] = n
      passes[name].append(n / seconds)
      cpu_passes[name].append(n / max(cpu_seconds, 1e-9))
  if rows["bare"] != rows["full"]:
    raise RuntimeError(f"the pipelines read different row counts: {rows}")
  best = {k: max(v) for k, v in passes.items()}
  median = {k: statistics.median(v) for k, v in passes.items()}
  cpu_median = {k: statistics.median(v) for k, v in cpu_passes.items()}
  unknown, total = factory.log_counters()
  ratio = best["full"] / best["bare"]
  return {
      "files": len(files),
      "rows_per_pass": rows["full"],
      "batch_size": config.batch_size,
      "policy": factory.mask_config.policy,
      "alpha": list(factory.mask_config.alpha),
      "parsed_fields": len(factory.parse_spec),
      "repeats": config.repeats,
      "bare_rows_per_second": passes["bare"],
      "full_rows_per_second": passes["full"],
      "bare_best": best["bare"],
      "full_best": best["full"],
      "ratio_best": ratio,
      "ratio_median": median["full"] / median["bare"],
      "bare_rows_per_cpu_second": cpu_passes["bare"],
      "full_rows_per_cpu_second": cpu_passes["full"],
      "ratio_cpu_median": cpu_median["full"] / cpu_median["bare"],
      "target_ratio": INPUT_TARGET_RATIO,
      "meets_target": ratio >= INPUT_TARGET_RATIO,
      "unknown_ad_task_samples": unknown,
      "samples_timed": total,
  }


def _input_section() -> Dict[str, Any]:
  logs = compute_stats.required(compute_stats.LOGS)
  schema = compute_stats.load_schema()
  mask = masks.MaskConfig(_INPUT_MASK.value, mask_report.alpha_from_flags(schema))
  stats = mask_report.stats_from_flags(schema) if mask.needs_stats else None
  try:
    config = InputBenchmarkConfig(files=logs, batch_size=_BATCH_SIZE.value, mask=mask,
                                  repeats=_REPEATS.value, max_batches=_MAX_BATCHES.value)
  except ValueError as e:
    raise app.UsageError(f"--{e}") from None
  result = run_input_benchmark(schema, stats, config)
  logging.info("input: full pipeline %.0f rows/s, bare parse %.0f rows/s, ratio %.3f "
               "(target >= %.2f); median ratio %.3f, CPU-time ratio %.3f", result["full_best"],
               result["bare_best"], result["ratio_best"], INPUT_TARGET_RATIO,
               result["ratio_median"], result["ratio_cpu_median"])
  return result


# Section name -> function returning its JSON-ready results (reading its own flags).
def _train_step_section() -> Dict[str, Any]:
  schema = compute_stats.load_schema()
  stats = mask_report.stats_from_flags(schema)
  if not mask_report.STATS.value:
    raise app.UsageError("--stats is required by the train_step section")
  data = config_lib.DataConfig(schema_path=compute_stats.SCHEMA.value,
                               train_files=compute_stats.LOGS.value,
                               stats_path=mask_report.STATS.value, mask_policy="adm")
  batches = list(dataset_lib.make_dataset(
      compute_stats.LOGS.value, schema, stats=stats, policy="adm",
      batch_size=_BATCH_SIZE.value, drop_remainder=True).take(4))
  result = train_step.measure(schema, train_step.paper_variants(data, _BATCH_SIZE.value),
                              batches, steps=_STEPS.value, turns=_REPEATS.value)
  ratio = result["ratio_to_first"]["kaml"]
  result.update(target_ratio=train_step.KAML_STEP_TARGET,
                meets_target=ratio <= train_step.KAML_STEP_TARGET)
  for name, r in result["variants"].items():
    logging.info("train_step %s: best %.1f ms/step (median %.1f), %.0f samples/s", name,
                 1000 * r["step_seconds_best"], 1000 * r["step_seconds_median"],
                 r["samples_per_second"])
  logging.info("train_step: KAML / MMoE = %.3f (target <= %.1f)", ratio,
               train_step.KAML_STEP_TARGET)
  return result


SECTIONS: Dict[str, Callable[[], Dict[str, Any]]] = {
    "input": _input_section,
    "train_step": _train_step_section,
}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  output = compute_stats.required(compute_stats.OUTPUT)
  names = list(_SECTIONS.value)
  unknown = [n for n in names if n not in SECTIONS]
  if unknown or not names:
    raise app.UsageError(f"--sections: unknown section(s) {unknown}; known: {sorted(SECTIONS)}")
  results = {name: SECTIONS[name]() for name in names}
  document = {
      "sections": results,
      "environment": {"python": platform.python_version(), "tensorflow": tf.__version__,
                      "cpus": os.cpu_count(), "machine": platform.machine()},
      "command": sys.argv,
  }
  atomic.write_text(output, json.dumps(document, indent=2, sort_keys=True) + "\n")
  logging.info("wrote %s", output)


if __name__ == "__main__":
  app.run(main)
