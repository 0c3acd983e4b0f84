"""The `peer` section: this project's training throughput against DeepCTR's MMoE.

DeepCTR's MMoE (same sizes, fed from NumPy arrays of the same logs; `benchmarks.peer_mmoe`) is
timed in turns with the two runners of the `train_throughput` section and the same two models
fed from in-memory batches (`mmoe_in_memory`, `kaml_in_memory`: no input cost, like DeepCTR's
NumPy feed) in one process. Targets (`TARGETS`): the base MMoE at least 1.0x and KAML at least
0.8x DeepCTR's samples/s through the pipeline, checked for each log format timed. DeepCTR is a
benchmark-only extra: without it the section fails with the install command.
"""

from typing import Any, Dict, List, Sequence

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import numpy as np

from kaml_tf import schema as schema_lib
from kaml_tf.logs import records

from benchmarks import peer_mmoe
from benchmarks import throughput
from benchmarks import train_throughput
from benchmarks.config import BenchmarkConfig
from benchmarks.config import ConfigError

SECTION = "peer"
TARGETS = {"mmoe": 1.0, "kaml": 0.8}  # samples/s as a fraction of DeepCTR's MMoE


def targets(runners: Sequence[str]) -> Dict[str, float]:
  """The target ratio of every pipeline runner: MMoE's or KAML's, whatever logs it reads."""
  return {
    name: target
    for base, target in TARGETS.items()
    for name in (base, base + train_throughput.PARQUET_SUFFIX)
    if name in runners
  }


def rows_needed(timing: throughput.TimingConfig, batch_size: int) -> int:
  """Rows the peer trains on in one turn (warm-up and timed steps)."""
  return (timing.warmup_steps + timing.steps) * batch_size


def read_rows(files: str, schema: schema_lib.Schema, needed: int) -> Dict[str, np.ndarray]:
  """At least `needed` rows of the logs as NumPy columns (whole files, in order).

  Raises:
    ConfigError: naming `--logs` when the logs hold fewer rows.
  """
  parts = []
  rows = 0
  for path in records.list_files(files):
    parts.append(records.read_columns([path], schema))
    rows += len(parts[-1][schema_lib.AD_TASK_ID])
    if rows >= needed:
      break
  if rows < needed:
    raise ConfigError(
      f"--logs: the peer needs {needed} rows (warm-up + timed steps times "
      f"--batch_size), the logs hold {rows}",
      "logs",
    )
  return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def run(config: BenchmarkConfig) -> Dict[str, Any]:
  """The section: DeepCTR first, then the pipeline runners, then the in-memory runners."""
  try:
    peer_mmoe.import_deepctr()
  except peer_mmoe.PeerUnavailableError as e:
    raise ConfigError(f"--sections=peer: {e}", "sections") from None
  schema, stats, data = train_throughput.pipeline_inputs(config, SECTION)
  timing = train_throughput.timing(config)
  columns = read_rows(data.train_files, schema, rows_needed(timing, config.batch_size))
  peer = peer_mmoe.PeerRunner(schema, columns, config.batch_size)
  runners = (
    [peer]
    + train_throughput.pipeline_runners(schema, stats, data, config.batch_size, config.parquet_logs)
    + throughput.in_memory_runners(schema, data, config.batch_size, stats)
  )
  result = throughput.measure(runners, timing)
  result["shuffle_buffer"] = config.shuffle_buffer
  result["peer_rows"] = peer.rows
  goals = targets(result["runners"])
  result.update(
    target_ratios=goals,
    meets_target={n: result["ratio_to_first"][n] >= t for n, t in goals.items()},
  )
  return result


def summary(result: Dict[str, Any]) -> List[str]:
  """The lines printed for the section's figures: one per runner, one per target."""
  return throughput.runner_lines(SECTION, result) + [
    "peer: %s / DeepCTR = %.3f (target >= %.1f)" % (name, result["ratio_to_first"][name], target)
    for name, target in result["target_ratios"].items()
  ]
