"""Which days a run day evaluates, trains and counts statistics on (the delay rule)."""

import dataclasses
from typing import Sequence, Tuple

from kaml_tf.daily import errors


@dataclasses.dataclass(frozen=True)
class DayPlan:
  """The days of run day D with label delay L (see `kaml_tf.daily`).

  Attributes:
    run_day: D, the newest day of logs.
    eval_day: C = D - L, the newest day whose labels are final.
    train_days: The days with logs among C - train_days .. C - 1, ascending.
    stats_end_day: C - 1: the last day the statistics count.
  """

  run_day: int
  eval_day: int
  train_days: Tuple[int, ...]
  stats_end_day: int


def plan_day(
  run_day: int, label_delay_days: int, train_days: int, available: Sequence[int]
) -> DayPlan:
  """The `DayPlan` of `run_day` given the days that have logs.

  Raises:
    errors.InputError: if the evaluation day has no logs, or no earlier day has.
  """
  eval_day = run_day - label_delay_days
  if eval_day not in available:
    raise errors.InputError(
      f"day {run_day} with label_delay_days={label_delay_days} evaluates on day {eval_day}, "
      f"which has no logs (days with logs: {list(available)})"
    )
  days = tuple(d for d in sorted(available) if eval_day - train_days <= d < eval_day)
  if not days:
    raise errors.InputError(
      f"no logs to train on: day {run_day} trains on days {eval_day - train_days}.."
      f"{eval_day - 1} (train_days={train_days}, label_delay_days={label_delay_days}), "
      f"and none has logs"
    )
  return DayPlan(run_day, eval_day, days, eval_day - 1)
