"""The `input` section: examples/s of the full input pipeline against a bare parse.

The full pipeline (`kaml_tf.data.dataset`: parse, statistics join, masks and checks) is timed
against a bare `TFRecordDataset` + `tf.io.parse_example` of the same files, batch size and
parse spec (files read in turn, parallel parsing, prefetch), so the ratio isolates the cost of
the join, the masks and the checks. With Parquet logs of the same records
(`pipelines.convert_logs`) the full pipeline reading them is timed in the same turns
(`full_parquet`). The timed passes alternate in one process (bare then full, then full then
bare, ...) after a short warm-up of each, and the best pass of each is compared (on a shared
machine the best pass is the least disturbed); the median ratio is reported too, and so are
rows per CPU second of the process (less sensitive to other jobs on the machine than wall
time). The target is a ratio of at least `TARGET_RATIO`.
"""

import dataclasses
import statistics
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.data import dataset as dataset_lib
from kaml_tf.data import masks
from kaml_tf.data import stats as stats_lib
from kaml_tf.logs import records

from benchmarks import inputs
from benchmarks import input_stages
from benchmarks.config import BenchmarkConfig

SECTION = "input"
TARGET_RATIO = 0.70
_WARMUP_BATCHES = 3


@dataclasses.dataclass(frozen=True)
class InputBenchmarkConfig:
  """What `measure` times.

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


def bare_dataset(
  files: Sequence[str], parse_spec: Dict[str, tf.io.FixedLenFeature], batch_size: int
) -> tf.data.Dataset:
  """`TFRecordDataset` + batched `parse_example`, nothing else (the baseline).

  The files are read one after the other on the pipeline's thread, the cheapest way to read
  them (a parallel read costs more CPU than it saves here, as in the full pipeline; measured:
  docs/results/timings/benchmarks.md).
  """
  kinds = {records.compression_of(p) for p in files}
  if len(kinds) != 1:
    raise ValueError(f"the benchmark needs files of one compression, got {sorted(kinds)}")
  ds = tf.data.TFRecordDataset(list(files), compression_type=kinds.pop(), buffer_size=8 << 20)
  ds = ds.batch(batch_size)
  ds = ds.map(
    lambda s: tf.io.parse_example(s, parse_spec),
    num_parallel_calls=tf.data.AUTOTUNE,
    deterministic=True,
  )
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


def _time_alternating(
  pipelines: Dict[str, tf.data.Dataset], repeats: int, max_batches: int
) -> Tuple[Dict[str, int], Dict[str, List[float]], Dict[str, List[float]]]:
  """Rows, rows/s and rows per CPU second of every pass, the pipelines' order rotating."""
  names = list(pipelines)
  rows: Dict[str, int] = {}
  passes: Dict[str, List[float]] = {n: [] for n in names}
  cpu_passes: Dict[str, List[float]] = {n: [] for n in names}
  for repeat in range(repeats):
    for name in input_stages.turn_order(names, repeat):
      n, seconds, cpu_seconds = time_pass(pipelines[name], max_batches)
      rows[name] = n
      passes[name].append(n / seconds)
      cpu_passes[name].append(n / max(cpu_seconds, 1e-9))
  return rows, passes, cpu_passes


