"""Training throughput (samples/s) of `fit` runners, timed in alternating turns.

A runner trains one model for a given number of steps with `fit`; the figure is taken from a
callback that records when each batch ends, so the start-up of a turn (a new iterator, filling
the shuffle buffer, the first prefetch) is excluded: a turn of `warmup + steps` batches counts
only the last `steps` of them. The callback asks for NumPy logs, which waits for each step to
finish, so the batch-end times are real step boundaries.

Runners are timed in turns (A, B, C, A, B, C, ...) in one process after a warm-up turn of
each that traces the train functions, and the best turn of each is compared: on a shared
machine the best turn is the least disturbed one, and alternating makes a busy period slow
every runner alike.

`PipelineRunner` is this project's path: TFRecord or Parquet logs -> `kaml_tf.data.dataset` (parse,
statistics join, masks, shuffle) -> `KamlTask.fit`, as `kaml_tf.training.trainer` trains.
`InMemoryRunner` trains the same task on a few batches of that pipeline held in memory, so the
difference between the two is the input pipeline's cost.
"""

import dataclasses
import statistics
import time
from typing import Any, Dict, List, Mapping, Optional, Protocol, Sequence

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf import schema as schema_lib
from benchmarks import train_step
from kaml_tf.data import dataset as dataset_lib
from kaml_tf.data import stats as stats_lib
from kaml_tf.training import trainer


@dataclasses.dataclass(frozen=True)
class TimingConfig:
  """How long each runner is timed.

  Attributes:
    steps: Timed steps per turn.
    warmup_steps: Untimed steps at the start of every turn (at least 1: the first batch end
      is the start of the clock).
    turns: Timed turns per runner.
  """

  steps: int = 20
  warmup_steps: int = 3
  turns: int = 3

  def __post_init__(self):
    for name in ("steps", "warmup_steps", "turns"):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: must be an integer >= 1, got {value!r}")


class BatchEndTimes(tf.keras.callbacks.Callback):
  """Records `time.perf_counter()` and `time.process_time()` at the end of every batch.

  The process's CPU time (every thread, the input pipeline's included) measures the work per
  sample; on a machine shared with other jobs it moves much less than wall time.
  """

  def __init__(self):
    super().__init__()
    self.times: List[float] = []
    self.cpu_times: List[float] = []

  def on_train_begin(self, logs=None):
    self.times = []
    self.cpu_times = []

  def on_train_batch_end(self, batch, logs=None):
    self.times.append(time.perf_counter())
    self.cpu_times.append(time.process_time())


def samples_per_second(times: Sequence[float], batch_size: int, warmup_steps: int) -> float:
  """Samples/s over the batches after the first `warmup_steps` of a turn.

  Args:
    times: End time of every batch of the turn, in order.
    batch_size: Samples per batch.
    warmup_steps: Untimed leading batches; the clock starts at the end of the last of them.

  Returns:
    `batch_size * (len(times) - warmup_steps) / (times[-1] - times[warmup_steps - 1])`.
  """
  if warmup_steps < 1 or len(times) <= warmup_steps:
    raise ValueError(
      f"need more than {warmup_steps} batch end times (warm-up >= 1), got {len(times)}"
    )
  seconds = times[-1] - times[warmup_steps - 1]
  if seconds <= 0:
    raise ValueError(f"batch end times are not increasing: {list(times)}")
  return batch_size * (len(times) - warmup_steps) / seconds


class Runner(Protocol):
  """Something trained with Keras `fit` for a number of steps."""

  name: str
  batch_size: int

  def fit(self, steps: int, callback: tf.keras.callbacks.Callback) -> None: ...


class PipelineRunner:
  """A `KamlTask` fed by the project's input pipeline from TFRecord logs.

  Args:
    name: Label in the results.
    schema: The logs' schema.
    run_config: Model, loss, optimiser and data settings (`data.train_files`,
      `data.mask_policy`, `data.shuffle_buffer`, `optim.batch_size`).
    stats: Ad-task statistics (needed by the `adm` policy).
  """

  def __init__(
    self,
    name: str,
    schema: schema_lib.Schema,
    run_config,
    stats: Optional[stats_lib.ConversionStats] = None,
  ):
    self.name = name
    self.batch_size = run_config.optim.batch_size
    data = run_config.data
    self.dataset = dataset_lib.make_dataset(
      data.train_files,
      schema,
      stats=stats,
      policy=data.mask_policy,
      batch_size=self.batch_size,
      alpha=data.alpha or None,
      shuffle_buffer=data.shuffle_buffer,
      seed=run_config.optim.seed,
      repeat=True,
      drop_remainder=True,
    )
    self.task = trainer.build_task(schema, run_config)

  def fit(self, steps: int, callback: tf.keras.callbacks.Callback) -> None:
    self.task.fit(self.dataset, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[callback])


