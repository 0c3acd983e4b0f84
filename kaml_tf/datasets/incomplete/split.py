"""The train / test split, by time or at random, and the negative sampling of each split.

By time: rows are ordered by their time; the boundary t is the time of the row at position
cut = round((1 - test_fraction) * n) (half up) in that order; train holds the rows before t,
test the rows at or after t, so rows with the same time never straddle the split.

At random: the rows take the ranks of a uniformly random permutation from
`SeedSequence(seed, spawn_key=(4,))` as their time, and are split by it as above: exactly
n - cut rows are test rows, drawn uniformly, and each split is written in rank order.

Negative sampling: a row is all-zero when every complete label is 0. In each sampled split
exactly round(keep_rate * count) of its all-zero rows are kept (half up), drawn uniformly
without replacement from `SeedSequence(seed, spawn_key=(1, split))` (0 train, 1 test). The
split is made before the sampling, so it depends neither on the rate nor on the seed.
"""

import dataclasses
import math
from typing import Any, Dict, Tuple

import numpy as np

from kaml_tf.datasets import output
from kaml_tf.datasets.incomplete.errors import ConversionError

# Spawn keys of the random streams (the group draws use 0, 2 and 3: see `groups`).
NEGATIVE_STREAM = 1
RANDOM_SPLIT_STREAM = 4


def train_rows(n: int, test_fraction: float) -> int:
  """cut = round((1 - test_fraction) * n), half up: the number of rows before the boundary."""
  return int(math.floor((1 - test_fraction) * n + 0.5))


def split_by_time(times: np.ndarray, test_fraction: float) -> Tuple[np.ndarray, Any]:
  """The train / test split by time (see the module docstring).

  Args:
    times: (n,) int64 or float64 times.
    test_fraction: Target share of test rows, in (0, 1).

  Returns:
    (is_test: (n,) bool, the boundary t as a Python number: test rows have time >= t).

  Raises:
    ConversionError: if a split would be empty (too few rows, or all at one time).
  """
  n = times.size
  cut = train_rows(n, test_fraction)
  if cut >= n:
    raise ConversionError(f"test_fraction {test_fraction} of {n} row(s) leaves no test rows")
  boundary = np.sort(times, kind="stable")[cut].item()
  is_test = times >= boundary
  if is_test.all():
    raise ConversionError(
      f"no row is older than the split boundary time {boundary}; the train split would be empty"
    )
  return is_test, boundary


def random_ranks(n: int, seed: int) -> np.ndarray:
  """(n,) int64 rank of each row in a uniformly random order (the random split's time)."""
  rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(RANDOM_SPLIT_STREAM,)))
  ranks = np.empty(n, np.int64)
  ranks[rng.permutation(n)] = np.arange(n, dtype=np.int64)
  return ranks


def sample_negatives(
  all_zero: np.ndarray, keep_rate: float, rng: np.random.Generator
) -> np.ndarray:
  """Keeps every row with a positive and round(keep_rate * count) of the all-zero rows.

  Args:
    all_zero: (rows,) bool, rows whose labels are all 0.
    keep_rate: Fraction of them kept, in [0, 1]; the count is rounded half up.
    rng: Source of the uniform draw without replacement.

  Returns:
    (rows,) bool, the rows kept.
  """
  candidates = np.flatnonzero(all_zero)
  count = int(math.floor(keep_rate * candidates.size + 0.5))
  keep = ~all_zero
  keep[candidates[rng.choice(candidates.size, size=count, replace=False)]] = True
  return keep


@dataclasses.dataclass(frozen=True)
class Split:
  """Which rows go to which split, after the negative sampling.

  Attributes:
    is_test: (n,) bool, the rows at or after the boundary.
    boundary: The boundary t: test rows are those with time >= t.
    all_zero: (n,) bool, the rows whose complete labels are all 0.
    keep: (n,) bool, the rows the negative sampling keeps.
    source_rows: `TRAIN` / `TEST` -> (rows,) int64 indices of the split's kept rows, in time
      order.
  """

  is_test: np.ndarray
  boundary: Any
  all_zero: np.ndarray
  keep: np.ndarray
  source_rows: Dict[str, np.ndarray]

  def split_of_row(self) -> np.ndarray:
    """(n,) the split name of every input row, kept or not."""
    return np.where(self.is_test, output.TEST, output.TRAIN)


def split_rows(
  times: np.ndarray,
  truth: np.ndarray,
  test_fraction: float,
  keep_rate: float,
  sample_test: bool,
  seed: int,
) -> Split:
  """Splits the rows by time, then samples each split's all-zero rows.

  Args:
    times: (n,) times (`random_ranks` for the random split).
    truth: (n, N) 0/1 complete labels.
    test_fraction: Target share of test rows, in (0, 1).
    keep_rate: Fraction of each sampled split's all-zero rows kept.
    sample_test: Whether the test split is sampled too.
    seed: The protocol's seed.

  Raises:
    ConversionError: if a split would be empty.
  """
  is_test, boundary = split_by_time(times, test_fraction)
  all_zero = truth.sum(axis=1) == 0
  keep = np.ones(times.size, bool)
  for s, split in enumerate(output.SPLITS):
    if split == output.TEST and not sample_test:
      continue
    rows = np.flatnonzero(is_test == (split == output.TEST))
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(NEGATIVE_STREAM, s)))
    keep[rows] = sample_negatives(all_zero[rows], keep_rate, rng)
  order = np.argsort(times, kind="stable")
  source_rows = {
    split: order[(is_test[order] == (split == output.TEST)) & keep[order]]
    for split in output.SPLITS
  }
  return Split(
    is_test=is_test, boundary=boundary, all_zero=all_zero, keep=keep, source_rows=source_rows
  )
