"""Writes simulated ad logs: a train window of days, the following test day(s), and a report.

  python -m pipelines.simulate --output_dir=DIR --num_rows=1000000 --seed=0 \
      [--num_shards=4] [--compression=gzip] [--target_shares=...] [--interest_tags=K] [...]

Outputs `DIR/schema.json`, `DIR/train-*.tfrecord[.gz]`, `DIR/test-*.tfrecord[.gz]` and
`DIR/simulation.json` (resolved config, files and the data report). Every field of
`kaml_tf.datasets.simulation.simulator.SimulationConfig` is a flag of the same name, with the same
default and documentation; list fields take comma-separated numbers. `--interest_tags=K` (K >= 2)
adds the multi-valued feature `interest_tags` (0 to K tags per user); the default 0 leaves
every output as it was. `--drift_day=D` with `--new_task_share` and `--report_switch_share`
changes the world on day D (`kaml_tf.datasets.simulation.drift`): ad tasks launched that day,
reporting that starts or stops.
"""

from absl import logging

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
from kaml_tf.datasets.simulation import simulator
from pipelines import common
from pipelines import dataclass_flags

# `--seed` is the shared one (pipelines.common), the same setting for every job.
dataclass_flags.define(simulator.SimulationConfig)
dataclass_flags.use(common.OUTPUT_DIR, common.NUM_SHARDS, common.COMPRESSION)


def config_from_flags() -> simulator.SimulationConfig:
  """Turns the flags into a `SimulationConfig` (errors name the flag)."""
  return dataclass_flags.build(simulator.SimulationConfig)


@common.job
def main(argv):
  del argv
  output_dir = dataclass_flags.required(common.OUTPUT_DIR)
  config = config_from_flags()
  logging.info("simulating %d rows into %s", config.num_rows, output_dir)
  simulator.write_simulation(
    config,
    output_dir,
    num_shards=common.NUM_SHARDS.value,
    compression=common.compression_type(),
  )


if __name__ == "__main__":
  common.run(main)
