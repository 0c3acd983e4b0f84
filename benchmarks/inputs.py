"""What the sections read, loaded from a `BenchmarkConfig`: schema, statistics, batches.

Each section loads its own inputs (in its child process when the sections are isolated), so
nothing big crosses a process boundary. Missing or wrong settings are `ConfigError`s naming
their flag.
"""

from typing import Any, List, Tuple

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)

from kaml_tf import schema as schema_lib
from kaml_tf.data import dataset as dataset_lib
from kaml_tf.data import masks
from kaml_tf.data import stats as stats_lib
from kaml_tf.training import config as config_lib

from benchmarks.config import BenchmarkConfig
from benchmarks.config import ConfigError

IN_MEMORY_BATCHES = 4


def load_schema(config: BenchmarkConfig, section: str) -> schema_lib.Schema:
  """The schema of `--schema`."""
  return schema_lib.Schema.load(config.required("schema", section))


def alpha(config: BenchmarkConfig, schema: schema_lib.Schema) -> Tuple[int, ...]:
  """`--alpha` checked against the schema (the defaults when empty)."""
  try:
    return masks.resolve_alpha(config.alpha or None, schema)
  except masks.MaskError as e:
    raise ConfigError(str(e), "alpha") from None


def stats_or_computed(
  config: BenchmarkConfig, schema: schema_lib.Schema, section: str
) -> stats_lib.ConversionStats:
  """The statistics of `--stats`, or computed from `--logs` with the window settings."""
  if config.stats:
    return stats_lib.load_stats(config.stats, schema)
  return stats_lib.compute_stats(config.required("logs", section), schema, config.stats_config())


def required_stats(
  config: BenchmarkConfig, schema: schema_lib.Schema, section: str
) -> stats_lib.ConversionStats:
  """The statistics of `--stats`, which `section` needs."""
  return stats_lib.load_stats(config.required("stats", section), schema)


def adm_data(config: BenchmarkConfig, section: str) -> config_lib.DataConfig:
  """The training data settings of the model sections: `--logs` under ADM masks."""
  return config_lib.DataConfig(
    schema_path=config.required("schema", section),
    train_files=config.required("logs", section),
    stats_path=config.required("stats", section),
    mask_policy=masks.ADM,
    shuffle_buffer=config.shuffle_buffer,
  )


def in_memory_batches(
  config: BenchmarkConfig, section: str, num_batches: int = IN_MEMORY_BATCHES
) -> Tuple[schema_lib.Schema, config_lib.DataConfig, List[Any]]:
  """The inputs of a section that times steps on batches held in memory.

  Returns:
    `(schema, adm_data(config), the first num_batches full (features, targets) batches of
    --logs under ADM masks)`.
  """
  data = adm_data(config, section)
  schema = load_schema(config, section)
  batches = dataset_lib.make_dataset(
    data.train_files,
    schema,
    stats=required_stats(config, schema, section),
    policy=masks.ADM,
    batch_size=config.batch_size,
    drop_remainder=True,
  ).take(num_batches)
  return schema, data, list(batches)
