"""Delayed reporting: conversions that have happened but are not reported yet (step 9).

A reported conversion of action j (label_j = 1 after step 8) reaches the logs D_j days after
its click, with D_j ~ Geometric on {0, 1, 2, ...} of mean m_j = `report_delay_days[j]`
(P(D = k) = p (1 - p)^k, p = 1 / (1 + m_j); m_j = 0: at once). The logs are written on the
morning after `observed_through_day` (SimulationConfig.observed_day, O): a conversion of a
click on day d with d + D_j > O is pending, so its `label_j` is 0 while `true_label_j` keeps 1.
The newest days therefore carry the fewest reports, as in production logs read before their
conversions have all arrived.

The delays of chunk c of day d come from `SeedSequence(seed, spawn_key=(3, d, c))`, a stream
of their own: every other column is the same with or without delays, and with the default
(no delays) nothing is drawn, so every output byte is that of a simulation without them.
"""

from typing import Any, Dict, List, Mapping, Optional

import numpy as np

from kaml_tf import schema as schema_lib
from kaml_tf.datasets.simulation.config import ACTIONS
from kaml_tf.datasets.simulation.config import NUM_ACTIONS
from kaml_tf.datasets.simulation.config import SimulationConfig

_STREAM = 3


def draw_delays(config: SimulationConfig, day: int, chunk: int, n: int) -> np.ndarray:
  """(n, NUM_ACTIONS) int64 report delays in days of the rows of chunk `chunk` of day `day`."""
  rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(_STREAM, day, chunk)))
  p = 1.0 / (1.0 + np.asarray(config.report_delay_days, np.float64))
  # numpy's geometric counts trials (support 1, 2, ...); a delay counts the days before.
  return rng.geometric(p, size=(n, NUM_ACTIONS)).astype(np.int64) - 1


def withhold(columns: Dict[str, np.ndarray], delays: np.ndarray, observed_day: int) -> np.ndarray:
  """Zeroes, in place, the labels whose report arrives after `observed_day`.

  Args:
    columns: Rows keyed like the records: `day` (n,) and `label_<action>` (n,) int64.
    delays: (n, NUM_ACTIONS) int64 report delays (`draw_delays`).
    observed_day: The last day whose reports are in the logs.

  Returns:
    (n, NUM_ACTIONS) bool, the pending conversions: label 1 before, 0 now.
  """
  late = columns[schema_lib.DAY][:, None] + delays > observed_day
  pending = np.zeros(delays.shape, bool)
  for j, action in enumerate(ACTIONS):
    key = schema_lib.LABEL_PREFIX + action
    pending[:, j] = (columns[key] == 1) & late[:, j]
    columns[key] = np.where(pending[:, j], 0, columns[key]).astype(np.int64)
  return pending


class PendingCounter:
  """Per action and day: reported conversions (eventually) and those still pending."""

  def __init__(self, config: SimulationConfig):
    self._config = config
    self._positives = np.zeros((config.num_days, NUM_ACTIONS), np.int64)
    self._pending = np.zeros((config.num_days, NUM_ACTIONS), np.int64)

  def add(self, columns: Mapping[str, np.ndarray], pending: np.ndarray) -> None:
    """Counts rows after `withhold` (`pending`: its result, (n, NUM_ACTIONS) bool)."""
    day = columns[schema_lib.DAY]
    labels = np.stack([columns[schema_lib.LABEL_PREFIX + a] for a in ACTIONS], axis=1)
    np.add.at(self._positives, day, labels + pending)
    np.add.at(self._pending, day, pending.astype(np.int64))

  def report(self) -> Dict[str, Any]:
    """The `report_delay` section of `simulation.json`; lists are indexed by day.

    `pending_share[a][d]`: of the conversions of action a on clicks of day d that will be
    reported, the share not reported by `observed_through_day` (None: no such conversion).
    """

    def share(j: int) -> List[Optional[float]]:
      return [
        float(k / n) if n else None for k, n in zip(self._pending[:, j], self._positives[:, j])
      ]

    return {
      "mean_delay_days": dict(zip(ACTIONS, self._config.report_delay_days)),
      "observed_through_day": self._config.observed_day,
      "reported_positives": {a: self._positives[:, j].tolist() for j, a in enumerate(ACTIONS)},
      "pending": {a: self._pending[:, j].tolist() for j, a in enumerate(ACTIONS)},
      "pending_share": {a: share(j) for j, a in enumerate(ACTIONS)},
    }
