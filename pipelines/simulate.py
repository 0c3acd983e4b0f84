"""Writes simulated ad logs: a train window of days, the following test day(s), and a report.

  python -m pipelines.simulate --output_dir=DIR --num_rows=1000000 --seed=0 \
      [--num_shards=4] [--compression=gzip] [--target_shares=...] [...]

Outputs `DIR/schema.json`, `DIR/train-*.tfrecord[.gz]`, `DIR/test-*.tfrecord[.gz]` and
`DIR/simulation.json` (resolved config, files and the data report). Every field of
`kaml_tf.datasets.simulation.simulator.SimulationConfig` is a flag of the same name, with the same
default and documentation; list fields take comma-separated numbers.
"""

import dataclasses

from absl import app
from absl import flags
from absl import logging

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
from kaml_tf.datasets.simulation import simulator

# Flags that other entry points define too, with the same type and meaning: absl refuses a
# second definition from another module unless one side allows the override, and the test
# suite imports every pipeline into one process.
_SHARED_FLAGS = ("seed", "output_dir")

_CONFIG_DEFAULTS = simulator.SimulationConfig()
_CONFIG_FLAGS = []
for _field in dataclasses.fields(simulator.SimulationConfig):
  _default = getattr(_CONFIG_DEFAULTS, _field.name)
  _kwargs = {"help": _field.metadata["help"], "allow_override": _field.name in _SHARED_FLAGS}
  if isinstance(_default, tuple):
    flags.DEFINE_list(_field.name, [repr(v) for v in _default], **_kwargs)
  elif isinstance(_default, int):
    flags.DEFINE_integer(_field.name, _default, **_kwargs)
  else:
    flags.DEFINE_float(_field.name, _default, **_kwargs)
  _CONFIG_FLAGS.append(_field.name)

_OUTPUT_DIR = flags.DEFINE_string(
  "output_dir", None, "Folder to write the logs into.", allow_override=True
)
_NUM_SHARDS = flags.DEFINE_integer(
  "num_shards", 1, "TFRecord shards per split.", allow_override=True
)
_COMPRESSION = flags.DEFINE_enum(
  "compression",
  "none",
  ["none", "gzip"],
  "Compression of the TFRecord shards.",
  allow_override=True,
)
_COMPRESSION_TYPES = {"none": "", "gzip": "GZIP"}


def config_from_flags() -> simulator.SimulationConfig:
  """Turns the flags into a `SimulationConfig` (errors name the flag)."""
  values = {}
  for name in _CONFIG_FLAGS:
    value = flags.FLAGS[name].value
    if isinstance(value, list):
      try:
        value = tuple(float(v) for v in value)
      except ValueError:
        raise app.UsageError(
          f"--{name}: expected comma-separated numbers, got {','.join(value)!r}"
        ) from None
    values[name] = value
  try:
    return simulator.SimulationConfig(**values)
  except ValueError as e:
    raise app.UsageError(f"--{e}") from None


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not _OUTPUT_DIR.value:
    raise app.UsageError("--output_dir is required")
  config = config_from_flags()
  logging.info("simulating %d rows into %s", config.num_rows, _OUTPUT_DIR.value)
  simulator.write_simulation(
    config,
    _OUTPUT_DIR.value,
    num_shards=_NUM_SHARDS.value,
    compression=_COMPRESSION_TYPES[_COMPRESSION.value],
  )


if __name__ == "__main__":
  app.run(main)
