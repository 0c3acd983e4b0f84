"""Keeping the rows of some days: what a training run holding out its last days reads.

`days=(first, last)` (from `days.hold_out_last`) keeps the rows whose `day` lies in
[first, last], inclusive. The filter runs on parsed columns, so batches shrink; the pipeline
cuts the rows left into full batches again.
"""

from typing import Dict, Tuple

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf import schema as schema_lib

Columns = Dict[str, tf.Tensor]


def in_days(columns: Columns, days: Tuple[int, int]) -> Columns:
  """The rows of `{field: (n,)}` whose `day` lies in [first, last]."""
  day = columns[schema_lib.DAY]
  keep = (day >= days[0]) & (day <= days[1])
  return {k: tf.boolean_mask(v, keep) for k, v in columns.items()}


def keep_days(
  batches: tf.data.Dataset, days: Tuple[int, int], deterministic: bool
) -> tf.data.Dataset:
  """Batches of `{field: (n,)}` columns (with `day`) -> their rows in `days`, empty ones dropped.

  Args:
    batches: Parsed columns, each holding `schema.DAY`.
    days: (first, last), inclusive.
    deterministic: Keep the order of the parallel filters.
  """
  kept = batches.map(
    lambda columns: in_days(columns, days),
    num_parallel_calls=tf.data.AUTOTUNE,
    deterministic=deterministic,
  )
  return kept.filter(lambda columns: tf.size(columns[schema_lib.DAY]) > 0)
