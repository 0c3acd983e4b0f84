"""The cost of `tf.config.experimental.enable_op_determinism()` on a training step.

Op determinism cannot be switched off again in a process, so the two cases run in two fresh
child processes (`spawn`), one with it on and one without, each holding the same model
configuration and the same in-memory batches. Both trace their step function first; then the
parent has them time turns alternately (off, on, off, on, ...), so a busy period on a shared
machine slows both alike, and the best turn of each is compared as in
`benchmarks.train_step`. This is the `determinism` section of `pipelines.benchmark` (`run`):
the KAML variant and in-memory batches of the `train_step` section.
"""

import multiprocessing
import statistics
import traceback
from typing import Any, Dict, List, Sequence, Tuple

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.training import config as config_lib
from kaml_tf.training import trainer

from benchmarks import inputs
from benchmarks import train_step
from benchmarks.config import BenchmarkConfig

SECTION = "determinism"
VARIANT = "kaml"
CASES = ("nondeterministic", "deterministic")
_WARMUP_STEPS = 2


class WorkerError(RuntimeError):
  """A timing child failed; the message carries its traceback."""


def _worker(
  deterministic: bool,
  schema_dict: Dict[str, Any],
  run_config: config_lib.RunConfig,
  batches: Sequence[Any],
  steps: int,
  conn,
) -> None:
  """Child process: builds the task, traces it, then times one turn per request."""
  try:
    if deterministic:
      tf.config.experimental.enable_op_determinism()
    # Determinism refuses unseeded random ops (the initializers); both cases get the same seed,
    # so they also start from the same weights.
    tf.keras.utils.set_random_seed(run_config.optim.seed)
    schema = schema_lib.Schema.from_dict(schema_dict)
    stream = train_step.in_memory_stream(batches)
    task = trainer.build_task(schema, run_config)
    train_step.time_turn(task, stream, _WARMUP_STEPS)  # traces the step function
    conn.send(("ready", deterministic))
    while conn.recv():
      conn.send(("turn", train_step.time_turn(task, stream, steps)))  # (wall, CPU)
  except BaseException as e:  # pylint: disable=broad-except  (reported to the parent)
    conn.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))


def _answer(conn, expected: str):
  kind, value = conn.recv()
  if kind != expected:
    raise WorkerError(f"determinism benchmark child failed: {value}")
  return value


def measure(
  schema: schema_lib.Schema,
  run_config: config_lib.RunConfig,
  batches: Sequence[Any],
  steps: int = 10,
  turns: int = 3,
) -> Dict[str, Any]:
  """Seconds per training step with and without op determinism, timed in alternating turns.

  Args:
    schema: The logs' schema.
    run_config: The model and loss to time (e.g. KAML from `train_step.paper_variants`).
    batches: `(features, targets)` batches of the dataset factory (tensors or NumPy), all of
      one size.
    steps: Steps per timed turn.
    turns: Timed turns per case.

  Returns:
    `{"batch_size": int, "steps": int, "cases": {case: {"step_seconds_best",
    "step_seconds_median", "turns": [...], "cpu_seconds_median", "cpu_turns": [...],
    "op_determinism": bool}}, "ratio_best": deterministic best / nondeterministic best,
    "ratio_median": ..., "ratio_cpu_median": ... of the CPU seconds per step}`.
  """
  batches = [
    tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, b) for b in batches
  ]
  context = multiprocessing.get_context("spawn")
  pipes, processes, enabled = {}, {}, {}
  try:
    for case in CASES:
      parent_end, child_end = context.Pipe()
      processes[case] = context.Process(
        target=_worker,
        args=(case == "deterministic", schema.to_dict(), run_config, batches, steps, child_end),
        daemon=True,
      )
      processes[case].start()
      pipes[case] = parent_end
    for case in CASES:
      enabled[case] = _answer(pipes[case], "ready")
    times: Dict[str, List[Tuple[float, float]]] = {case: [] for case in CASES}
    for _ in range(turns):
      for case in CASES:
        pipes[case].send(True)
        times[case].append(_answer(pipes[case], "turn"))
  finally:
    for case, pipe in pipes.items():
      if processes[case].is_alive():
        pipe.send(False)
      processes[case].join(timeout=60)
  return _summary(batches, steps, times, enabled)


def _summary(
  batches, steps: int, times: Dict[str, List[Tuple[float, float]]], enabled: Dict[str, bool]
) -> Dict[str, Any]:
  cases = {}
  for case, turns in times.items():
    wall, cpu = [w for w, _ in turns], [c for _, c in turns]
    cases[case] = {
      "step_seconds_best": min(wall),
      "step_seconds_median": statistics.median(wall),
      "turns": wall,
      "cpu_seconds_median": statistics.median(cpu),
      "cpu_turns": cpu,
      "op_determinism": enabled[case],
    }
  off, on = (cases[c] for c in CASES)
  return {
    "batch_size": int(len(tf.nest.flatten(batches[0])[0])),
    "steps": steps,
    "cases": cases,
    "ratio_best": on["step_seconds_best"] / off["step_seconds_best"],
    "ratio_median": on["step_seconds_median"] / off["step_seconds_median"],
    "ratio_cpu_median": on["cpu_seconds_median"] / off["cpu_seconds_median"],
  }


def run(config: BenchmarkConfig) -> Dict[str, Any]:
  """The section: `measure` of the `train_step` section's KAML variant."""
  schema, data, batches = inputs.in_memory_batches(config, SECTION)
  variants = {v.name: v for v in train_step.paper_variants(data, config.batch_size)}
  result = measure(
    schema, variants[VARIANT].run_config, batches, steps=config.steps, turns=config.turns
  )
  result["variant"] = VARIANT
  return result


def summary(result: Dict[str, Any]) -> List[str]:
  """The lines printed for the section's figures."""
  lines = [
    "determinism %s: best %.1f ms/step (median %.1f; CPU %.1f ms/step)"
    % (
      case,
      1000 * r["step_seconds_best"],
      1000 * r["step_seconds_median"],
      1000 * r["cpu_seconds_median"],
    )
    for case, r in result["cases"].items()
  ]
  lines.append(
    "determinism: deterministic / non-deterministic KAML step = %.3f (median %.3f, CPU time %.3f)"
    % (result["ratio_best"], result["ratio_median"], result["ratio_cpu_median"])
  )
  return lines
