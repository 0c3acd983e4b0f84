"""What the simulated logs depend on: `SimulationConfig`, its checks, the actions and groups.

The generative model each field enters is described in `simulator` (steps 1-8).
"""

import dataclasses
import functools
from typing import Any, Dict, List, Mapping, Tuple

from kaml_tf import configs
from kaml_tf.datasets import fields

ACTIONS = ("activation", "re_engagement", "registration", "payment", "retention")
ACTIVATION, RE_ENGAGEMENT, REGISTRATION, PAYMENT, RETENTION = range(len(ACTIONS))
NUM_ACTIONS = len(ACTIONS)
OTHER_GROUP = NUM_ACTIONS  # Index of the "Other" target group in per-group arrays.
NUM_GROUPS = NUM_ACTIONS + 1
GROUP_NAMES = ACTIONS + ("other",)

# Table 1, "Base" row: share of samples per target action A..E, then "Other".
TABLE1_TARGET_SHARES = (0.6908, 0.0526, 0.0992, 0.1148, 0.0056, 0.0370)


@dataclasses.dataclass(frozen=True)
class SimulationConfig:
  """Everything the generated logs depend on (see `simulator` for the model)."""

  seed: int = fields.field(0, "Seed of the world and of every row (same seed -> same bytes).")
  num_rows: int = fields.field(200_000, "Rows in total, train window plus test days.")
  train_days: int = fields.field(28, "Days in the train window (the paper: four weeks).")
  test_days: int = fields.field(1, "Days after the window written as the test split.")
  test_rows_per_day: int = fields.field(
    0,
    "Rows of each test day (0: its even share of num_rows). The train days keep their share "
    "of num_rows, so a larger test split leaves the train split unchanged (each day's rows "
    "come from a random stream of their own).",
  )
  chunk_rows: int = fields.field(100_000, "Rows generated at once (bounds memory).")
  target_shares: Tuple[float, ...] = fields.field(
    TABLE1_TARGET_SHARES,
    "Share of samples per target action, in ACTIONS order then 'Other' (Table 1).",
  )
  num_ad_tasks: int = fields.field(2000, "Ad tasks, split over target groups like target_shares.")
  ad_task_zipf: float = fields.field(0.9, "Zipf exponent of ad-task popularity within a group.")
  ads_per_task: int = fields.field(5, "Creatives (ad ids) per ad task.")
  num_apps: int = fields.field(1000, "Promoted apps.")
  num_advertisers: int = fields.field(400, "Advertisers; each app belongs to one.")
  num_categories: int = fields.field(40, "App categories.")
  category_zipf: float = fields.field(
    1.0, "Zipf exponent of a group's preference over categories (own order per group)."
  )
  num_users: int = fields.field(100_000, "Users.")
  user_zipf: float = fields.field(0.6, "Zipf exponent of user activity.")
  num_slots: int = fields.field(200, "Ad slots.")
  slot_zipf: float = fields.field(1.0, "Zipf exponent of slot traffic.")
  report_complete_prob: Tuple[float, ...] = fields.field(
    (0.70, 0.02, 0.10, 0.15, 0.37),
    "Per action: probability that a task not targeting it reports it completely.",
  )
  report_partial_prob: Tuple[float, ...] = fields.field(
    (0.25, 0.01, 0.05, 0.07, 0.16),
    "Per action: probability that a task not targeting it reports it partially.",
  )
  partial_fraction_min: float = fields.field(
    0.1, "Lowest fraction of conversions a partially reporting task reports."
  )
  partial_fraction_max: float = fields.field(
    0.6, "Highest fraction of conversions a partially reporting task reports."
  )
  base_logits: Tuple[float, ...] = fields.field(
    (-3.1, -3.8, -2.7, -3.1, -4.0),
    "Per action: base conversion logit (re_engagement, registration, payment and retention "
    "conditional on their funnel prerequisite).",
  )
  target_boost: float = fields.field(
    0.8, "Logit added to action j on traffic of tasks targeting j (their base rates differ)."
  )
  user_shift: float = fields.field(
    1.0, "Strength of the tilt of each target group's user population (feature shift)."
  )
  funnel_leak: float = fields.field(
    0.05, "Probability factor of a deeper action without its funnel prerequisite."
  )
  user_effect_std: float = fields.field(1.0, "Std of the user effect on each action's logit.")
  interaction_std: float = fields.field(0.8, "Std of the user x category interest effect.")
  category_effect_std: float = fields.field(0.3, "Std of the category effect per action.")
  ad_task_effect_std: float = fields.field(0.4, "Std of the ad-task effect per action.")
  ad_effect_std: float = fields.field(0.2, "Logit per unit of creative quality q_a.")
  context_effect_std: float = fields.field(0.15, "Std of each context / attribute id's effect.")
  session_effect: float = fields.field(0.3, "Logit per unit of the session latent xi.")
  interest_tags: int = fields.field(
    0,
    "Most interest tags per user (a multi-valued feature, interest_tags.py); 0 leaves it out.",
  )
  report_delay_days: Tuple[float, ...] = fields.field(
    (),
    "Per action: mean days from a click to the report of its conversion (geometric integer "
    "delays, delays.py); empty: every conversion is reported at once.",
  )
  observed_through_day: int = fields.field(
    -1,
    "Last day whose reports the logs hold: a conversion whose click day + delay is later is "
    "still 0 in label_<action> (true_label_<action> keeps it); -1: the last simulated day.",
  )

  drift_day: int = fields.field(
    -1,
    "First day of a drifted world (drift.py): new ad tasks get traffic and reporting switches; "
    "-1: no drift.",
  )
  new_task_share: float = fields.field(
    0.0, "With drift_day: share of each group's ad tasks with no traffic before drift_day."
  )
  report_switch_share: float = fields.field(
    0.0,
    "With drift_day: share of (ad task, non-target action) pairs whose reporting flips on "
    "drift_day (reported -> not reported, not reported -> complete).",
  )

  def __post_init__(self):
    for f in dataclasses.fields(self):
      if isinstance(f.default, tuple):
        value = getattr(self, f.name)
        try:
          object.__setattr__(self, f.name, tuple(float(v) for v in value))
        except (TypeError, ValueError):
          raise ValueError(f"{f.name}: expected a list of numbers, got {value!r}") from None
    _validate_config(self)

  @property
  def num_days(self) -> int:
    return self.train_days + self.test_days

  @property
  def observed_day(self) -> int:
    """The last day whose reports have arrived (`observed_through_day`, -1: the last day)."""
    return self.num_days - 1 if self.observed_through_day == -1 else self.observed_through_day

  def is_test_day(self, day: int) -> bool:
    return day >= self.train_days

  def rows_per_day(self) -> List[int]:
    """Rows of each day: `num_rows` spread evenly, earlier days taking the remainder; test
    days take `test_rows_per_day` instead when it is set."""
    base, extra = divmod(self.num_rows, self.num_days)
    even = [base + (1 if d < extra else 0) for d in range(self.num_days)]
    if not self.test_rows_per_day:
      return even
    return even[: self.train_days] + [self.test_rows_per_day] * self.test_days

  @property
  def total_rows(self) -> int:
    """Rows written in all: `num_rows`, or more (or fewer) with `test_rows_per_day`."""
    return sum(self.rows_per_day())

  def to_dict(self) -> Dict[str, Any]:
    data = configs.to_dict(self)
    # Defaults of later fields are left out: the form of configs that predate them.
    if not self.interest_tags:
      del data["interest_tags"]
    if not self.report_delay_days:
      del data["report_delay_days"]
    if self.observed_through_day == -1:
      del data["observed_through_day"]
    if not self.test_rows_per_day:
      del data["test_rows_per_day"]
    if self.drift_day == -1:
      for name in ("drift_day", "new_task_share", "report_switch_share"):
        del data[name]
    return data

  @classmethod
  def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> "SimulationConfig":
    return configs.from_dict(cls, data, source)


