"""Groups (the ad tasks): their int64 `ad_task_id` and the key of their random stream.

A group's value is an int or a string. `ad_task_id` is the raw value when every group value
is an integer >= 0 (KuaiRand's video ids), else the index of the value among the sorted
distinct values (strings by code point, or integers when some are negative).

A group's stream key depends on its value only, never on the other groups of the table, so its
draw is the same in any table that holds it: `(0, v)` for an integer v >= 0 (the KuaiRand
conversion's key), `(2, length, bytes)` for a string (its UTF-8 bytes as one integer and their
length, so that no two strings share a key) and `(3, -v)` for a negative integer.
"""

from typing import Any, Tuple

import numpy as np

# First word of a stream key: 0 and 1 are the group draws and the negative sampling.
GROUP_STREAM = 0
STRING_GROUP_STREAM = 2
NEGATIVE_GROUP_STREAM = 3


def stream_key(value: Any) -> Tuple[int, ...]:
  """The `SeedSequence` spawn key of a group's draw (see the module docstring)."""
  if isinstance(value, (str, np.str_)):
    data = str(value).encode("utf-8")
    return (STRING_GROUP_STREAM, len(data), int.from_bytes(data, "big"))
  value = int(value)
  return (GROUP_STREAM, value) if value >= 0 else (NEGATIVE_GROUP_STREAM, -value)


def ad_task_ids(groups: np.ndarray, group_row: np.ndarray) -> np.ndarray:
  """Each row's `ad_task_id`.

  Args:
    groups: (G,) sorted distinct group values (int64, or str objects).
    group_row: (n,) int64 index of each row's group in `groups`.

  Returns:
    (n,) int64: the raw value when every group is an integer >= 0, else `group_row`.
  """
  if groups.dtype.kind in "iu" and (groups.size == 0 or groups.min() >= 0):
    return groups[group_row].astype(np.int64)
  return group_row.astype(np.int64)
