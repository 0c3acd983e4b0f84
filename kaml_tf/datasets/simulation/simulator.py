"""Simulated post-click app-promotion logs with incomplete, skewed multi-label conversions.

The paper's production logs cannot be shared, so this package generates logs with the phenomena
KAML is about (paper sections 1-3): five funnel-correlated conversion actions, ad tasks whose
target action follows Table 1's skew, advertisers that report only some non-target actions,
and target groups whose traffic differs. Every knob is a `SimulationConfig` field (in
`backticks` below) and a flag of `pipelines/simulate.py`.

The model, in the modules that draw it: N = 5 actions j in `ACTIONS` (the paper's A..E) and
target groups g = 0..4 (the actions) plus g = 5, "Other" (`target_action = -1`).

* `world` (steps 1-3), drawn once per seed: ad tasks and their target groups, categories, apps,
  advertisers, bids and effects; each task's reporting of each action (complete, partial or
  none; always complete on its target); users with traits, interests, attributes and activity.
* `rows` (steps 4-8), drawn day by day, each chunk from its own seeded stream: the traffic of a
  row (target group, task, creative, user tilted towards the group's population, context), its
  dense features, conversion logits, the funnel of true labels, then the reported labels
  (label_j = true_j * B(r_ej)).
* `delays` (step 9, with `report_delay_days`): a report delay per conversion; those not
  arrived by `observed_through_day` are 0 in the logs, as on the morning a daily job runs.
* `report`: the data report of `simulation.json`; `config`: `SimulationConfig` and its checks.
  This module composes them: `default_schema` and `write_simulation`.

Defaults: Table 1's target skew; reporting probabilities such that the share of samples whose
task reports action j, s_j + (1 - s_j) (complete_j + partial_j), is close to Table 1's "With
ADM" row (98.5 / 8.1 / 23.4 / 31.0 / 53.3 % expected; a given world deviates by a few points
because task traffic is Zipf); base logits giving post-click true rates of about
14 / 4 / 4 / 1.6 / 1.3 % over all traffic and 17 / 11 / 6.6 / 3.2 / 2.1 % on each action's own
target traffic (a default 1M-row run, seed 0; other seeds within about a point).

Rows are spread evenly over `train_days` + `test_days` days (the paper's four weeks + next day);
the first `train_days` days are the train window, the rest the test split. Everything is
deterministic for a config: the world comes from `SeedSequence(seed)` and the rows of chunk c of
day d from `SeedSequence(seed, spawn_key=(1, d, c))`, so the output does not depend on anything
but the config (chunk boundaries are part of it through `chunk_rows`).
"""

import time
from typing import Any, Dict, Iterator, Optional, Tuple

from absl import logging
import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import numpy as np

from kaml_tf import schema as schema_lib
from kaml_tf.datasets import output
from kaml_tf.datasets.simulation import interest_tags
from kaml_tf.datasets.simulation import report as report_lib
from kaml_tf.datasets.simulation import rows as rows_lib
from kaml_tf.datasets.simulation.config import ACTIONS
from kaml_tf.datasets.simulation.config import ACTIVATION
from kaml_tf.datasets.simulation.config import GROUP_NAMES
from kaml_tf.datasets.simulation.config import NUM_ACTIONS
from kaml_tf.datasets.simulation.config import NUM_GROUPS
from kaml_tf.datasets.simulation.config import OTHER_GROUP
from kaml_tf.datasets.simulation.config import PAYMENT
from kaml_tf.datasets.simulation.config import RE_ENGAGEMENT
from kaml_tf.datasets.simulation.config import REGISTRATION
from kaml_tf.datasets.simulation.config import RETENTION
from kaml_tf.datasets.simulation.config import SimulationConfig
from kaml_tf.datasets.simulation.config import TABLE1_TARGET_SHARES
from kaml_tf.datasets.simulation.report import expected_reporting_share
from kaml_tf.datasets.simulation.report import format_report
from kaml_tf.datasets.simulation.rows import generate_rows
from kaml_tf.datasets.simulation.rows import iter_chunks
from kaml_tf.datasets.simulation.rows import simulate
from kaml_tf.datasets.simulation.world import World
from kaml_tf.datasets.simulation.world import build_world
from kaml_tf.datasets.simulation.world import cardinalities
from kaml_tf.datasets.simulation.world import dense_moments

