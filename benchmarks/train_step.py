"""Training-step cost of model variants, measured alternately in one process.

Batches are taken from the real input pipeline (ADM masks, labels) and held in memory, so the
figure is the step alone: forward, the KAML losses, backward and Adam. Variants are timed in
turns (A, B, A, B, ...) after a warm-up that traces each step function, and the best turn of
each is compared: on a shared machine the best turn is the least disturbed one. The paper's
target: a KAML step (MMoE + ADM + HKE + RLU) costs at most 1.3x a base MMoE step. This is the
`train_step` section of `pipelines.benchmark` (`run`): the base MMoE and KAML (gamma 0.9) on
4 in-memory batches of `--batch_size`.
"""

import dataclasses
import statistics
import time
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import kaml_tf  # noqa: F401
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.models import config as model_config_lib
from kaml_tf.training import config as config_lib
from kaml_tf.training import trainer

from benchmarks import inputs
from benchmarks.config import BenchmarkConfig

SECTION = "train_step"
KAML_STEP_TARGET = 1.3


@dataclasses.dataclass(frozen=True)
class Variant:
  """A named model + loss configuration to time."""

  name: str
  run_config: config_lib.RunConfig


def in_memory_stream(batches: Sequence[Any]) -> tf.data.Dataset:
  """The batches, in order, repeated forever (no input cost beyond handing them over)."""
  stream = tf.data.Dataset.from_tensors(batches[0])
  for batch in batches[1:]:
    stream = stream.concatenate(tf.data.Dataset.from_tensors(batch))
  return stream.repeat()


def time_turn(task, batches: tf.data.Dataset, steps: int) -> Tuple[float, float]:
  """Wall and CPU seconds per step of `steps` training steps of `task` (one `fit` call).

  CPU time is the whole process's (every TF thread): on a machine shared with other jobs it
  measures the step's work, whereas wall time also measures how much CPU the others left.
  """
  started, cpu_started = time.perf_counter(), time.process_time()
  task.fit(batches, steps_per_epoch=steps, epochs=1, verbose=0)
  return ((time.perf_counter() - started) / steps, (time.process_time() - cpu_started) / steps)


def measure(
  schema: schema_lib.Schema,
  variants: Sequence[Variant],
  batches: Sequence[Any],
  steps: int = 10,
  turns: int = 3,
) -> Dict[str, Any]:
  """Seconds per step of each variant on the same in-memory batches.

  Args:
    schema: The logs' schema.
    variants: Configurations to compare; the first is the reference for ratios.
    batches: `(features, targets)` batches from the dataset factory.
    steps: Steps per timed turn.
    turns: Timed turns per variant.

  Returns:
    `{"variants": {name: {"step_seconds_best", "step_seconds_median", "samples_per_second",
    "turns": [...], "cpu_seconds_median", "cpu_turns": [...]}},
    "ratio_to_first": {name: best / first's best},
    "cpu_ratio_to_first": {name: median CPU seconds / first's}}`.
  """
  stream = in_memory_stream(batches)
  tasks = {v.name: trainer.build_task(schema, v.run_config) for v in variants}
  for task in tasks.values():
    time_turn(task, stream, 2)  # traces the step function
  times: Dict[str, List[float]] = {name: [] for name in tasks}
  cpu_times: Dict[str, List[float]] = {name: [] for name in tasks}
  for _ in range(turns):
    for name, task in tasks.items():
      wall, cpu = time_turn(task, stream, steps)
      times[name].append(wall)
      cpu_times[name].append(cpu)
  batch_size = int(tf.shape(tf.nest.flatten(batches[0])[0])[0])
  result = {
    name: {
      "step_seconds_best": min(t),
      "step_seconds_median": statistics.median(t),
      "samples_per_second": batch_size / min(t),
      "turns": t,
      "cpu_seconds_median": statistics.median(cpu_times[name]),
      "cpu_turns": cpu_times[name],
    }
    for name, t in times.items()
  }
  first = result[variants[0].name]
  return {
    "batch_size": batch_size,
    "variants": result,
    "ratio_to_first": {
      name: r["step_seconds_best"] / first["step_seconds_best"] for name, r in result.items()
    },
    "cpu_ratio_to_first": {
      name: r["cpu_seconds_median"] / first["cpu_seconds_median"] for name, r in result.items()
    },
  }


def paper_variants(
  data: config_lib.DataConfig, batch_size: int, model_overrides: Mapping[str, Any] = None
) -> List[Variant]:
  """Base MMoE (base mask, BCE only) and KAML (ADM + HKE + RLU with gamma 0.9)."""
  overrides = dict(model_overrides or {})
  optim = config_lib.OptimConfig(batch_size=batch_size)
  return [
    Variant(
      "mmoe",
      config_lib.RunConfig(
        data=dataclasses.replace(data, mask_policy="base"),
        model=model_config_lib.ModelConfig(**overrides),
        loss=config_lib.LossConfig(gamma=1.0),
        optim=optim,
      ),
    ),
    Variant(
      "kaml",
      config_lib.RunConfig(
        data=data,
        model=model_config_lib.ModelConfig(hke=True, **overrides),
        loss=config_lib.LossConfig(gamma=0.9),
        optim=optim,
      ),
    ),
  ]


def run(config: BenchmarkConfig) -> Dict[str, Any]:
  """The section: `measure` of `paper_variants`, with KAML's ratio against its target."""
  schema, data, batches = inputs.in_memory_batches(config, SECTION)
  result = measure(
    schema,
    paper_variants(data, config.batch_size),
    batches,
    steps=config.steps,
    turns=config.turns,
  )
  ratio = result["ratio_to_first"]["kaml"]
  result.update(target_ratio=KAML_STEP_TARGET, meets_target=ratio <= KAML_STEP_TARGET)
  return result


def summary(result: Dict[str, Any]) -> List[str]:
  """The lines printed for the section's figures."""
  lines = [
    "train_step %s: best %.1f ms/step (median %.1f; CPU %.1f ms/step), %.0f samples/s"
    % (
      name,
      1000 * r["step_seconds_best"],
      1000 * r["step_seconds_median"],
      1000 * r["cpu_seconds_median"],
      r["samples_per_second"],
    )
    for name, r in result["variants"].items()
  ]
  lines.append(
    "train_step: KAML / MMoE = %.3f (target <= %.1f); CPU time per step %.3f"
    % (
      result["ratio_to_first"]["kaml"],
      result["target_ratio"],
      result["cpu_ratio_to_first"]["kaml"],
    )
  )
  return lines
