"""The cost per batch of a multi-valued feature in the input pipeline.

Simulates the same logs twice, without and with `interest_tags` (every other column is equal:
`kaml_tf.datasets.simulation.interest_tags`), and times the full training input pipeline
(`kaml_tf.data.dataset`, base mask, files read in turn) over each, the passes alternating in
one process. Reported: CPU milliseconds per batch of each and their ratio (the feature's cost),
best pass of each. Figures: docs/results/timings/input.md.

  python -m benchmarks.multivalued --num_rows=100000 --interest_tags=5 --batch_size=5000
"""

import dataclasses
import json
import os
import tempfile
from typing import Any, Dict

from absl import app
from absl import flags
import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)

from kaml_tf import schema as schema_lib
from kaml_tf.data import dataset as dataset_lib
from kaml_tf.datasets.simulation import simulator
from benchmarks import input_pipeline
from benchmarks import input_stages


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


FLAGS = flags.FLAGS
_DEFAULTS = MultivaluedConfig()
for _field in dataclasses.fields(MultivaluedConfig):
  flags.DEFINE_integer(
    _field.name, getattr(_DEFAULTS, _field.name), f"MultivaluedConfig.{_field.name}"
  )


def main(argv):
  del argv
  config = MultivaluedConfig(
    **{f.name: FLAGS[f.name].value for f in dataclasses.fields(MultivaluedConfig)}
  )
  with tempfile.TemporaryDirectory() as workdir:
    print(json.dumps(measure(config, workdir), indent=2))


if __name__ == "__main__":
  app.run(main)
