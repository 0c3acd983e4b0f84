"""The training shuffle: the file order, then permuted windows of parsed records.

A training pipeline shuffles twice. The order of its files is shuffled on every pass
(`shuffle_files`); then each window of `shuffle_buffer` records, parsed at once into columns,
is permuted uniformly and cut into batches (`permuted_batches`).

Why windows and not `Dataset.shuffle`: tf.data moves every element through its stages one by
one, and on a 2-core trainer a per-record stage costs as much CPU as the model's own step; a
record-by-record shuffle buffer cost several times the CPU of permuting a parsed window
(measured: docs/results/timings/input.md). A window permutation mixes every record of a
window with every other one, as a buffer of that size does on average; it never mixes records
of different windows, which a sliding buffer does a little (its tail). Each epoch is still a
permutation of the records, and a seed makes it reproducible.
"""

from typing import Dict, Optional

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf import schema as schema_lib

Columns = Dict[str, tf.Tensor]


def shuffle_files(files: tf.data.Dataset, num_files: int, seed: Optional[int]) -> tf.data.Dataset:
  """The elements of `files` (one per file) in a new random order on every pass."""
  return files.shuffle(num_files, seed=seed, reshuffle_each_iteration=True)


def permute(columns: Columns, seed: tf.Tensor) -> Columns:
  """The rows of `{field: (n,)}` in the random order of the (2,) int64 stateless `seed`."""
  n = tf.shape(columns[schema_lib.TARGET_ACTION])[0]
  order = tf.random.experimental.stateless_shuffle(tf.range(n), seed)
  return {k: tf.gather(v, order) for k, v in columns.items()}


def permuted_batches(
  windows: tf.data.Dataset,
  batch_size: int,
  seed: Optional[int],
  drop_remainder: bool,
  deterministic: bool,
) -> tf.data.Dataset:
  """Windows of `{field: (n,)}` columns -> `batch_size` batches of each window's rows, permuted.

  Every window gets its own permutation, drawn from `seed` and, through `Dataset.random`, a new
  stream on every pass over the dataset. A batch holds rows of one window, except when the
  window size is not a multiple of `batch_size`: a window's last rows are then completed from
  the next window.

  Args:
    windows: Datasets of `{field: (n,)}` columns holding `schema.TARGET_ACTION`.
    batch_size: Rows per yielded batch.
    seed: The shuffle seed; None draws a new order every run.
    drop_remainder: Drop the last partial batch.
    deterministic: Keep the order of the parallel permutations.
  """
  seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
  windows = tf.data.Dataset.zip((windows, seeds.batch(2)))
  windows = windows.map(permute, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
  return windows.rebatch(batch_size, drop_remainder=drop_remainder)