def _validate_config(c: SimulationConfig) -> None:
  """Raises ValueError naming the field and quoting the bad value."""
  check = functools.partial(fields.require, c)

  for name in (
    "num_rows",
    "train_days",
    "test_days",
    "chunk_rows",
    "num_ad_tasks",
    "ads_per_task",
    "num_apps",
    "num_advertisers",
    "num_categories",
    "num_users",
    "num_slots",
  ):
    value = getattr(c, name)
    check(fields.is_int(value) and value >= 1, name, "must be an integer >= 1")
  check(fields.is_int(c.seed) and c.seed >= 0, "seed", "must be an integer >= 0")
  check(
    fields.is_int(c.test_rows_per_day) and c.test_rows_per_day >= 0,
    "test_rows_per_day",
    "must be an integer >= 0 (0: the test days' even share of num_rows)",
  )
  check(
    fields.is_int(c.interest_tags) and (c.interest_tags == 0 or c.interest_tags >= 2),
    "interest_tags",
    "must be 0 (no tags) or an integer >= 2 (a list of tags)",
  )
  check(
    c.num_rows >= c.num_days,
    "num_rows",
    f"must be at least train_days + test_days = {c.num_days} (one row a day)",
  )
  check(
    len(c.target_shares) == NUM_GROUPS,
    "target_shares",
    f"needs {NUM_GROUPS} values ({', '.join(GROUP_NAMES)})",
  )
  check(
    all(s >= 0 for s in c.target_shares) and abs(sum(c.target_shares) - 1) < 1e-6,
    "target_shares",
    "must be non-negative and sum to 1",
  )
  check(
    c.num_ad_tasks >= sum(s > 0 for s in c.target_shares),
    "num_ad_tasks",
    "needs one task per target group of positive share at least",
  )
  check(
    c.num_apps >= c.num_categories,
    "num_apps",
    f"must be at least num_categories = {c.num_categories} (one app per category)",
  )
  check(
    len(c.report_delay_days) in (0, NUM_ACTIONS),
    "report_delay_days",
    f"needs {NUM_ACTIONS} values, one per action of {ACTIONS}, or none (no delay)",
  )
  check(all(m >= 0 for m in c.report_delay_days), "report_delay_days", "must be >= 0 days")
  check(
    fields.is_int(c.observed_through_day) and c.observed_through_day >= -1,
    "observed_through_day",
    "must be a day >= 0, or -1 (the last simulated day)",
  )
  check(
    fields.is_int(c.drift_day) and c.drift_day >= -1,
    "drift_day",
    "must be a day >= 0, or -1 (no drift)",
  )
  for name in ("new_task_share", "report_switch_share"):
    check(0 <= getattr(c, name) <= 1, name, "must be in [0, 1]")
    check(
      c.drift_day >= 0 or getattr(c, name) == 0,
      name,
      "needs drift_day (the day it happens); set --drift_day",
    )
  for name in ("report_complete_prob", "report_partial_prob", "base_logits"):
    check(
      len(getattr(c, name)) == NUM_ACTIONS,
      name,
      f"needs {NUM_ACTIONS} values, one per action of {ACTIONS}",
    )
  for name in ("report_complete_prob", "report_partial_prob"):
    check(all(0 <= p <= 1 for p in getattr(c, name)), name, "must be probabilities in [0, 1]")
  check(
    all(a + b <= 1 + 1e-9 for a, b in zip(c.report_complete_prob, c.report_partial_prob)),
    "report_partial_prob",
    "plus report_complete_prob must be <= 1 for every action",
  )
  check(
    0 < c.partial_fraction_min <= c.partial_fraction_max <= 1,
    "partial_fraction_min",
    f"must satisfy 0 < partial_fraction_min <= partial_fraction_max "
    f"(= {c.partial_fraction_max}) <= 1",
  )
  check(0 <= c.funnel_leak <= 1, "funnel_leak", "must be in [0, 1]")
  for name in (
    "ad_task_zipf",
    "category_zipf",
    "user_zipf",
    "slot_zipf",
    "user_shift",
    "user_effect_std",
    "interaction_std",
    "category_effect_std",
    "ad_task_effect_std",
    "ad_effect_std",
    "context_effect_std",
  ):
    check(getattr(c, name) >= 0, name, "must be >= 0")
