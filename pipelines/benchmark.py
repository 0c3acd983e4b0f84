r"""Benchmarks of the pipeline's parts, written as one JSON file.

  python -m pipelines.benchmark --sections=input --logs='DIR/train-*' \
      --schema=DIR/schema.json [--stats=DIR/stats.parquet] [--batch_size=5000] \
      --output=DIR/benchmark.json

Each section is a function registered in `SECTIONS` under its name; `--sections` picks which
run, in the order given, and their results go under `"sections"` in the output JSON (written
atomically). Sections:

* `input`: examples/s of the full input pipeline (`kaml_tf.data.dataset`: parse, statistics
  join, masks and checks) against a bare `TFRecordDataset` + `tf.io.parse_example` of the same
  files, batch size and parse spec (files read in turn, parallel parsing, prefetch), so the
  ratio isolates the cost of the join, the masks and the checks. With `--parquet_logs` (the
  same records converted by `pipelines.convert_logs`) the full pipeline reading them is timed
  in the same turns (`full_parquet`). The timed passes
  alternate in one process (bare then full, then full then bare, ...) after a short warm-up of
  each, and the best pass of each is compared (on a shared machine the best pass is the least
  disturbed); the median ratio is reported too, and so are rows per CPU second of the process
  (less sensitive to other jobs on the machine than wall time). The target is a ratio of at
  least 0.70.
* `input_stages`: where the input's CPU goes: the pipeline rebuilt stage by stage (read,
  parallel read, parse, per-record shuffle, the full pipeline, and from `--parquet_logs`),
  each timed in CPU and wall milliseconds per batch (`benchmarks.input_stages`).
* `train_step`: seconds per training step of the base MMoE and of KAML (MMoE + ADM + HKE +
  RLU, gamma 0.9) on the same in-memory batches of `--batch_size`, timed in turns
  (`benchmarks.train_step`); target: KAML at most 1.3x the base step.
* `determinism`: seconds per KAML training step (the `train_step` KAML variant and batches)
  with and without `tf.config.experimental.enable_op_determinism()`, in two child processes
  timed in alternating turns (`benchmarks.determinism`: determinism cannot be switched
  off once on); reports both step times and their ratio.
* `train_throughput`: training samples/s of the base MMoE and of KAML through this project's
  pipeline (TFRecord logs -> dataset factory with shuffling -> `KamlTask.fit`), timed in
  alternating turns (`benchmarks.throughput`); with `--parquet_logs`, also both
  models reading the Parquet logs (`mmoe_parquet`, `kaml_parquet`). Compare with `train_step` (the same
  models fed from in-memory batches) to see the input's share.
* `peer`: DeepCTR's MMoE (same sizes, fed from NumPy arrays of the same logs;
  `benchmarks.peer_mmoe`) timed in turns with the two runners of `train_throughput`
  and the same two models fed from in-memory batches (`mmoe_in_memory`, `kaml_in_memory`:
  no input cost, like DeepCTR's NumPy feed) in one process; targets: base MMoE >= 1.0x and
  KAML >= 0.8x DeepCTR's samples/s through the pipeline, checked for each log format timed. DeepCTR
  is a benchmark-only extra: without it the section fails with the install command.
* `stats`: rows/s of the statistics job (`kaml_tf.data.stats.compute_stats`) over `--logs`.
* `serving`: latency of `serving_default` and `predict_all` of the export `--export_dir`
  (`kaml_tf.serving.latency`) on the first records of `--logs`.

`--sections=all` runs every section. Each section runs in a fresh child process (unless
`--noisolate`), so its peak resident memory (`benchmarks.memory`) is its own; it goes
under `"resources"` with the 1/5/15-minute load average before and after the section, since
the machine may be shared.

  python -m pipelines.benchmark --sections=all --logs='DIR/train-*' \
      --schema=DIR/schema.json --stats=DIR/stats.parquet --export_dir=EXPORT/1 \
      --output=bench.json
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
import numpy as np
import tensorflow as tf

from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.data import dataset as dataset_lib
from kaml_tf.data import masks
from kaml_tf.data import stats as stats_lib
from benchmarks import determinism
from benchmarks import input_stages
from benchmarks import memory
from benchmarks import throughput
from benchmarks import train_step
from kaml_tf import atomic
from kaml_tf.serving import client
from kaml_tf.serving import latency
from kaml_tf.training import config as config_lib
from pipelines import compute_stats
from pipelines import mask_report

_SECTIONS = flags.DEFINE_list("sections", ["input"], "Benchmark sections to run, in order.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 5000, "Global batch size.", allow_override=True)
_INPUT_MASK = flags.DEFINE_enum(
  "input_mask", masks.ADM, list(masks.POLICIES), "Mask policy of the input pipeline benchmarked."
)
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed passes of each pipeline.", allow_override=True)
_STEPS = flags.DEFINE_integer(
  "steps", 10, "Steps per timed turn of the train_step and determinism sections."
)
_MAX_BATCHES = flags.DEFINE_integer(
  "max_batches", 0, "Batches per timed pass (0: every batch of the logs)."
)

_THROUGHPUT_STEPS = flags.DEFINE_integer(
  "throughput_steps", 20, "Timed steps per turn of the train_throughput and peer sections."
)
_THROUGHPUT_WARMUP = flags.DEFINE_integer(
  "throughput_warmup_steps", 3, "Untimed steps at the start of every turn (iterator start-up)."
)
_SHUFFLE_BUFFER = flags.DEFINE_integer(
  "shuffle_buffer",
  100_000,
  "Shuffle buffer of the pipeline runners (the trainer's default).",
  allow_override=True,
)
_STAGE_BATCHES = flags.DEFINE_integer(
  "stage_batches", 40, "Timed batches per turn of each input_stages stage.", lower_bound=1
)
_PARQUET_LOGS = flags.DEFINE_string(
  "parquet_logs",
  None,
  "The records of --logs as Parquet logs (pipelines.convert_logs): "
  "the train_throughput and peer sections then also time both models reading them "
  "(runners named *_parquet).",
)
_EXPORT_DIR = flags.DEFINE_string(
  "export_dir",
  None,
  "Version folder of an export (export.export_model), timed by the serving section.",
)
_SERVING_RECORDS = flags.DEFINE_integer(
  "serving_records", 256, "Log records fed to the serving section (repeated up to each batch size)."
)
_SERVING_BATCH_SIZES = flags.DEFINE_list(
  "serving_batch_sizes", ["1", "256"], "Rows per serving call."
)
_SERVING_ITERATIONS = flags.DEFINE_integer(
  "serving_iterations", 200, "Timed calls per signature and batch size."
)
_ISOLATE = flags.DEFINE_bool(
  "isolate",
  True,
  "Run each section in a fresh child process, so its peak resident memory is its own.",
)

ALL = "all"
INPUT_TARGET_RATIO = 0.70
PEER_TARGETS = {"mmoe": 1.0, "kaml": 0.8}  # samples/s as a fraction of DeepCTR's MMoE
PARQUET_SUFFIX = "_parquet"
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


def bare_dataset(
  files: Sequence[str], parse_spec: Dict[str, tf.io.FixedLenFeature], batch_size: int
) -> tf.data.Dataset:
  """`TFRecordDataset` + batched `parse_example`, nothing else (the baseline).

  The files are read one after the other on the pipeline's thread, the cheapest way to read
  them (a parallel read costs more CPU than it saves here, as in the full pipeline).
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


