"""The `train_throughput` section: training samples/s of the base MMoE and KAML, end to end.

Both models train through this project's pipeline (TFRecord logs -> dataset factory with
shuffling -> `KamlTask.fit`), timed in alternating turns (`benchmarks.throughput`); with
Parquet logs of the same records, also both models reading them (`mmoe_parquet`,
`kaml_parquet`). Compare with the `train_step` section (the same models fed from in-memory
batches) to see the input's share.
"""

import dataclasses
from typing import Any, Dict, List, Optional, Tuple

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)

from kaml_tf import schema as schema_lib
from kaml_tf.data import stats as stats_lib
from kaml_tf.training import config as config_lib

from benchmarks import inputs
from benchmarks import throughput
from benchmarks.config import BenchmarkConfig

SECTION = "train_throughput"
PARQUET_SUFFIX = "_parquet"


def timing(config: BenchmarkConfig) -> throughput.TimingConfig:
  """Steps and turns of every runner: `--throughput_steps`, `--throughput_warmup_steps`."""
  return throughput.TimingConfig(
    steps=config.throughput_steps,
    warmup_steps=config.throughput_warmup_steps,
    turns=config.turns,
  )


def pipeline_inputs(
  config: BenchmarkConfig, section: str
) -> Tuple[schema_lib.Schema, stats_lib.ConversionStats, config_lib.DataConfig]:
  """Schema, statistics and the ADM `DataConfig` (with `--shuffle_buffer`) of the runners."""
  data = inputs.adm_data(config, section)
  schema = inputs.load_schema(config, section)
  return schema, inputs.required_stats(config, schema, section), data


def pipeline_runners(
  schema: schema_lib.Schema,
  stats: stats_lib.ConversionStats,
  data: config_lib.DataConfig,
  batch_size: int,
  parquet_logs: Optional[str] = None,
) -> List[throughput.PipelineRunner]:
  """Base MMoE and KAML through the pipeline from `data`'s logs, and from `parquet_logs`."""
  runners = throughput.paper_runners(schema, data, batch_size, stats)
  if parquet_logs:
    parquet = dataclasses.replace(data, train_files=parquet_logs)
    runners += throughput.paper_runners(
      schema, parquet, batch_size, stats, name_suffix=PARQUET_SUFFIX
    )
  return runners


def run(config: BenchmarkConfig) -> Dict[str, Any]:
  """The section: `throughput.measure` of `pipeline_runners`."""
  schema, stats, data = pipeline_inputs(config, SECTION)
  runners = pipeline_runners(schema, stats, data, config.batch_size, config.parquet_logs)
  result = throughput.measure(runners, timing(config))
  result["shuffle_buffer"] = config.shuffle_buffer
  return result


def summary(result: Dict[str, Any]) -> List[str]:
  """The lines printed for the section's figures: one per runner."""
  return throughput.runner_lines(SECTION, result)
