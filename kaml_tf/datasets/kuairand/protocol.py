"""The paper's protocol on the log rows: per-video targets and reports, the time split, sampling.

See "Ad tasks", "Labels", "Split" and "Negative sampling" in `conversion`. Every random draw
comes from its own stream of `SeedSequence(seed, spawn_key=...)`, so a video's draw depends on
the seed and its id only, and the sampling of a split on the seed and the split only.
"""

import dataclasses
import math
from typing import Dict, Tuple

import numpy as np

from kaml_tf.datasets import output
from kaml_tf.datasets.kuairand.config import ConversionError

# Spawn keys of the random streams: per video (followed by the video id), per split's sampling.
_VIDEO_STREAM = 0
_NEGATIVE_STREAM = 1


@dataclasses.dataclass(frozen=True)
class Labels:
  """The labels of the log rows under the per-video draws.

  Attributes:
    videos: (V,) int64 sorted distinct raw video ids.
    video_row: (n,) int64 index of each row's video in `videos`.
    video_target: (V,) int64 target action of each video, in [0, N).
    target: (n,) int64 target action of each row (its video's).
    reported: (n, N) bool, the actions each row's video reports.
    truth: (n, N) int64 feedbacks, the complete labels.
    labels: (n, N) int64 reported labels: `truth` where reported, 0 elsewhere.
  """

  videos: np.ndarray
  video_row: np.ndarray
  video_target: np.ndarray
  target: np.ndarray
  reported: np.ndarray
  truth: np.ndarray
  labels: np.ndarray


def label_rows(video_ids: np.ndarray, truth: np.ndarray, extra_reported: int, seed: int) -> Labels:
  """Draws each video's target and reported actions and labels its rows.

  Args:
    video_ids: (n,) int64 raw video id of each row.
    truth: (n, N) int64 0/1 feedbacks of the actions.
    extra_reported: K, reported actions besides the target.
    seed: The conversion seed.
  """
  videos, video_row = np.unique(video_ids, return_inverse=True)
  video_row = video_row.reshape(-1)
  video_target, video_reported = draw_reporting(videos, truth.shape[1], extra_reported, seed)
  reported = video_reported[video_row]
  return Labels(
    videos=videos,
    video_row=video_row,
    video_target=video_target,
    target=video_target[video_row],
    reported=reported,
    truth=truth,
    labels=truth * reported,
  )


def draw_reporting(
  video_ids: np.ndarray, num_actions: int, extra_reported: int, seed: int
) -> Tuple[np.ndarray, np.ndarray]:
  """Each video's target action and reported actions, from its own random stream.

  Video v takes a uniformly random order of the actions from `SeedSequence(seed,
  spawn_key=(0, v))`: the first is its target, the first 1 + `extra_reported` are reported.

  Args:
    video_ids: (videos,) int64 raw video ids (>= 0).
    num_actions: N.
    extra_reported: K, reported actions besides the target, in [0, N - 1].
    seed: The conversion seed.

  Returns:
    (target: (videos,) int64 in [0, N), reported: (videos, N) bool with 1 + K set per row,
    the target among them).
  """
  if not 0 <= extra_reported < num_actions:
    raise ValueError(f"extra_reported must be in [0, {num_actions - 1}], got {extra_reported}")
  target = np.zeros(len(video_ids), np.int64)
  reported = np.zeros((len(video_ids), num_actions), bool)
  for i, video in enumerate(np.asarray(video_ids).tolist()):
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_VIDEO_STREAM, video)))
    order = rng.permutation(num_actions)
    target[i] = order[0]
    reported[i, order[: 1 + extra_reported]] = True
  return target, reported


def split_by_time(time_ms: np.ndarray, test_fraction: float) -> Tuple[np.ndarray, int]:
  """The train / test split by timestamp (see "Split" in the module docstring).

  Args:
    time_ms: (rows,) int64 timestamps.
    test_fraction: Target share of test rows, in (0, 1).

  Returns:
    (is_test: (rows,) bool, the boundary t: test rows are those with time >= t).

  Raises:
    ConversionError: if a split would be empty (too few rows, or all at one timestamp).
  """
  n = time_ms.size
  cut = int(math.floor((1 - test_fraction) * n + 0.5))
  if cut >= n:
    raise ConversionError(f"test_fraction {test_fraction} of {n} row(s) leaves no test rows")
  boundary = int(np.sort(time_ms, kind="stable")[cut])
  is_test = time_ms >= boundary
  if is_test.all():
    raise ConversionError(
      f"no row is older than the split boundary time_ms {boundary}; the train split would be empty"
    )
  return is_test, boundary


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
    boundary_time_ms: The boundary t: test rows are those with time >= t.
    all_zero: (n,) bool, the rows whose feedbacks are all 0.
    keep: (n,) bool, the rows the negative sampling keeps.
    source_rows: `TRAIN` / `TEST` -> (rows,) int64 indices of the split's kept rows, in time
      order.
  """

  is_test: np.ndarray
  boundary_time_ms: int
  all_zero: np.ndarray
  keep: np.ndarray
  source_rows: Dict[str, np.ndarray]

  def split_of_row(self) -> np.ndarray:
    """(n,) the split name of every input row, kept or not."""
    return np.where(self.is_test, output.TEST, output.TRAIN)


def split_rows(
  time_ms: np.ndarray,
  truth: np.ndarray,
  test_fraction: float,
  keep_rate: float,
  sample_test: bool,
  seed: int,
) -> Split:
  """Splits the rows by time, then samples each split's all-zero rows.

  The split is made before the sampling, so it depends neither on the rate nor on the seed.

  Args:
    time_ms: (n,) int64 timestamps.
    truth: (n, N) 0/1 feedbacks of the actions.
    test_fraction: Target share of test rows, in (0, 1).
    keep_rate: Fraction of each sampled split's all-zero rows kept.
    sample_test: Whether the test split is sampled too.
    seed: The conversion seed.

  Raises:
    ConversionError: if a split would be empty.
  """
  is_test, boundary = split_by_time(time_ms, test_fraction)
  all_zero = truth.sum(axis=1) == 0
  keep = np.ones(time_ms.size, bool)
  for s, split in enumerate(output.SPLITS):
    if split == output.TEST and not sample_test:
      continue
    rows = np.flatnonzero(is_test == (split == output.TEST))
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_NEGATIVE_STREAM, s)))
    keep[rows] = sample_negatives(all_zero[rows], keep_rate, rng)
  order = np.argsort(time_ms, kind="stable")
  source_rows = {
    split: order[(is_test[order] == (split == output.TEST)) & keep[order]]
    for split in output.SPLITS
  }
  return Split(
    is_test=is_test,
    boundary_time_ms=boundary,
    all_zero=all_zero,
    keep=keep,
    source_rows=source_rows,
  )