def run_input_benchmark(
  schema: schema_lib.Schema,
  stats: Optional[stats_lib.ConversionStats],
  config: InputBenchmarkConfig,
  parquet_files: Optional[str] = None,
) -> Dict[str, Any]:
  """Times the full input pipeline against the bare parse (see the module docstring).

  With `parquet_files` (the same records as Parquet logs) the full pipeline reading them is
  timed in the same turns, as `full_parquet`.
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
    "target_ratio": INPUT_TARGET_RATIO,
    "meets_target": ratio >= INPUT_TARGET_RATIO,
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


def _input_section() -> Dict[str, Any]:
  logs = compute_stats.required(compute_stats.LOGS)
  schema = compute_stats.load_schema()
  mask = masks.MaskConfig(_INPUT_MASK.value, mask_report.alpha_from_flags(schema))
  stats = mask_report.stats_from_flags(schema) if mask.needs_stats else None
  try:
    config = InputBenchmarkConfig(
      files=logs,
      batch_size=_BATCH_SIZE.value,
      mask=mask,
      repeats=_REPEATS.value,
      max_batches=_MAX_BATCHES.value,
    )
  except ValueError as e:
    raise app.UsageError(f"--{e}") from None
  result = run_input_benchmark(schema, stats, config, _PARQUET_LOGS.value)
  logging.info(
    "input: full pipeline %.0f rows/s, bare parse %.0f rows/s, ratio %.3f "
    "(target >= %.2f); median ratio %.3f, CPU-time ratio %.3f",
    result["full_best"],
    result["bare_best"],
    result["ratio_best"],
    INPUT_TARGET_RATIO,
    result["ratio_median"],
    result["ratio_cpu_median"],
  )
  if "full_parquet_best" in result:
    logging.info(
      "input: full pipeline from Parquet %.0f rows/s, %.3fx the bare TFRecord parse "
      "(CPU time %.3fx)",
      result["full_parquet_best"],
      result["ratio_parquet_best"],
      result["ratio_parquet_cpu_median"],
    )
  return result


def _input_stages_section() -> Dict[str, Any]:
  logs = compute_stats.required(compute_stats.LOGS)
  schema = compute_stats.load_schema()
  if not mask_report.STATS.value:
    raise app.UsageError("--stats is required by the input_stages section")
  stats = mask_report.stats_from_flags(schema)
  result = input_stages.measure(
    schema,
    stats,
    logs,
    batch_size=_BATCH_SIZE.value,
    shuffle_buffer=_SHUFFLE_BUFFER.value,
    batches=_STAGE_BATCHES.value,
    turns=_REPEATS.value,
    parquet_files=_PARQUET_LOGS.value,
  )
  for name, figures in result["stages"].items():
    logging.info(
      "input_stages %s: %.1f ms of CPU per batch (wall %.1f ms)",
      name,
      figures["cpu_ms"],
      figures["wall_ms"],
    )
  return result


# Section name -> function returning its JSON-ready results (reading its own flags).
def _train_step_section() -> Dict[str, Any]:
  schema = compute_stats.load_schema()
  data, batches = _in_memory_batches(schema, "train_step")
  result = train_step.measure(
    schema,
    train_step.paper_variants(data, _BATCH_SIZE.value),
    batches,
    steps=_STEPS.value,
    turns=_REPEATS.value,
  )
  ratio = result["ratio_to_first"]["kaml"]
  result.update(
    target_ratio=train_step.KAML_STEP_TARGET, meets_target=ratio <= train_step.KAML_STEP_TARGET
  )
  for name, r in result["variants"].items():
    logging.info(
      "train_step %s: best %.1f ms/step (median %.1f; CPU %.1f ms/step), %.0f samples/s",
      name,
      1000 * r["step_seconds_best"],
      1000 * r["step_seconds_median"],
      1000 * r["cpu_seconds_median"],
      r["samples_per_second"],
    )
  logging.info(
    "train_step: KAML / MMoE = %.3f (target <= %.1f); CPU time per step %.3f",
    ratio,
    train_step.KAML_STEP_TARGET,
    result["cpu_ratio_to_first"]["kaml"],
  )
  return result


def _in_memory_batches(schema: schema_lib.Schema, section: str):
  """The ADM data config and 4 in-memory batches of `--batch_size` from `--logs`."""
  if not mask_report.STATS.value:
    raise app.UsageError(f"--stats is required by the {section} section")
  stats = mask_report.stats_from_flags(schema)
  data = config_lib.DataConfig(
    schema_path=compute_stats.SCHEMA.value,
    train_files=compute_stats.LOGS.value,
    stats_path=mask_report.STATS.value,
    mask_policy="adm",
  )
  batches = list(
    dataset_lib.make_dataset(
      compute_stats.LOGS.value,
      schema,
      stats=stats,
      policy="adm",
      batch_size=_BATCH_SIZE.value,
      drop_remainder=True,
    ).take(4)
  )
  return data, batches


def _determinism_section() -> Dict[str, Any]:
  schema = compute_stats.load_schema()
  data, batches = _in_memory_batches(schema, "determinism")
  kaml = {v.name: v for v in train_step.paper_variants(data, _BATCH_SIZE.value)}["kaml"]
  result = determinism.measure(
    schema, kaml.run_config, batches, steps=_STEPS.value, turns=_REPEATS.value
  )
  result["variant"] = kaml.name
  for case, r in result["cases"].items():
    logging.info(
      "determinism %s: best %.1f ms/step (median %.1f; CPU %.1f ms/step)",
      case,
      1000 * r["step_seconds_best"],
      1000 * r["step_seconds_median"],
      1000 * r["cpu_seconds_median"],
    )
  logging.info(
    "determinism: deterministic / non-deterministic KAML step = %.3f (median %.3f, CPU time %.3f)",
    result["ratio_best"],
    result["ratio_median"],
    result["ratio_cpu_median"],
  )
  return result


def _throughput_inputs():
  """Schema, statistics and the base `DataConfig` of the training-throughput sections."""
  logs = compute_stats.required(compute_stats.LOGS)
  schema = compute_stats.load_schema()
  if not mask_report.STATS.value:
    raise app.UsageError("--stats is required by the train_throughput and peer sections")
  stats = mask_report.stats_from_flags(schema)
  data = config_lib.DataConfig(
    schema_path=compute_stats.SCHEMA.value,
    train_files=logs,
    stats_path=mask_report.STATS.value,
    mask_policy="adm",
    shuffle_buffer=_SHUFFLE_BUFFER.value,
  )
  return schema, stats, data


def _timing() -> throughput.TimingConfig:
  try:
    return throughput.TimingConfig(
      steps=_THROUGHPUT_STEPS.value, warmup_steps=_THROUGHPUT_WARMUP.value, turns=_REPEATS.value
    )
  except ValueError as e:
    raise app.UsageError(f"--throughput_{e}") from None


def _log_runners(section: str, result: Dict[str, Any]) -> None:
  for name, r in result["runners"].items():
    logging.info(
      "%s %s: best %.0f samples/s (median %.0f), %.3fx %s; %.0f samples per CPU second, %.3fx",
      section,
      name,
      r["samples_per_second_best"],
      r["samples_per_second_median"],
      result["ratio_to_first"][name],
      next(iter(result["runners"])),
      r["samples_per_cpu_second_median"],
      result["cpu_ratio_to_first"][name],
    )


def _pipeline_runners(schema, stats, data) -> List[throughput.PipelineRunner]:
  """Base MMoE and KAML through the pipeline from --logs, and from --parquet_logs if given."""
  runners = throughput.paper_runners(schema, data, _BATCH_SIZE.value, stats)
  if _PARQUET_LOGS.value:
    parquet = dataclasses.replace(data, train_files=_PARQUET_LOGS.value)
    runners += throughput.paper_runners(
      schema, parquet, _BATCH_SIZE.value, stats, name_suffix=PARQUET_SUFFIX
    )
  return runners


def _train_throughput_section() -> Dict[str, Any]:
  schema, stats, data = _throughput_inputs()
  result = throughput.measure(_pipeline_runners(schema, stats, data), _timing())
  result["shuffle_buffer"] = _SHUFFLE_BUFFER.value
  _log_runners("train_throughput", result)
  return result


def _peer_rows_needed(timing: throughput.TimingConfig) -> int:
  return (timing.warmup_steps + timing.steps) * _BATCH_SIZE.value


def peer_targets(runners: Sequence[str]) -> Dict[str, float]:
  """The target ratio of every pipeline runner: MMoE's or KAML's, whatever logs it reads."""
  return {
    name: target
    for base, target in PEER_TARGETS.items()
    for name in (base, base + PARQUET_SUFFIX)
    if name in runners
  }


def _peer_section() -> Dict[str, Any]:
  # Imported here: the module is importable without DeepCTR, but building the peer is not.
  from benchmarks import peer_mmoe  # pylint: disable=g-import-not-at-top

  try:
    peer_mmoe.import_deepctr()
  except peer_mmoe.PeerUnavailableError as e:
    raise app.UsageError(f"--sections=peer: {e}") from None
  schema, stats, data = _throughput_inputs()
  timing = _timing()
  needed = _peer_rows_needed(timing)
  columns = _read_rows(data.train_files, schema, needed)
  peer = peer_mmoe.PeerRunner(schema, columns, _BATCH_SIZE.value)
  runners = (
    [peer]
    + _pipeline_runners(schema, stats, data)
    + throughput.in_memory_runners(schema, data, _BATCH_SIZE.value, stats)
  )
  result = throughput.measure(runners, timing)
  result["shuffle_buffer"] = _SHUFFLE_BUFFER.value
  result["peer_rows"] = peer.rows
  targets = peer_targets(result["runners"])
  result.update(
    target_ratios=targets,
    meets_target={n: result["ratio_to_first"][n] >= t for n, t in targets.items()},
  )
  _log_runners("peer", result)
  for name, target in targets.items():
    logging.info(
      "peer: %s / DeepCTR = %.3f (target >= %.1f)", name, result["ratio_to_first"][name], target
    )
  return result


def _read_rows(files: str, schema: schema_lib.Schema, needed: int) -> Dict[str, Any]:
  """At least `needed` rows of the logs as NumPy columns (whole files, in order)."""
  parts = []
  rows = 0
  for path in records.list_files(files):
    parts.append(records.read_columns([path], schema))
    rows += len(parts[-1][schema_lib.AD_TASK_ID])
    if rows >= needed:
      break
  if rows < needed:
    raise app.UsageError(
      f"--logs: the peer needs {needed} rows (warm-up + timed steps times "
      f"--batch_size), the logs hold {rows}"
    )
  return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _stats_section() -> Dict[str, Any]:
  logs = compute_stats.required(compute_stats.LOGS)
  schema = compute_stats.load_schema()
  config = compute_stats.stats_config_from_flags()
  start, cpu_start = time.perf_counter(), time.process_time()
  result = stats_lib.compute_stats(logs, schema, config)
  seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
  figures = {
    "rows": result.rows_read,
    "ad_tasks": result.num_ad_tasks,
    "seconds": seconds,
    "rows_per_second": result.rows_read / seconds,
    "rows_per_cpu_second": result.rows_read / max(cpu_seconds, 1e-9),
    "read_batch_size": config.read_batch_size,
    "window_days": config.window_days,
  }
  logging.info(
    "stats: %d rows in %.1f s, %.0f rows/s", result.rows_read, seconds, figures["rows_per_second"]
  )
  return figures


def _serving_section() -> Dict[str, Any]:
  export_dir = compute_stats.required(_EXPORT_DIR)
  logs = compute_stats.required(compute_stats.LOGS)
  schema = compute_stats.load_schema()
  try:
    sizes = [int(b) for b in _SERVING_BATCH_SIZES.value]
  except ValueError:
    raise app.UsageError(
      f"--serving_batch_sizes: expected integers, got {_SERVING_BATCH_SIZES.value}"
    ) from None
  rows = client.read_records(logs, schema, _SERVING_RECORDS.value, valid_targets_only=True)
  result = latency.measure_latency(
    export_dir, rows, batch_sizes=sizes, iterations=_SERVING_ITERATIONS.value
  )
  for signature, by_size in result["latency_ms"].items():
    for size, ms in by_size.items():
      logging.info(
        "serving %s batch %s: p50 %.2f ms, p99 %.2f ms", signature, size, ms["p50"], ms["p99"]
      )
  return result


SECTIONS: Dict[str, Callable[[], Dict[str, Any]]] = {
  "input": _input_section,
  "input_stages": _input_stages_section,
  "train_step": _train_step_section,
  "determinism": _determinism_section,
  "train_throughput": _train_throughput_section,
  "peer": _peer_section,
  "stats": _stats_section,
  "serving": _serving_section,
}


# The sections a child process knows: those defined by this module (a section registered at
# run time, e.g. by a test, exists only in this process and runs here).
_MODULE_SECTIONS = dict(SECTIONS)


def _load_average() -> List[float]:
  return [round(x, 2) for x in os.getloadavg()]


def section_in_child(name: str, argv: List[str]) -> Dict[str, Any]:
  """Entry point of a section's child process: parses the parent's flags, runs the section."""
  flags.FLAGS(argv, known_only=True)
  logging.set_verbosity(logging.INFO)
  return SECTIONS[name]()


def run_section(name: str, argv: List[str], isolate: bool) -> Tuple[Dict[str, Any], Dict[str, Any]]:
  """One section's results, and its peak memory and the load average around it.

  Returns:
    `(results, {"peak_rss_bytes", "peak_rss_scope", "load_average": {"before", "after"}})`.
  """
  before = _load_average()
  if isolate and SECTIONS[name] is _MODULE_SECTIONS.get(name):
    try:
      result, peak = memory.run_isolated("pipelines.benchmark:section_in_child", name, argv)
    except memory.ChildError as e:
      message = str(e)
      usage = "UsageError: "
      if usage in message:
        # A usage error in the child (a missing flag, DeepCTR not installed) stays one here.
        raise app.UsageError(message.split(usage, 1)[1].split("\n", 1)[0]) from None
      raise
    scope = "child process of this section"
  else:
    result = SECTIONS[name]()
    peak, scope = memory.peak_rss_bytes(), "whole benchmark process so far"
  return result, {
    "peak_rss_bytes": peak,
    "peak_rss_scope": scope,
    "load_average": {"before": before, "after": _load_average()},
  }


def section_names(names: Sequence[str]) -> List[str]:
  """The sections to run: `all` expands to every section, in `SECTIONS` order."""
  names = list(names)
  if ALL in names:
    if len(names) != 1:
      raise app.UsageError(f"--sections: '{ALL}' cannot be combined with others: {names}")
    return list(SECTIONS)
  unknown = [n for n in names if n not in SECTIONS]
  if unknown or not names:
    raise app.UsageError(
      f"--sections: unknown section(s) {unknown}; known: {sorted(SECTIONS) + [ALL]}"
    )
  return names


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  output = compute_stats.required(compute_stats.OUTPUT)
  names = section_names(_SECTIONS.value)
  # The children parse this process's flag values (set on the command line or by a test),
  # ignoring absl's own flags that only `app.run` defines.
  argv = [sys.argv[0]] + flags.FLAGS.flags_into_string().splitlines()
  results, resources = {}, {}
  for name in names:
    results[name], resources[name] = run_section(name, argv, _ISOLATE.value)
    logging.info(
      "%s: peak RSS %.0f MiB, load average %s -> %s",
      name,
      resources[name]["peak_rss_bytes"] / 2**20,
      resources[name]["load_average"]["before"],
      resources[name]["load_average"]["after"],
    )
  document = {
    "sections": results,
    # Per section: peak resident memory and the 1/5/15-minute load average around it.
    "resources": resources,
    "environment": {
      "python": platform.python_version(),
      "tensorflow": tf.__version__,
      "cpus": os.cpu_count(),
      "machine": platform.machine(),
      "load_average_end": _load_average(),
    },
    "command": sys.argv,
  }
  atomic.write_text(output, json.dumps(document, indent=2, sort_keys=True) + "\n")
  logging.info("wrote %s", output)


if __name__ == "__main__":
  app.run(main)
