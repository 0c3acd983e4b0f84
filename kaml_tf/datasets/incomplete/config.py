"""What the incomplete logs depend on: `IncompleteConfig` and its checks.

`TEST_FRACTION` and `NEGATIVE_KEEP_RATE` are shared with the KuaiRand conversion, which is one
use of this protocol: one declaration, so that both jobs' flags agree.
"""

import dataclasses
import functools
from typing import Any, Dict, Mapping, Optional, Tuple

from kaml_tf import configs
from kaml_tf.datasets import fields
from kaml_tf.datasets.incomplete import days


def test_fraction_field() -> Any:
  return fields.field(
    0.2, "Share of the rows in the test split: the latest ones when split by time."
  )


def negative_keep_rate_field() -> Any:
  return fields.field(
    1.0, "Fraction of the rows whose labels are all 0 kept in each split (1: keep all)."
  )


@dataclasses.dataclass(frozen=True)
class IncompleteConfig:
  """Everything the incomplete logs depend on (see `kaml_tf.datasets.incomplete`)."""

  input_path: str = fields.field(
    dataclasses.MISSING,
    "The input table: Parquet (.parquet) or CSV / TSV with a header (.gz allowed).",
    flag="input",
  )
  labels: Tuple[str, ...] = fields.field(
    dataclasses.MISSING, "The 0/1 label columns, in action order; each becomes an action."
  )
  group: str = fields.field(
    dataclasses.MISSING, "The group column (ints or strings): each group is an ad task."
  )
  reported_extra: int = fields.field(
    dataclasses.MISSING, "K: labels each group reports besides its random target, in [0, N-1]."
  )
  time: Optional[str] = fields.field(
    None, "The time column: split by time and days from it (default: a random split)."
  )
  time_unit: str = fields.field(
    "s",
    "Unit of a numeric --time column (timestamps and dates carry theirs).",
    choices=tuple(days.TIME_UNITS),
  )
  seed: int = fields.field(0, "Seed of the per-group draws, the random split and the sampling.")
  test_fraction: float = test_fraction_field()
  negative_keep_rate: float = negative_keep_rate_field()
  pseudo_days: int = fields.field(
    28,
    "Without --time: train pseudo-days P (test rows get day P); 28 is the statistics "
    "window's default, so that the window covers every train row.",
  )

  def __post_init__(self):
    object.__setattr__(self, "labels", tuple(self.labels))
    _validate_config(self)

  @property
  def num_actions(self) -> int:
    return len(self.labels)

  def to_dict(self) -> Dict[str, Any]:
    return configs.to_dict(self)

  @classmethod
  def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> "IncompleteConfig":
    return configs.from_dict(cls, data, source)


def _validate_config(c: IncompleteConfig) -> None:
  """Raises ValueError starting with the field name and quoting the bad value."""
  check = functools.partial(fields.require, c)
  for name in ("input_path", "group"):
    value = getattr(c, name)
    check(isinstance(value, str) and bool(value), name, "must be a non-empty name")
  check(len(c.labels) >= 1 and all(c.labels), "labels", "needs at least one column name")
  check(len(set(c.labels)) == len(c.labels), "labels", "must not repeat a column")
  check(c.group not in c.labels, "group", "must not be a label column")
  check(
    c.time is None or (c.time and c.time not in c.labels + (c.group,)),
    "time",
    "must be another column than the labels and the group",
  )
  check(
    fields.is_int(c.reported_extra) and 0 <= c.reported_extra <= len(c.labels) - 1,
    "reported_extra",
    f"must be an integer in [0, {len(c.labels) - 1}] (the labels besides the target)",
  )
  check(c.time_unit in days.TIME_UNITS, "time_unit", f"must be one of {list(days.TIME_UNITS)}")
  check(fields.is_int(c.seed) and c.seed >= 0, "seed", "must be an integer >= 0")
  check(
    fields.is_number(c.test_fraction) and 0 < c.test_fraction < 1,
    "test_fraction",
    "must be a number in (0, 1)",
  )
  check(
    fields.is_number(c.negative_keep_rate) and 0 <= c.negative_keep_rate <= 1,
    "negative_keep_rate",
    "must be a number in [0, 1]",
  )
  check(
    fields.is_int(c.pseudo_days) and c.pseudo_days >= 1, "pseudo_days", "must be an integer >= 1"
  )