class InMemoryRunner:
  """A `KamlTask` fed the same few batches over and over from memory (no input cost).

  Args:
    name: Label in the results.
    schema: The logs' schema.
    run_config: Model, loss and optimiser settings.
    batches: `(features, targets)` batches from the dataset factory, all of one size.
  """

  def __init__(self, name: str, schema: schema_lib.Schema, run_config, batches: Sequence[Any]):
    if not batches:
      raise ValueError(f"{name}: needs at least one batch")
    self.name = name
    self.batch_size = int(tf.shape(tf.nest.flatten(batches[0])[0])[0])
    self.dataset = train_step.in_memory_stream(batches)
    self.task = trainer.build_task(schema, run_config)

  def fit(self, steps: int, callback: tf.keras.callbacks.Callback) -> None:
    self.task.fit(self.dataset, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[callback])


def measure(runners: Sequence[Runner], timing: TimingConfig = TimingConfig()) -> Dict[str, Any]:
  """Samples/s of each runner, timed in alternating turns (see the module docstring).

  Args:
    runners: Runners with distinct names; the first is the reference of the ratios.
    timing: Steps and turns.

  Returns:
    ```
    {"steps": int, "warmup_steps": int, "turns": int,
     "runners": {name: {"batch_size": int, "samples_per_second_best": x,
                        "samples_per_second_median": x, "turns": [x, ...],
                        "samples_per_cpu_second_median": x, "cpu_turns": [x, ...]}},
     "ratio_to_first": {name: best / first runner's best},
     "cpu_ratio_to_first": {name: median samples per CPU second / first runner's}}
    ```
  """
  names = [r.name for r in runners]
  if not names or len(set(names)) != len(names):
    raise ValueError(f"runners need distinct names, got {names}")
  clock = BatchEndTimes()
  per_turn = timing.warmup_steps + timing.steps
  for runner in runners:
    runner.fit(timing.warmup_steps + 1, clock)  # traces the train function
  figures: Dict[str, List[float]] = {name: [] for name in names}
  cpu_figures: Dict[str, List[float]] = {name: [] for name in names}
  for _ in range(timing.turns):
    for runner in runners:
      runner.fit(per_turn, clock)
      figures[runner.name].append(
        samples_per_second(clock.times, runner.batch_size, timing.warmup_steps)
      )
      cpu_figures[runner.name].append(
        samples_per_second(clock.cpu_times, runner.batch_size, timing.warmup_steps)
      )
  result = {
    r.name: {
      "batch_size": r.batch_size,
      "samples_per_second_best": max(figures[r.name]),
      "samples_per_second_median": statistics.median(figures[r.name]),
      "turns": figures[r.name],
      "samples_per_cpu_second_median": statistics.median(cpu_figures[r.name]),
      "cpu_turns": cpu_figures[r.name],
    }
    for r in runners
  }
  first = result[names[0]]
  return {
    "steps": timing.steps,
    "warmup_steps": timing.warmup_steps,
    "turns": timing.turns,
    "runners": result,
    "ratio_to_first": {
      n: r["samples_per_second_best"] / first["samples_per_second_best"] for n, r in result.items()
    },
    "cpu_ratio_to_first": {
      n: r["samples_per_cpu_second_median"] / first["samples_per_cpu_second_median"]
      for n, r in result.items()
    },
  }


def paper_runners(
  schema: schema_lib.Schema,
  data,
  batch_size: int,
  stats: Optional[stats_lib.ConversionStats],
  model_overrides: Mapping[str, Any] = None,
  name_suffix: str = "",
) -> List[PipelineRunner]:
  """Base MMoE and KAML (`train_step.paper_variants`) fed through the input pipeline.

  Named after the variant plus `name_suffix` (e.g. "_parquet" for a second set of logs).
  """
  return [
    PipelineRunner(v.name + name_suffix, schema, v.run_config, stats)
    for v in train_step.paper_variants(data, batch_size, model_overrides)
  ]


def in_memory_runners(
  schema: schema_lib.Schema,
  data,
  batch_size: int,
  stats: Optional[stats_lib.ConversionStats],
  num_batches: int = 4,
  model_overrides: Mapping[str, Any] = None,
) -> List[InMemoryRunner]:
  """Base MMoE and KAML fed `num_batches` in-memory batches of their own input pipeline.

  Named `<variant>_in_memory`; with `paper_runners` in the same `measure` call they separate
  the input pipeline's cost from the step's.
  """
  runners = []
  for v in train_step.paper_variants(data, batch_size, model_overrides):
    d = v.run_config.data
    batches = list(
      dataset_lib.make_dataset(
        d.train_files,
        schema,
        stats=stats,
        policy=d.mask_policy,
        batch_size=batch_size,
        alpha=d.alpha or None,
        drop_remainder=True,
      ).take(num_batches)
    )
    runners.append(InMemoryRunner(f"{v.name}_in_memory", schema, v.run_config, batches))
  return runners


def runner_lines(section: str, result: Dict[str, Any]) -> List[str]:
  """One printed line per runner of a `measure` result: its samples/s and its ratios."""
  first = next(iter(result["runners"]))
  return [
    "%s %s: best %.0f samples/s (median %.0f), %.3fx %s; %.0f samples per CPU second, %.3fx"
    % (
      section,
      name,
      r["samples_per_second_best"],
      r["samples_per_second_median"],
      result["ratio_to_first"][name],
      first,
      r["samples_per_cpu_second_median"],
      result["cpu_ratio_to_first"][name],
    )
    for name, r in result["runners"].items()
  ]
