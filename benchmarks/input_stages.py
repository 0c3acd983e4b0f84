"""Where the input pipeline's CPU goes: the pipeline rebuilt stage by stage, each timed.

Every stage is a `tf.data` pipeline over the same logs and batch size that stops after one
more piece of the full pipeline; the difference between two stages' CPU time per batch is the
cost of the piece added. The process's CPU time counts every tf.data thread, which is what a
trainer's cores pay for the input besides the model's step; wall time is reported too, but on
a busy 2-core machine it moves with the neighbours. Stages are timed in rotating turns, each
after a warm-up pass, and the median turn of each is reported.

TFRecord stages (`STAGES`):

* `read`: `TFRecordDataset` over the files in turn + `batch` (the records, serialized);
* `read_parallel`: the same read through a parallel interleave of `cycle_length` files (how
  the pipeline read before; a thread hand-off per record; measured:
  docs/results/timings/benchmarks.md);
* `parse`: `read` + one `tf.io.parse_example` per batch;
* `shuffle_records`: `read_parallel` with a `Dataset.shuffle` of `shuffle_buffer` records
  before batching (how the pipeline shuffled before);
* `pipeline`: `kaml_tf.data.dataset` as training runs it (window shuffle, checks, statistics
  join, masks).

With Parquet logs of the same records, `pipeline_parquet` is the full pipeline reading them.
This is the `input_stages` section of `pipelines.benchmark` (`run`).
"""

import statistics
import time
from typing import Any, Callable, Dict, List, Mapping, Optional

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf.logs import records
from kaml_tf.data import dataset as dataset_lib

from benchmarks import inputs
from benchmarks.config import BenchmarkConfig

SECTION = "input_stages"
STAGES = ("read", "read_parallel", "parse", "shuffle_records", "pipeline")


def _tfrecord_stages(
  factory: dataset_lib.DatasetFactory,
  files: List[str],
  batch_size: int,
  shuffle_buffer: int,
  seed: int,
) -> Dict[str, Callable[[], tf.data.Dataset]]:
  kind = records.compression_of(files[0])
  spec = factory.parse_spec

  def read():
    return tf.data.TFRecordDataset(files, compression_type=kind, buffer_size=8 << 20)

  def read_parallel():
    return tf.data.Dataset.from_tensor_slices(files).interleave(
      lambda p: tf.data.TFRecordDataset(p, compression_type=kind, buffer_size=8 << 20),
      cycle_length=min(4, len(files)),
      block_length=1,
      num_parallel_calls=tf.data.AUTOTUNE,
    )

  return {
    "read": lambda: read().repeat().batch(batch_size),
    "read_parallel": lambda: read_parallel().repeat().batch(batch_size),
    "parse": lambda: (
      read()
      .repeat()
      .batch(batch_size)
      .map(lambda s: tf.io.parse_example(s, spec), num_parallel_calls=tf.data.AUTOTUNE)
    ),
    "shuffle_records": lambda: (
      read_parallel().repeat().shuffle(shuffle_buffer, seed=seed).batch(batch_size)
    ),
    "pipeline": factory,
  }


def turn_order(names: List[str], turn: int) -> List[str]:
  """`names` rotated by `turn`, so no one always runs right after the same other one."""
  shift = turn % len(names)
  return names[shift:] + names[:shift]


def _time(ds: tf.data.Dataset, batches: int) -> Dict[str, float]:
  """CPU and wall milliseconds per batch over `batches` batches of a started iterator."""
  iterator = iter(ds)
  next(iterator)  # start-up (first read, window fill) is not timed
  start, cpu_start = time.perf_counter(), time.process_time()
  for _ in range(batches):
    next(iterator)
  return {
    "wall_ms": 1000 * (time.perf_counter() - start) / batches,
    "cpu_ms": 1000 * (time.process_time() - cpu_start) / batches,
  }


def measure(
  schema,
  stats,
  files: str,
  batch_size: int = 5000,
  shuffle_buffer: int = 100_000,
  batches: int = 40,
  turns: int = 3,
  parquet_files: Optional[str] = None,
  seed: int = 0,
) -> Dict[str, Any]:
  """Milliseconds of CPU and wall time per batch of every stage (see the module docstring).

  Args:
    schema: The logs' schema.
    stats: Ad-task statistics (the full pipelines use the `adm` policy).
    files: TFRecord logs.
    batch_size: Records per batch.
    shuffle_buffer: Records shuffled together by the shuffling stages.
    batches: Timed batches per turn.
    turns: Timed turns per stage.
    parquet_files: The same records as Parquet logs, or None.
    seed: Shuffle seed.

  Returns:
    `{"batch_size", "batches", "turns", "stages": {name: {"cpu_ms", "wall_ms" (medians),
    "cpu_turns", "wall_turns"}}}`.
  """
  config = dataset_lib.DatasetConfig(
    files=files,
    batch_size=batch_size,
    shuffle_buffer=shuffle_buffer,
    seed=seed,
    repeat=True,
    drop_remainder=True,
  )
  factory = dataset_lib.DatasetFactory(schema, stats, config)
  builders = _tfrecord_stages(factory, factory.files_for()[0], batch_size, shuffle_buffer, seed)
  if parquet_files:
    builders["pipeline_parquet"] = dataset_lib.DatasetFactory(
      schema,
      stats,
      dataset_lib.DatasetConfig(
        files=parquet_files,
        batch_size=batch_size,
        shuffle_buffer=shuffle_buffer,
        seed=seed,
        repeat=True,
        drop_remainder=True,
      ),
    )
  datasets = {name: build() for name, build in builders.items()}
  for ds in datasets.values():
    _time(ds, 2)  # traces the functions, fills the page cache
  names = list(datasets)
  timed: Dict[str, List[Dict[str, float]]] = {name: [] for name in names}
  for turn in range(turns):
    for name in turn_order(names, turn):
      timed[name].append(_time(datasets[name], batches))
  return {
    "batch_size": batch_size,
    "batches": batches,
    "turns": turns,
    "shuffle_buffer": shuffle_buffer,
    "stages": {name: _summary(t) for name, t in timed.items()},
  }


def _summary(turns: List[Mapping[str, float]]) -> Dict[str, Any]:
  return {
    "cpu_ms": statistics.median(t["cpu_ms"] for t in turns),
    "wall_ms": statistics.median(t["wall_ms"] for t in turns),
    "cpu_turns": [t["cpu_ms"] for t in turns],
    "wall_turns": [t["wall_ms"] for t in turns],
  }


def run(config: BenchmarkConfig) -> Dict[str, Any]:
  """The section: `measure` on `--logs` (and `--parquet_logs`) with the `--stats` of ADM."""
  logs = config.required("logs", SECTION)
  schema = inputs.load_schema(config, SECTION)
  stats = inputs.required_stats(config, schema, SECTION)
  return measure(
    schema,
    stats,
    logs,
    batch_size=config.batch_size,
    shuffle_buffer=config.shuffle_buffer,
    batches=config.stage_batches,
    turns=config.turns,
    parquet_files=config.parquet_logs,
  )


def summary(result: Dict[str, Any]) -> List[str]:
  """The lines printed for the section's figures: CPU and wall time per batch of each stage."""
  return [
    "input_stages %s: %.1f ms of CPU per batch (wall %.1f ms)"
    % (name, figures["cpu_ms"], figures["wall_ms"])
    for name, figures in result["stages"].items()
  ]