# The names callers use: this module is the simulation's public face.
__all__ = [
  "ACTIONS",
  "ACTIVATION",
  "GROUP_NAMES",
  "NUM_ACTIONS",
  "NUM_GROUPS",
  "OTHER_GROUP",
  "PAYMENT",
  "RE_ENGAGEMENT",
  "REGISTRATION",
  "REPORT_FILE",
  "RETENTION",
  "SimulationConfig",
  "TABLE1_TARGET_SHARES",
  "World",
  "build_world",
  "default_schema",
  "dense_moments",
  "expected_reporting_share",
  "format_report",
  "generate_rows",
  "iter_chunks",
  "simulate",
  "write_simulation",
]

REPORT_FILE = "simulation.json"


def default_schema(
  config: SimulationConfig, world: Optional[World] = None, embedding_dim: int = 16
) -> schema_lib.Schema:
  """The schema of the simulated logs: every id in [0, cardinality) has its own bucket.

  Args:
    config: The simulation config (sizes and the traffic mixture).
    world: The world of `config`, if already built (its moments set the dense mean / std).
    embedding_dim: Embedding width of every sparse feature.

  Returns:
    A `Schema` with `ACTIONS`, 15 sparse int64 features (including `ad_task_id`; a 16th,
    multi-valued, with `interest_tags > 0`), 5 dense features and `has_true_labels=True`.
  """
  world = build_world(config) if world is None else world
  sparse = tuple(
    schema_lib.SparseFeature(
      name=name, dtype="int64", num_buckets=card, embedding_dim=embedding_dim
    )
    for name, card in cardinalities(config).items()
  )
  if config.interest_tags:
    sparse += (interest_tags.feature(config, embedding_dim),)
  dense = tuple(
    schema_lib.DenseFeature(name=name, mean=mean, std=std)
    for name, (mean, std) in dense_moments(config, world).items()
  )
  return schema_lib.Schema(
    actions=ACTIONS, sparse_features=sparse, dense_features=dense, has_true_labels=True
  )


def write_simulation(
  config: SimulationConfig, output_dir: str, num_shards: int = 1, compression: str = ""
) -> Dict[str, Any]:
  """Simulates and writes `schema.json`, train / test shards and `simulation.json`.

  Files: `<output_dir>/train-<shard>-of-<shards>.tfrecord[.gz]` (days < train_days),
  `test-...` (the following days), then `schema.json` and `simulation.json`, each atomic
  (`kaml_tf.datasets.output`). Each chunk is spread evenly over the shards.

  Args:
    config: The simulation.
    output_dir: Destination folder (created if missing).
    num_shards: Shards per split.
    compression: "" or "GZIP".

  Returns:
    The content of `simulation.json`: resolved config, output files and the data report.

  Raises:
    ValueError: if `num_shards` < 1 or `compression` is not "" or "GZIP".
    FileExistsError: if `output_dir` holds log shards this run would not overwrite (mixing
      them with the new ones would corrupt the data set).
  """
  output.check_destination(output_dir, num_shards, compression)
  start_time = time.time()
  world = build_world(config)
  schema = default_schema(config, world)
  counter = report_lib.ReportCounter(config, world)
  batches = _batches(config, world, counter, num_shards, start_time)
  files = output.write_splits(schema, output_dir, batches, num_shards, compression)
  report = counter.report()
  summary = output.write_summary(
    output_dir, REPORT_FILE, schema, config, report, files, num_shards, compression
  )
  logging.info(
    "wrote %d rows to %s in %.1f s\n%s",
    config.total_rows,
    output_dir,
    time.time() - start_time,
    format_report(report),
  )
  return summary


def _batches(
  config: SimulationConfig,
  world: World,
  counter: report_lib.ReportCounter,
  num_shards: int,
  start_time: float,
) -> Iterator[Tuple[str, Dict[str, np.ndarray]]]:
  """Each chunk's rows spread over the shards of its split; counts them and logs each day."""
  rows_per_day = config.rows_per_day()
  written = 0
  for day, columns, pending in rows_lib.iter_chunks_with_pending(config, world):
    split = output.TEST if config.is_test_day(day) else output.TRAIN
    for part in output.spread(columns, num_shards):
      yield split, part
    counter.add(split, columns, pending)
    written += len(columns[schema_lib.DAY])
    if written == sum(rows_per_day[: day + 1]):
      logging.info(
        "day %d/%d (%s): %d rows written, %.0f rows/s",
        day + 1,
        config.num_days,
        split,
        written,
        written / max(time.time() - start_time, 1e-9),
      )