def measure(
  schema: schema_lib.Schema,
  stats: Optional[stats_lib.ConversionStats],
  config: InputBenchmarkConfig,
  parquet_files: Optional[str] = None,
) -> Dict[str, Any]:
  """Times the full input pipeline against the bare parse (see the module docstring).

  Args:
    schema: The logs' schema.
    stats: Ad-task statistics (None when the mask policy needs none).
    config: Files, batch size, mask, passes.
    parquet_files: The same records as Parquet logs, timed as `full_parquet`, or None.

  Returns:
    The section's figures: `files`, `rows_per_pass`, `batch_size`, `policy`, `alpha`,
    `parsed_fields`, `repeats`, `target_ratio`, `meets_target`, `unknown_ad_task_samples`,
    `samples_timed`; per pipeline P (`bare`, `full`, `full_parquet`) `P_rows_per_second` (every
    pass), `P_best`, `P_rows_per_cpu_second`; per full pipeline `ratio[_parquet]_best`,
    `ratio[_parquet]_median` and `ratio[_parquet]_cpu_median` against `bare`.
  """
  data_config = dataset_lib.DatasetConfig(
    files=config.files, batch_size=config.batch_size, mask=config.mask
  )
  factory = dataset_lib.DatasetFactory(schema, stats, data_config)
  files, _ = factory.files_for()
  pipelines = {
    "bare": bare_dataset(files, factory.parse_spec, config.batch_size),
    "full": factory(),
  }
  if parquet_files:
    pipelines["full_parquet"] = dataset_lib.DatasetFactory(
      schema,
      stats,
      dataclasses.replace(data_config, files=parquet_files),
      counters=factory.counters,
    )()
  # Warm-up: traces the functions and fills the page cache before anything is timed.
  for ds in pipelines.values():
    time_pass(ds, _WARMUP_BATCHES)
  factory.counters.reset()
  rows, passes, cpu_passes = _time_alternating(pipelines, config.repeats, config.max_batches)
  if len(set(rows.values())) != 1:
    raise RuntimeError(f"the pipelines read different row counts: {rows}")
  best = {k: max(v) for k, v in passes.items()}
  median = {k: statistics.median(v) for k, v in passes.items()}
  cpu_median = {k: statistics.median(v) for k, v in cpu_passes.items()}
  unknown, total = factory.log_counters()
  ratio = best["full"] / best["bare"]
  result = {
    "files": len(files),
    "rows_per_pass": rows["full"],
    "batch_size": config.batch_size,
    "policy": factory.mask_config.policy,
    "alpha": list(factory.mask_config.alpha),
    "parsed_fields": len(factory.parse_spec),
    "repeats": config.repeats,
    "target_ratio": TARGET_RATIO,
    "meets_target": ratio >= TARGET_RATIO,
    "unknown_ad_task_samples": unknown,
    "samples_timed": total,
  }
  for name in pipelines:
    result.update(
      {
        f"{name}_rows_per_second": passes[name],
        f"{name}_best": best[name],
        f"{name}_rows_per_cpu_second": cpu_passes[name],
      }
    )
  for name in (n for n in pipelines if n != "bare"):
    suffix = name[len("full") :]
    result.update(
      {
        f"ratio{suffix}_best": best[name] / best["bare"],
        f"ratio{suffix}_median": median[name] / median["bare"],
        f"ratio{suffix}_cpu_median": cpu_median[name] / cpu_median["bare"],
      }
    )
  return result


def run(config: BenchmarkConfig) -> Dict[str, Any]:
  """The section: `measure` on `--logs` with the `--input_mask` policy."""
  logs = config.required("logs", SECTION)
  schema = inputs.load_schema(config, SECTION)
  mask = masks.MaskConfig(config.input_mask, inputs.alpha(config, schema))
  stats = inputs.stats_or_computed(config, schema, SECTION) if mask.needs_stats else None
  input_config = InputBenchmarkConfig(
    files=logs,
    batch_size=config.batch_size,
    mask=mask,
    repeats=config.turns,
    max_batches=config.max_batches,
  )
  return measure(schema, stats, input_config, config.parquet_logs)


def summary(result: Dict[str, Any]) -> List[str]:
  """The lines printed for the section's figures."""
  lines = [
    "input: full pipeline %.0f rows/s, bare parse %.0f rows/s, ratio %.3f "
    "(target >= %.2f); median ratio %.3f, CPU-time ratio %.3f"
    % (
      result["full_best"],
      result["bare_best"],
      result["ratio_best"],
      result["target_ratio"],
      result["ratio_median"],
      result["ratio_cpu_median"],
    )
  ]
  if "full_parquet_best" in result:
    lines.append(
      "input: full pipeline from Parquet %.0f rows/s, %.3fx the bare TFRecord parse "
      "(CPU time %.3fx)"
      % (
        result["full_parquet_best"],
        result["ratio_parquet_best"],
        result["ratio_parquet_cpu_median"],
      )
    )
  return lines
