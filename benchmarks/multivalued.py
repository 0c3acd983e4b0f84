"""The cost per batch of a multi-valued feature in the input pipeline (section `multivalued`).

Simulates the same logs twice, without and with `interest_tags` (every other column is equal:
`kaml_tf.datasets.simulation.interest_tags`), and times the full training input pipeline
(`kaml_tf.data.dataset`, base mask, files read in turn) over each, the passes alternating in
one process. Reported: CPU milliseconds per batch of each and their ratio (the feature's cost),
best pass of each. Figures: docs/results/timings/input.md.

  python -m pipelines.benchmark --sections=multivalued --multivalued_rows=60000 \
      --multivalued_tags=5 --batch_size=5000 --turns=3 --output=bench.json
"""

import dataclasses
import os
import tempfile
from typing import Any, Dict, List

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)

from kaml_tf import schema as schema_lib
from kaml_tf.data import dataset as dataset_lib
from kaml_tf.datasets.simulation import simulator
from benchmarks import input_pipeline
from benchmarks import input_stages
from benchmarks.config import BenchmarkConfig

SECTION = "multivalued"


@dataclasses.dataclass(frozen=True)
class MultivaluedConfig:
  """Attributes: simulated rows, tags per user, batch size, timed passes of each, seed."""

  num_rows: int = 100_000
  interest_tags: int = 5
  batch_size: int = 5000
  repeats: int = 3
  seed: int = 0


def _simulate(config: MultivaluedConfig, tags: int, directory: str) -> schema_lib.Schema:
  sim = simulator.SimulationConfig(
    num_rows=config.num_rows, seed=config.seed, interest_tags=tags, test_days=1
  )
  simulator.write_simulation(sim, directory, num_shards=2)
  return schema_lib.Schema.load(os.path.join(directory, "schema.json"))


def measure(config: MultivaluedConfig, workdir: str) -> Dict[str, Any]:
  """Times the pipeline over logs without and with the tags; returns the figures."""
  pipelines = {}
  for name, tags in (("without", 0), ("with", config.interest_tags)):
    directory = os.path.join(workdir, name)
    schema = _simulate(config, tags, directory)
    pipelines[name] = dataset_lib.make_dataset(
      os.path.join(directory, "train-*"), schema, policy="base", batch_size=config.batch_size
    )
  cpu: Dict[str, list] = {name: [] for name in pipelines}
  batches = {}
  for repeat in range(config.repeats):
    for name in input_stages.turn_order(list(pipelines), repeat):
      rows, _, cpu_seconds = input_pipeline.time_pass(pipelines[name])
      batches[name] = -(-rows // config.batch_size)
      cpu[name].append(1000.0 * cpu_seconds / batches[name])
  best = {name: min(v) for name, v in cpu.items()}
  return {
    "config": dataclasses.asdict(config),
    "batches_per_pass": batches["with"],
    "cpu_ms_per_batch": best,
    "ratio_with_to_without": best["with"] / best["without"],
  }


def run(config: BenchmarkConfig) -> Dict[str, Any]:
  """The section: `measure` on simulated logs of `--multivalued_rows` rows."""
  measured = MultivaluedConfig(
    num_rows=config.multivalued_rows,
    interest_tags=config.multivalued_tags,
    batch_size=config.batch_size,
    repeats=config.turns,
  )
  with tempfile.TemporaryDirectory() as workdir:
    return measure(measured, workdir)


def summary(figures: Dict[str, Any]) -> List[str]:
  """The line printed for the section's figures."""
  cpu = figures["cpu_ms_per_batch"]
  return [
    "multivalued: %.1f ms CPU per batch without interest tags, %.1f ms with (x%.2f)"
    % (cpu["without"], cpu["with"], figures["ratio_with_to_without"])
  ]
