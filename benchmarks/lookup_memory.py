"""The `lookup_memory` section: resident bytes of the in-graph statistics joins per key.

Builds `stats.WindowCountsLookup` over `--lookup_keys` ad tasks (static statistics) and
`point_in_time.DailyCountsLookup` over `--lookup_keys` (ad task, day) rows (`--window_days`
days per task), each in a fresh child process, on synthetic statistics with the actions of
`--schema`, and reports the growth of the resident set from the statistics in memory to the
built lookup after one joined batch: the `StaticHashTable`, its key and value tensors, and
the counts matrix it gathers from. Every training worker holds one such join (it is built by
the input pipeline); BUILD.md "Scaling" extrapolates these figures linearly to larger tables.

  python -m pipelines.benchmark --sections=lookup_memory --schema=DIR/schema.json \
      --lookup_keys=1000000 --window_days=28 --output=bench.json
"""

import gc
import time
from typing import Any, Dict, List

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import numpy as np
import tensorflow as tf

from kaml_tf.data import point_in_time
from kaml_tf.data import stats as stats_lib

from benchmarks import inputs
from benchmarks import memory
from benchmarks.config import BenchmarkConfig

SECTION = "lookup_memory"
STATIC = "static"
DAILY = "daily"
_PROBE_ROWS = 5000


def synthetic_stats(kind: str, keys: int, actions: int, days: int) -> stats_lib.ConversionStats:
  """Statistics of `keys` rows: one per ad task (`STATIC`), or `days` per ad task (`DAILY`).

  Ids are spread (multiples of 7919, as hashed production ids are not consecutive); counts
  are small, as the values do not change the memory.
  """
  tasks = keys if kind == STATIC else -(-keys // days)
  ids = np.arange(1, tasks + 1, dtype=np.int64) * 7919
  daily = {}
  if kind == DAILY:
    ids = np.repeat(ids, days)[:keys]
    day = np.tile(np.arange(1, days + 1, dtype=np.int64), tasks)[:keys]
    daily = dict(days=day, lookback_days=days)
  counts = np.random.default_rng(0).integers(0, 5, size=(keys, actions + 1), dtype=np.int64)
  return stats_lib.ConversionStats(
    ad_task_ids=ids,
    counts=counts[:, 1:],
    clicks=counts[:, 0],
    actions=tuple(f"a{j}" for j in range(actions)),
    schema_fingerprint="synthetic",
    window_start=1,
    window_end=days,
    **daily,
  )


def measure(kind: str, keys: int, actions: int, days: int) -> Dict[str, Any]:
  """In this process: the resident bytes one lookup of `kind` adds over its statistics."""
  stats = synthetic_stats(kind, keys, actions, days)
  probe = [tf.constant(stats.ad_task_ids[:_PROBE_ROWS])]
  if stats.is_daily:
    probe.append(tf.constant(stats.days[:_PROBE_ROWS]))
  gc.collect()
  before, start = memory.rss_bytes(), time.perf_counter()
  join = stats_lib.WindowCountsLookup if kind == STATIC else point_in_time.DailyCountsLookup
  lookup = join(stats)
  counts, known = lookup(*probe)
  seconds = time.perf_counter() - start
  if not bool(tf.reduce_all(known)):
    raise RuntimeError(f"{SECTION}: the {kind} lookup lost keys it was built with")
  gc.collect()
  grown = memory.rss_bytes() - before
  return {
    "keys": keys,
    "actions": actions,
    "resident_bytes": grown,
    "bytes_per_key": grown / keys,
    # What the counts matrix alone takes: (keys + 1, actions) int64.
    "counts_matrix_bytes": (keys + 1) * actions * 8,
    "build_seconds": seconds,
    "probe_rows": int(counts.shape[0]),
  }


def run(config: BenchmarkConfig) -> Dict[str, Any]:
  """The section: each lookup built alone in a fresh child process.

  Returns:
    `{"static": figures, "daily": figures, "days_per_task"}`, figures as `measure` returns.
  """
  actions = len(inputs.load_schema(config, SECTION).actions)
  figures = {}
  for kind in (STATIC, DAILY):
    figures[kind], _ = memory.run_isolated(
      f"{__name__}:measure", kind, config.lookup_keys, actions, config.window_days
    )
  return figures | {"days_per_task": config.window_days}


def summary(result: Dict[str, Any]) -> List[str]:
  """One line per lookup."""
  return [
    "lookup_memory (%s): %d keys, %.0f MiB resident, %.0f bytes per key"
    % (kind, f["keys"], f["resident_bytes"] / 2**20, f["bytes_per_key"])
    for kind, f in ((k, result[k]) for k in (STATIC, DAILY))
  ]
