"""A world that changes on one day: ad tasks launched mid-run, and reporting that switches.

Production logs drift: new ad tasks appear, and advertisers start or stop reporting actions.
With `drift_day` = D >= 0 the simulation's world changes on day D (off by default):

* New ad tasks. In each target group, the share `new_task_share` of the group's tasks (rounded
  down, never all of them) has no traffic before day D: before D, a row's task is drawn among
  the group's other tasks, with their probabilities renormalised; from D on, from all of them.
  A new task keeps the effects, category and app the world drew for it.
* Reporting switches. Each (ad task, non-target action) pair flips, with probability
  `report_switch_share`, on day D: an action the task reported (completely or partially) stops
  being reported, and one it did not report starts being reported completely. A target action
  stays reported.

The conversions themselves (the true labels) follow the same model before and after D; only
who gets traffic and what is reported change. The random effects are centred on the traffic of
the whole world (`world.build_world`), as without drift.

Every draw comes from its own stream, `SeedSequence(seed, spawn_key=(4,))`, and the rows use
the same row streams with or without drift: with `drift_day` = -1 every output byte is that of
a simulation without this module.
"""

import dataclasses
from typing import Optional, Sequence

import numpy as np

from kaml_tf.datasets.simulation import sampling
from kaml_tf.datasets.simulation.config import SimulationConfig

_SPAWN_KEY = (4,)


@dataclasses.dataclass(frozen=True)
class Drift:
  """What changes on `day`.

  Attributes:
    day: D, the first day of the changed world.
    new_tasks: (K,) bool, tasks with no traffic before D.
    early_task_sampler: Draws a group's task before D (new tasks left out).
    report_rate_after: (K, N) the reporting rates r_ej from D on.
  """

  day: int
  new_tasks: np.ndarray
  early_task_sampler: sampling.GroupedSampler
  report_rate_after: np.ndarray

  def task_sampler(self, day: int, sampler: sampling.GroupedSampler) -> sampling.GroupedSampler:
    """The task sampler of `day`: `sampler` (the whole world's) from D on."""
    return sampler if day >= self.day else self.early_task_sampler

  def report_rate(self, day: int, report_rate: np.ndarray) -> np.ndarray:
    """The (K, N) reporting rates of `day`: `report_rate` (the world's) before D."""
    return self.report_rate_after if day >= self.day else report_rate

  def summary(self, report_rate: np.ndarray) -> dict:
    """The drift's figures for simulation.json: tasks launched, pairs switched on and off."""
    before, after = report_rate > 0, self.report_rate_after > 0
    return {
      "drift_day": self.day,
      "new_ad_tasks": int(self.new_tasks.sum()),
      "report_pairs_switched_on": int(np.sum(after & ~before)),
      "report_pairs_switched_off": int(np.sum(before & ~after)),
    }


def draw(
  config: SimulationConfig,
  group_tasks: Sequence[np.ndarray],
  group_task_probs: Sequence[np.ndarray],
  report_rate: np.ndarray,
  task_target: np.ndarray,
) -> Optional[Drift]:
  """The world's drift, or None with `drift_day` = -1.

  Args:
    config: The simulation's settings (`drift_day`, `new_task_share`, `report_switch_share`).
    group_tasks: Per target group, its task ids (in the order of `group_task_probs`).
    group_task_probs: Per target group, P(task | group) of those tasks.
    report_rate: (K, N) the reporting rates before D.
    task_target: (K,) each task's target action, -1 for none.
  """
  if config.drift_day < 0:
    return None
  rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=_SPAWN_KEY))
  new_tasks = np.zeros(len(task_target), bool)
  early_tasks, early_probs = [], []
  for tasks, probs in zip(group_tasks, group_task_probs):
    late = rng.permutation(tasks.size)[
      : min(int(config.new_task_share * tasks.size), tasks.size - 1)
    ]
    keep = np.ones(tasks.size, bool)
    keep[late] = False
    new_tasks[tasks[~keep]] = True
    early_tasks.append(tasks[keep])
    early_probs.append(probs[keep] / probs[keep].sum() if keep.any() else probs[keep])
  flip = rng.random(report_rate.shape) < config.report_switch_share
  targeted = task_target >= 0
  flip[np.flatnonzero(targeted), task_target[targeted]] = False
  after = np.where(flip, np.where(report_rate > 0, 0.0, 1.0), report_rate)
  return Drift(
    day=config.drift_day,
    new_tasks=new_tasks,
    early_task_sampler=sampling.GroupedSampler.build(early_tasks, early_probs),
    report_rate_after=after,
  )
