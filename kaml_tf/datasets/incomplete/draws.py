"""Each group's target and reported actions, and the labels of its rows.

Group g takes a uniformly random order of the N actions from `SeedSequence(seed,
spawn_key=groups.stream_key(g))`: the first is its target action, the first 1 + K are the
actions it reports. `true_label_<a>` keeps the complete label; `label_<a>` equals it for an
action the group reports and is 0 otherwise (the advertiser did not send it back).
"""

import dataclasses
from typing import Tuple

import numpy as np

from kaml_tf.datasets.incomplete import groups as groups_lib


@dataclasses.dataclass(frozen=True)
class Labels:
  """The labels of the rows under the per-group draws.

  Attributes:
    groups: (G,) sorted distinct group values.
    group_row: (n,) int64 index of each row's group in `groups`.
    group_target: (G,) int64 target action of each group, in [0, N).
    target: (n,) int64 target action of each row (its group's).
    reported: (n, N) bool, the actions each row's group reports.
    truth: (n, N) int64 complete labels.
    labels: (n, N) int64 reported labels: `truth` where reported, 0 elsewhere.
  """

  groups: np.ndarray
  group_row: np.ndarray
  group_target: np.ndarray
  target: np.ndarray
  reported: np.ndarray
  truth: np.ndarray
  labels: np.ndarray


def draw_reporting(
  groups: np.ndarray, num_actions: int, extra_reported: int, seed: int
) -> Tuple[np.ndarray, np.ndarray]:
  """Each group's target action and reported actions, from its own random stream.

  Args:
    groups: (G,) group values (ints or strings).
    num_actions: N.
    extra_reported: K, reported actions besides the target, in [0, N - 1].
    seed: The protocol's seed (>= 0).

  Returns:
    (target: (G,) int64 in [0, N), reported: (G, N) bool with 1 + K set per row, the target
    among them).
  """
  if not 0 <= extra_reported < num_actions:
    raise ValueError(f"extra_reported must be in [0, {num_actions - 1}], got {extra_reported}")
  target = np.zeros(len(groups), np.int64)
  reported = np.zeros((len(groups), num_actions), bool)
  for i, group in enumerate(np.asarray(groups).tolist()):
    key = groups_lib.stream_key(group)
    order = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key)).permutation(
      num_actions
    )
    target[i] = order[0]
    reported[i, order[: 1 + extra_reported]] = True
  return target, reported


def label_rows(
  group_values: np.ndarray, truth: np.ndarray, extra_reported: int, seed: int
) -> Labels:
  """Draws each group's target and reported actions and labels its rows.

  Args:
    group_values: (n,) group value of each row: int64, or str objects.
    truth: (n, N) int64 0/1 complete labels.
    extra_reported: K.
    seed: The protocol's seed.
  """
  groups, group_row = np.unique(group_values, return_inverse=True)
  group_row = group_row.reshape(-1).astype(np.int64)
  group_target, group_reported = draw_reporting(groups, truth.shape[1], extra_reported, seed)
  reported = group_reported[group_row]
  return Labels(
    groups=groups,
    group_row=group_row,
    group_target=group_target,
    target=group_target[group_row],
    reported=reported,
    truth=truth,
    labels=truth * reported,
  )
