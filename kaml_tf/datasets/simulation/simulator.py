"""Simulated post-click app-promotion logs with incomplete, skewed multi-label conversions.

The paper's production logs cannot be shared, so this module generates logs with the phenomena
KAML is about (paper sections 1-3): five funnel-correlated conversion actions, ad tasks whose
target action follows Table 1's skew, advertisers that report only some non-target actions,
and target groups whose traffic differs. Every knob is a `SimulationConfig` field (in
`backticks` below) and a flag of `pipelines/simulate.py`.

Generative model. N = 5 actions j in `ACTIONS` (the paper's A..E); target groups g = 0..4 are
the actions and g = 5 is "Other" (`target_action = -1`). Everything in 1-3 is drawn once per
seed (the "world"); rows are then drawn day by day, each chunk from its own seeded stream.

1. Ad tasks. `num_ad_tasks` tasks are split over the six groups in proportion to
   `target_shares` (largest remainder, at least one task per group of positive share); task ids
   are a random permutation. A task of group g gets a category c with
   P_g(c) ∝ (1 + rank_g(c))^-`category_zipf` (rank_g: the group's own random order, so groups
   promote different kinds of apps), an app uniform among that category's apps, the app's
   advertiser, a log-bid BID_g + 0.4 eta_e (deeper targets bid more, eta_e ~ N(0, 1)), an
   effect T_ej ~ N(0, `ad_task_effect_std`^2) and `ads_per_task` creatives (ad id
   = task * ads_per_task + k) of quality q_a ~ N(0, 1).
2. Reporting. A task reports its target action completely (rate r_ej = 1). Each other action j
   is reported completely (r_ej = 1) with probability `report_complete_prob[j]`, partially with
   probability `report_partial_prob[j]` (r_ej ~ U(`partial_fraction_min`,
   `partial_fraction_max`)), and otherwise not at all (r_ej = 0).
3. Users. User u has traits tau_u ~ N(0, I_2) (engagement, depth), an interest vector
   p_u ~ N(0, I_4) (categories have q_c ~ N(0, I_4)), fixed os / province / device_brand /
   age_bucket / gender, and an activity weight w_u ∝ (1 + rank(u))^-`user_zipf` over a random
   order of users.
4. Traffic of a row on day d. Target group g ~ Categorical(`target_shares`), so the per-sample
   target shares are the configured skew up to binomial sampling error; ad task e ~
   Zipf(`ad_task_zipf`) over the group's tasks in a random order; creative k ~ Zipf(1) over the
   task's creatives; user u ~ P_g(u) ∝ w_u exp(`user_shift` * a_g . tau_u) (a_g in
   `_GROUP_USER_TILT`: activation traffic reaches shallow users, payment traffic deep ones);
   hour from a diurnal profile, network from fixed shares, slot ~ Zipf(`slot_zipf`),
   day_of_week = d mod 7.
5. Dense features (eps: a fresh N(0, 1) per row and feature; xi ~ N(0, 1) per row):
   user_activity = 2 + 0.8 tau_u0 + 0.4 eps; user_pay_history = 1 + 0.8 tau_u1 + 0.4 eps;
   ad_quality = q_a + 0.3 eps; bid_log = BID_g + 0.4 eta_e + 0.1 eps;
   session_depth = 1.5 + 0.6 xi. The schema's mean / std are the exact moments of each feature
   under the traffic mixture (computed from the world, not estimated).
6. Conversion logits. z_j = `base_logits[j]` + `target_boost` 1[target = j]
   + `user_effect_std` (lambda_j . tau_u + sqrt(1 - |lambda_j|^2) nu_uj)
   + `interaction_std` p_u . q_c / 2 + C_cj + T_ej + `ad_effect_std` q_a
   + sum_f X_f[v_f, j] + `session_effect` xi, with nu_uj ~ N(0, 1), lambda_j in
   `_ACTION_USER_LOADINGS`, C_cj ~ N(0, `category_effect_std`^2) and X_f[v, j] ~
   N(0, `context_effect_std`^2) for every id v of hour, day_of_week, os, network, slot_id,
   province, device_brand, age_bucket and gender. The user, task, category and context
   effects are centred on their traffic-weighted means, so that heavy ids do not move the
   overall rates away from what `base_logits` sets. All of it is visible to a model through
   user / ad / category ids, context ids and the dense proxies.
7. Funnel. With pi_j = sigmoid(z_j) and l = `funnel_leak`: activation ~ B(pi_0);
   re_engagement ~ B(pi_1) only without activation (it is for users who already have the app);
   registration ~ B(pi_2 * (1 if activation or re_engagement else l));
   payment ~ B(pi_3 * (1 if registration else l)); retention ~ B(pi_4 * (1 if activation
   else l)). These are `true_label_<action>`.
8. Reported labels. label_j = true_j * B(r_ej): an unreported conversion is a 0 label, so a
   reported label is never 1 where the true label is 0, always equals it on the target action,
   and is 0 for every action the task does not report.

Defaults: Table 1's target skew; reporting probabilities such that the share of samples whose
task reports action j, s_j + (1 - s_j) (complete_j + partial_j), is close to Table 1's "With
ADM" row (98.5 / 8.1 / 23.4 / 31.0 / 53.3 % expected; a given world deviates by a few points
because task traffic is Zipf); base logits giving post-click true rates of about
14 / 4 / 4 / 1.6 / 1.3 % over all traffic and 17 / 11 / 6.6 / 3.2 / 2.1 % on each action's own
target traffic (a default 1M-row run, seed 0; other seeds within about a point).

Rows are spread evenly over `train_days` + `test_days` days (the paper's four weeks + next day);
the first `train_days` days are the train window, the rest the test split. Everything is
deterministic for a config: the world comes from `SeedSequence(seed)` and the rows of chunk c of
day d from `SeedSequence(seed, spawn_key=(1, d, c))`, so the output does not depend on anything
but the config (chunk boundaries are part of it through `chunk_rows`).
"""

import contextlib
import dataclasses
import glob
import json
import os
import time
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from absl import logging
import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import numpy as np

from kaml_tf import configs
from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf import atomic

ACTIONS = ("activation", "re_engagement", "registration", "payment", "retention")
ACTIVATION, RE_ENGAGEMENT, REGISTRATION, PAYMENT, RETENTION = range(len(ACTIONS))
NUM_ACTIONS = len(ACTIONS)
OTHER_GROUP = NUM_ACTIONS  # Index of the "Other" target group in per-group arrays.
NUM_GROUPS = NUM_ACTIONS + 1
GROUP_NAMES = ACTIONS + ("other",)
TRAIN_PREFIX = "train"
TEST_PREFIX = "test"
REPORT_FILE = "simulation.json"

# Table 1, "Base" row: share of samples per target action A..E, then "Other".
TABLE1_TARGET_SHARES = (0.6908, 0.0526, 0.0992, 0.1148, 0.0056, 0.0370)

# Loadings lambda_j of each action's user effect on the (engagement, depth) traits: deep
# actions depend more on depth (payers), activation slightly less on it (deep users already
# have many apps). Each row has norm <= 1.
_ACTION_USER_LOADINGS = ((0.6, -0.3), (0.7, 0.1), (0.6, 0.4), (0.4, 0.8), (0.6, 0.5))
# Direction a_g in trait space towards which group g's traffic tilts its user population.
_GROUP_USER_TILT = ((0.0, -0.5), (0.8, 0.0), (0.3, 0.3), (0.3, 0.8), (0.5, 0.3), (0.0, 0.0))
# Mean log-bid BID_g per target group: advertisers bid more for deeper actions.
_GROUP_BID_LOG = (1.0, 0.8, 2.0, 3.0, 2.5, 1.5)
_INTEREST_DIM = 4
# Relative click traffic per hour of day (quiet nights, evening peak).
_HOUR_TRAFFIC = (
  1.0,
  0.6,
  0.4,
  0.3,
  0.3,
  0.5,
  1.2,
  2.5,
  3.5,
  4.0,
  4.2,
  4.5,
  5.0,
  4.8,
  4.3,
  4.2,
  4.4,
  4.8,
  5.5,
  6.5,
  7.2,
  7.0,
  5.0,
  2.5,
)
_NETWORK_SHARES = (0.55, 0.33, 0.10, 0.02)  # wifi, 4g, 5g, 3g
_OS_SHARES = (0.72, 0.25, 0.03)
_AGE_SHARES = (0.06, 0.22, 0.26, 0.20, 0.14, 0.08, 0.04)
_GENDER_SHARES = (0.47, 0.45, 0.08)  # female, male, unknown
_NUM_PROVINCES = 34
_PROVINCE_ZIPF = 0.8
_NUM_DEVICE_BRANDS = 20
_DEVICE_BRAND_ZIPF = 1.2
_CREATIVE_ZIPF = 1.0

# (name, entity, offset, latent scale, noise std) of the dense features: value = offset +
# scale * latent(entity) + noise_std * eps. The latents are tau_u0, tau_u1, q_a, the task's
# log-bid and the row's xi (see the module docstring).
_DENSE_FEATURES = (
  ("user_activity", "user_engagement", 2.0, 0.8, 0.4),
  ("user_pay_history", "user_depth", 1.0, 0.8, 0.4),
  ("ad_quality", "ad", 0.0, 1.0, 0.3),
  ("bid_log", "task", 0.0, 1.0, 0.1),
  ("session_depth", "row", 1.5, 0.6, 0.0),
)
# Context / user-attribute features with a per-id conversion effect X_f.
_CONTEXT_FEATURES = (
  "hour",
  "day_of_week",
  "os",
  "network",
  "slot_id",
  "province",
  "device_brand",
  "age_bucket",
  "gender",
)


def _field(default: Any, doc: str) -> Any:
  """A config field whose help text is also the flag's help in `pipelines/simulate.py`."""
  return dataclasses.field(default=default, metadata={"help": doc})


@dataclasses.dataclass(frozen=True)
class SimulationConfig:
  """Everything the generated logs depend on (see the module docstring for the model)."""

  seed: int = _field(0, "Seed of the world and of every row (same seed -> same bytes).")
  num_rows: int = _field(200_000, "Rows in total, train window plus test days.")
  train_days: int = _field(28, "Days in the train window (the paper: four weeks).")
  test_days: int = _field(1, "Days after the window written as the test split.")
  chunk_rows: int = _field(100_000, "Rows generated at once (bounds memory).")
  target_shares: Tuple[float, ...] = _field(
    TABLE1_TARGET_SHARES,
    "Share of samples per target action, in ACTIONS order then 'Other' (Table 1).",
  )
  num_ad_tasks: int = _field(2000, "Ad tasks, split over target groups like target_shares.")
  ad_task_zipf: float = _field(0.9, "Zipf exponent of ad-task popularity within a group.")
  ads_per_task: int = _field(5, "Creatives (ad ids) per ad task.")
  num_apps: int = _field(1000, "Promoted apps.")
  num_advertisers: int = _field(400, "Advertisers; each app belongs to one.")
  num_categories: int = _field(40, "App categories.")
  category_zipf: float = _field(
    1.0, "Zipf exponent of a group's preference over categories (own order per group)."
  )
  num_users: int = _field(100_000, "Users.")
  user_zipf: float = _field(0.6, "Zipf exponent of user activity.")
  num_slots: int = _field(200, "Ad slots.")
  slot_zipf: float = _field(1.0, "Zipf exponent of slot traffic.")
  report_complete_prob: Tuple[float, ...] = _field(
    (0.70, 0.02, 0.10, 0.15, 0.37),
    "Per action: probability that a task not targeting it reports it completely.",
  )
  report_partial_prob: Tuple[float, ...] = _field(
    (0.25, 0.01, 0.05, 0.07, 0.16),
    "Per action: probability that a task not targeting it reports it partially.",
  )
  partial_fraction_min: float = _field(
    0.1, "Lowest fraction of conversions a partially reporting task reports."
  )
  partial_fraction_max: float = _field(
    0.6, "Highest fraction of conversions a partially reporting task reports."
  )
  base_logits: Tuple[float, ...] = _field(
    (-3.1, -3.8, -2.7, -3.1, -4.0),
    "Per action: base conversion logit (re_engagement, registration, payment and retention "
    "conditional on their funnel prerequisite).",
  )
  target_boost: float = _field(
    0.8, "Logit added to action j on traffic of tasks targeting j (their base rates differ)."
  )
  user_shift: float = _field(
    1.0, "Strength of the tilt of each target group's user population (feature shift)."
  )
  funnel_leak: float = _field(
    0.05, "Probability factor of a deeper action without its funnel prerequisite."
  )
  user_effect_std: float = _field(1.0, "Std of the user effect on each action's logit.")
  interaction_std: float = _field(0.8, "Std of the user x category interest effect.")
  category_effect_std: float = _field(0.3, "Std of the category effect per action.")
  ad_task_effect_std: float = _field(0.4, "Std of the ad-task effect per action.")
  ad_effect_std: float = _field(0.2, "Logit per unit of creative quality q_a.")
  context_effect_std: float = _field(0.15, "Std of each context / attribute id's effect.")
  session_effect: float = _field(0.3, "Logit per unit of the session latent xi.")

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

  def is_test_day(self, day: int) -> bool:
    return day >= self.train_days

  def rows_per_day(self) -> List[int]:
    """Rows of each day: `num_rows` spread evenly, earlier days taking the remainder."""
    base, extra = divmod(self.num_rows, self.num_days)
    return [base + (1 if d < extra else 0) for d in range(self.num_days)]

  def to_dict(self) -> Dict[str, Any]:
    return configs.to_dict(self)

  @classmethod
  def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> "SimulationConfig":
    return configs.from_dict(cls, data, source)


def _validate_config(c: SimulationConfig) -> None:
  """Raises ValueError naming the field and quoting the bad value."""

  def check(ok: bool, name: str, what: str):
    if not ok:
      raise ValueError(f"{name}: {what}, got {getattr(c, name)!r}")

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
    check(
      isinstance(value, int) and not isinstance(value, bool) and value >= 1,
      name,
      "must be an integer >= 1",
    )
  check(isinstance(c.seed, int) and c.seed >= 0, "seed", "must be an integer >= 0")
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


def zipf_probs(n: int, exponent: float) -> np.ndarray:
  """P(rank r) ∝ (1 + r)^-exponent for r = 0..n-1, shape (n,)."""
  weights = (1.0 + np.arange(n, dtype=np.float64)) ** -exponent
  return weights / weights.sum()


def allocate_tasks(shares: Sequence[float], num_tasks: int) -> np.ndarray:
  """Splits `num_tasks` over groups proportionally to `shares` (largest remainder).

  Every group with a positive share gets at least one task (taken from the largest group),
  so every target group of the configured skew has traffic.

  Returns:
    Task counts per group, shape (len(shares),) int64, summing to `num_tasks`.
  """
  shares = np.asarray(shares, np.float64)
  ideal = shares / shares.sum() * num_tasks
  counts = np.floor(ideal).astype(np.int64)
  order = np.argsort(-(ideal - counts), kind="stable")
  counts[order[: num_tasks - counts.sum()]] += 1
  for g in np.flatnonzero((shares > 0) & (counts == 0)):
    counts[np.argmax(counts)] -= 1
    counts[g] = 1
  return counts


def _cdf(probs: np.ndarray) -> np.ndarray:
  cdf = np.cumsum(probs, axis=-1)
  cdf /= cdf[..., -1:]
  cdf[..., -1] = 1.0
  return cdf


def _draw(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
  """Inverse-CDF sampling: indices (n,) for uniforms u (n,) in [0, 1)."""
  return np.minimum(np.searchsorted(cdf, u, side="right"), cdf.size - 1)


@dataclasses.dataclass(frozen=True)
class _GroupedSampler:
  """Samples an item of a per-group distribution for each row with one `searchsorted`.

  Group g's CDF is stored shifted by g in one sorted array, so `g + u` lands in g's block.
  """

  items: np.ndarray  # (total,) item of each block position.
  shifted_cdf: np.ndarray  # (total,) g + cdf_g, concatenated over groups.
  block_end: np.ndarray  # (G,) one past the last position of each group's block.

  @classmethod
  def build(
    cls, items_per_group: Sequence[np.ndarray], probs_per_group: Sequence[np.ndarray]
  ) -> "_GroupedSampler":
    shifted = [g + _cdf(p) if p.size else p for g, p in enumerate(probs_per_group)]
    return cls(
      items=np.concatenate(items_per_group).astype(np.int64),
      shifted_cdf=np.concatenate(shifted),
      block_end=np.cumsum([len(i) for i in items_per_group]),
    )

  def draw(self, groups: np.ndarray, u: np.ndarray) -> np.ndarray:
    pos = np.searchsorted(self.shifted_cdf, groups + u, side="right")
    # Rounding of g + u near g + 1 must not spill into the next group's block.
    return self.items[np.minimum(pos, self.block_end[groups] - 1)]


@dataclasses.dataclass(frozen=True)
class World:
  """The parameters drawn once per seed: ad tasks, reporting, users and effects.

  Arrays are indexed by id; K tasks, A = K * ads_per_task creatives, U users, C categories.
  """

  task_group: np.ndarray  # (K,) target group 0..5 (5 = Other).
  task_target: np.ndarray  # (K,) target_action, -1 for Other.
  task_category: np.ndarray  # (K,)
  task_app: np.ndarray  # (K,)
  task_advertiser: np.ndarray  # (K,)
  task_bid_log: np.ndarray  # (K,) BID_g + 0.4 eta_e.
  task_effect: np.ndarray  # (K, N)
  task_probs: np.ndarray  # (K,) P(task | its group).
  report_rate: np.ndarray  # (K, N) r_ej in [0, 1]; 1 on the target.
  ad_quality: np.ndarray  # (A,) q_a.
  creative_probs: np.ndarray  # (ads_per_task,)
  user_traits: np.ndarray  # (U, 2) tau_u.
  user_effect: np.ndarray  # (U, N) user part of the logits.
  user_interest: np.ndarray  # (U, 4) p_u.
  user_probs: np.ndarray  # (G, U) P_g(u).
  user_attributes: Dict[str, np.ndarray]  # name -> (U,) ids.
  category_interest: np.ndarray  # (C, 4) q_c.
  category_effect: np.ndarray  # (C, N)
  context_effect: Dict[str, np.ndarray]  # feature -> (cardinality, N)
  slot_probs: np.ndarray  # (num_slots,)
  task_sampler: _GroupedSampler
  user_sampler: _GroupedSampler

  def task_traffic(self, shares: Sequence[float]) -> np.ndarray:
    """Share of all rows going to each task, shape (K,)."""
    return np.asarray(shares)[self.task_group] * self.task_probs

  def user_traffic(self, shares: Sequence[float]) -> np.ndarray:
    """Share of all rows going to each user, shape (U,)."""
    return np.asarray(shares) @ self.user_probs


def _cardinalities(config: SimulationConfig) -> Dict[str, int]:
  """Number of distinct ids of every sparse feature, in schema order (ids are 0..n-1)."""
  return {
    "user_id": config.num_users,
    "ad_id": config.num_ad_tasks * config.ads_per_task,
    schema_lib.AD_TASK_ID: config.num_ad_tasks,
    "advertiser_id": config.num_advertisers,
    "app_id": config.num_apps,
    "category_id": config.num_categories,
    "hour": len(_HOUR_TRAFFIC),
    "day_of_week": 7,
    "os": len(_OS_SHARES),
    "network": len(_NETWORK_SHARES),
    "slot_id": config.num_slots,
    "province": _NUM_PROVINCES,
    "device_brand": _NUM_DEVICE_BRANDS,
    "age_bucket": len(_AGE_SHARES),
    "gender": len(_GENDER_SHARES),
  }


def build_world(config: SimulationConfig) -> World:
  """Draws the world (steps 1-3 of the module docstring) from `SeedSequence(config.seed)`."""
  rng = np.random.default_rng(np.random.SeedSequence(config.seed))
  c = config
  # Apps: the first num_categories apps cover every category once, the rest are uniform.
  app_category = np.concatenate(
    [
      rng.permutation(c.num_categories),
      rng.integers(0, c.num_categories, c.num_apps - c.num_categories),
    ]
  )
  app_advertiser = rng.integers(0, c.num_advertisers, c.num_apps)
  apps_by_category = np.argsort(app_category, kind="stable")  # Grouped by category.
  category_app_count = np.bincount(app_category, minlength=c.num_categories)
  category_first_app = np.cumsum(category_app_count) - category_app_count

  counts = allocate_tasks(c.target_shares, c.num_ad_tasks)
  task_group = rng.permutation(np.repeat(np.arange(NUM_GROUPS), counts))
  task_target = np.where(task_group == OTHER_GROUP, schema_lib.OTHER_TARGET, task_group)
  category_probs = np.stack(
    [
      zipf_probs(c.num_categories, c.category_zipf)[np.argsort(rng.permutation(c.num_categories))]
      for _ in range(NUM_GROUPS)
    ]
  )
  task_category = _GroupedSampler.build(
    [np.arange(c.num_categories)] * NUM_GROUPS, list(category_probs)
  ).draw(task_group, rng.random(c.num_ad_tasks))
  app_rank = np.floor(rng.random(c.num_ad_tasks) * category_app_count[task_category])
  task_app = apps_by_category[category_first_app[task_category] + app_rank.astype(np.int64)]
  task_advertiser = app_advertiser[task_app]
  task_bid_log = np.asarray(_GROUP_BID_LOG)[task_group] + 0.4 * rng.standard_normal(c.num_ad_tasks)
  task_effect = c.ad_task_effect_std * rng.standard_normal((c.num_ad_tasks, NUM_ACTIONS))

  # Within-group popularity: Zipf over a random order of the group's tasks.
  group_tasks, group_task_probs = [], []
  task_probs = np.zeros(c.num_ad_tasks)
  for g in range(NUM_GROUPS):
    tasks = rng.permutation(np.flatnonzero(task_group == g))
    probs = zipf_probs(tasks.size, c.ad_task_zipf) if tasks.size else np.zeros(0)
    task_probs[tasks] = probs
    group_tasks.append(tasks)
    group_task_probs.append(probs)

  mode_u = rng.random((c.num_ad_tasks, NUM_ACTIONS))
  complete = np.asarray(c.report_complete_prob)
  partial = np.asarray(c.report_partial_prob)
  fraction = rng.uniform(
    c.partial_fraction_min, c.partial_fraction_max, (c.num_ad_tasks, NUM_ACTIONS)
  )
  report_rate = np.where(
    mode_u < complete, 1.0, np.where(mode_u < complete + partial, fraction, 0.0)
  )
  targeted = task_target >= 0
  report_rate[np.flatnonzero(targeted), task_target[targeted]] = 1.0

  ad_quality = rng.standard_normal(c.num_ad_tasks * c.ads_per_task)

  traits = rng.standard_normal((c.num_users, 2))
  loadings = np.asarray(_ACTION_USER_LOADINGS)
  idio = np.sqrt(np.maximum(0.0, 1.0 - np.sum(loadings**2, axis=1)))
  user_effect = c.user_effect_std * (
    traits @ loadings.T + idio * rng.standard_normal((c.num_users, NUM_ACTIONS))
  )
  user_interest = rng.standard_normal((c.num_users, _INTEREST_DIM))
  activity = zipf_probs(c.num_users, c.user_zipf)[np.argsort(rng.permutation(c.num_users))]
  log_tilt = c.user_shift * (traits @ np.asarray(_GROUP_USER_TILT).T)  # (U, G)
  tilted = activity[None, :] * np.exp(log_tilt.T - log_tilt.max(axis=0)[:, None])
  user_probs = tilted / tilted.sum(axis=1, keepdims=True)
  user_attributes = {
    "os": _draw(_cdf(np.asarray(_OS_SHARES)), rng.random(c.num_users)),
    "province": _draw(_cdf(zipf_probs(_NUM_PROVINCES, _PROVINCE_ZIPF)), rng.random(c.num_users)),
    "device_brand": _draw(
      _cdf(zipf_probs(_NUM_DEVICE_BRANDS, _DEVICE_BRAND_ZIPF)), rng.random(c.num_users)
    ),
    "age_bucket": _draw(_cdf(np.asarray(_AGE_SHARES)), rng.random(c.num_users)),
    "gender": _draw(_cdf(np.asarray(_GENDER_SHARES)), rng.random(c.num_users)),
  }
  category_interest = rng.standard_normal((c.num_categories, _INTEREST_DIM))
  category_effect = c.category_effect_std * rng.standard_normal((c.num_categories, NUM_ACTIONS))
  cards = _cardinalities(c)
  context_effect = {
    f: c.context_effect_std * rng.standard_normal((cards[f], NUM_ACTIONS))
    for f in _CONTEXT_FEATURES
  }
  slot_probs = zipf_probs(c.num_slots, c.slot_zipf)[np.argsort(rng.permutation(c.num_slots))]

  # Centre every random effect on its traffic-weighted mean, so that a few heavy ids (the top
  # os, the top tasks of a Zipf) do not shift all conversion rates: `base_logits` then sets
  # the rate level whatever the seed.
  shares = np.asarray(c.target_shares)
  user_traffic = shares @ user_probs
  task_traffic = shares[task_group] * task_probs
  id_traffic = {
    "hour": np.asarray(_HOUR_TRAFFIC) / np.sum(_HOUR_TRAFFIC),
    "day_of_week": np.full(7, 1 / 7),
    "network": np.asarray(_NETWORK_SHARES),
    "slot_id": slot_probs,
  }
  for name, values in user_attributes.items():
    id_traffic[name] = np.bincount(values, weights=user_traffic, minlength=cards[name])
  context_effect = {f: e - id_traffic[f] @ e for f, e in context_effect.items()}
  user_effect -= user_traffic @ user_effect
  task_effect -= task_traffic @ task_effect
  category_effect -= (
    np.bincount(task_category, weights=task_traffic, minlength=c.num_categories) @ category_effect
  )

  all_users = np.arange(c.num_users)
  return World(
    task_group=task_group.astype(np.int64),
    task_target=task_target.astype(np.int64),
    task_category=task_category,
    task_app=task_app,
    task_advertiser=task_advertiser,
    task_bid_log=task_bid_log,
    task_effect=task_effect,
    task_probs=task_probs,
    report_rate=report_rate,
    ad_quality=ad_quality,
    creative_probs=zipf_probs(c.ads_per_task, _CREATIVE_ZIPF),
    user_traits=traits,
    user_effect=user_effect,
    user_interest=user_interest,
    user_probs=user_probs,
    user_attributes=user_attributes,
    category_interest=category_interest,
    category_effect=category_effect,
    context_effect=context_effect,
    slot_probs=slot_probs,
    task_sampler=_GroupedSampler.build(group_tasks, group_task_probs),
    user_sampler=_GroupedSampler.build([all_users] * NUM_GROUPS, list(user_probs)),
  )


def _sigmoid(x: np.ndarray) -> np.ndarray:
  return 0.5 * (1.0 + np.tanh(0.5 * x))


def generate_rows(
  config: SimulationConfig, world: World, day: int, n: int, rng: np.random.Generator
) -> Dict[str, np.ndarray]:
  """Draws `n` rows of day `day` (steps 4-8 of the module docstring).

  Returns:
    Columns keyed like `default_schema(config).record_dtypes()`, each (n,): int64 ids, key
    fields and labels, float32 dense features.
  """
  c, w = config, world
  groups = _draw(_cdf(np.asarray(c.target_shares)), rng.random(n))
  task = w.task_sampler.draw(groups, rng.random(n))
  ad = task * c.ads_per_task + _draw(_cdf(w.creative_probs), rng.random(n))
  user = w.user_sampler.draw(groups, rng.random(n))
  category = w.task_category[task]
  ids = {
    "user_id": user,
    "ad_id": ad,
    schema_lib.AD_TASK_ID: task,
    "advertiser_id": w.task_advertiser[task],
    "app_id": w.task_app[task],
    "category_id": category,
    "hour": _draw(_cdf(np.asarray(_HOUR_TRAFFIC)), rng.random(n)),
    "day_of_week": np.full(n, day % 7, np.int64),
    "network": _draw(_cdf(np.asarray(_NETWORK_SHARES)), rng.random(n)),
    "slot_id": _draw(_cdf(w.slot_probs), rng.random(n)),
  }
  for name, values in w.user_attributes.items():
    ids[name] = values[user]

  eps = rng.standard_normal((n, len(_DENSE_FEATURES)))
  xi = rng.standard_normal(n)
  latent = {
    "user_engagement": w.user_traits[user, 0],
    "user_depth": w.user_traits[user, 1],
    "ad": w.ad_quality[ad],
    "task": w.task_bid_log[task],
    "row": xi,
  }
  dense = {
    name: (offset + scale * latent[entity] + noise * eps[:, i]).astype(np.float32)
    for i, (name, entity, offset, scale, noise) in enumerate(_DENSE_FEATURES)
  }

  target = w.task_target[task]
  logits = (
    np.asarray(c.base_logits)[None, :]
    + c.target_boost * (target[:, None] == np.arange(NUM_ACTIONS)[None, :])
    + w.user_effect[user]
    + c.interaction_std
    / np.sqrt(_INTEREST_DIM)
    * np.sum(w.user_interest[user] * w.category_interest[category], axis=1)[:, None]
    + w.category_effect[category]
    + w.task_effect[task]
    + c.ad_effect_std * w.ad_quality[ad][:, None]
    + c.session_effect * xi[:, None]
  )
  for name in _CONTEXT_FEATURES:
    logits += w.context_effect[name][ids[name]]
  prob = _sigmoid(logits)

  u = rng.random((n, NUM_ACTIONS))
  leak = c.funnel_leak
  activation = u[:, ACTIVATION] < prob[:, ACTIVATION]
  re_engagement = ~activation & (u[:, RE_ENGAGEMENT] < prob[:, RE_ENGAGEMENT])
  engaged = activation | re_engagement
  registration = u[:, REGISTRATION] < prob[:, REGISTRATION] * np.where(engaged, 1.0, leak)
  payment = u[:, PAYMENT] < prob[:, PAYMENT] * np.where(registration, 1.0, leak)
  retention = u[:, RETENTION] < prob[:, RETENTION] * np.where(activation, 1.0, leak)
  truth = np.stack([activation, re_engagement, registration, payment, retention], axis=1)
  reported = truth & (rng.random((n, NUM_ACTIONS)) < w.report_rate[task])

  columns = {
    schema_lib.AD_TASK_ID: task,
    schema_lib.TARGET_ACTION: target,
    schema_lib.DAY: np.full(n, day, np.int64),
  }
  # Fields in the order of `default_schema(config).record_dtypes()`.
  columns.update({k: ids[k].astype(np.int64) for k in _cardinalities(c)})
  columns.update(dense)
  for j, action in enumerate(ACTIONS):
    columns[schema_lib.LABEL_PREFIX + action] = reported[:, j].astype(np.int64)
  for j, action in enumerate(ACTIONS):
    columns[schema_lib.TRUE_LABEL_PREFIX + action] = truth[:, j].astype(np.int64)
  return columns


def iter_chunks(
  config: SimulationConfig, world: Optional[World] = None
) -> Iterator[Tuple[int, Dict[str, np.ndarray]]]:
  """Yields `(day, columns)` chunks of at most `chunk_rows` rows, in day order."""
  world = build_world(config) if world is None else world
  for day, rows in enumerate(config.rows_per_day()):
    for chunk, start in enumerate(range(0, rows, config.chunk_rows)):
      n = min(config.chunk_rows, rows - start)
      rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(1, day, chunk)))
      yield day, generate_rows(config, world, day, n, rng)


def simulate(config: SimulationConfig, world: Optional[World] = None) -> Dict[str, np.ndarray]:
  """All rows (train window then test days) in memory, for tests and small experiments.

  Returns:
    Columns (num_rows,) keyed like `default_schema(config).record_dtypes()`; test rows are
    those with `day >= config.train_days`.
  """
  chunks = [columns for _, columns in iter_chunks(config, world)]
  return {k: np.concatenate([ch[k] for ch in chunks]) for k in chunks[0]}


def dense_moments(config: SimulationConfig, world: World) -> Dict[str, Tuple[float, float]]:
  """Exact (mean, std) of every dense feature under the traffic mixture of `config`."""
  task_traffic = world.task_traffic(config.target_shares)
  user_traffic = world.user_traffic(config.target_shares)
  ad_traffic = (task_traffic[:, None] * world.creative_probs[None, :]).reshape(-1)
  entities = {
    "user_engagement": (world.user_traits[:, 0], user_traffic),
    "user_depth": (world.user_traits[:, 1], user_traffic),
    "ad": (world.ad_quality, ad_traffic),
    "task": (world.task_bid_log, task_traffic),
    "row": (np.array([-1.0, 1.0]), np.array([0.5, 0.5])),  # xi: mean 0, variance 1.
  }
  moments = {}
  for name, entity, offset, scale, noise in _DENSE_FEATURES:
    values, weights = entities[entity]
    mean = float(weights @ values)
    var = float(weights @ (values - mean) ** 2)
    moments[name] = (offset + scale * mean, float(np.sqrt(scale**2 * var + noise**2)))
  return moments


def default_schema(
  config: SimulationConfig, world: Optional[World] = None, embedding_dim: int = 16
) -> schema_lib.Schema:
  """The schema of the simulated logs: every id in [0, cardinality) has its own bucket.

  Args:
    config: The simulation config (sizes and the traffic mixture).
    world: The world of `config`, if already built (its moments set the dense mean / std).
    embedding_dim: Embedding width of every sparse feature.

  Returns:
    A `Schema` with `ACTIONS`, 15 sparse int64 features (including `ad_task_id`), 5 dense
    features and `has_true_labels=True`.
  """
  world = build_world(config) if world is None else world
  sparse = tuple(
    schema_lib.SparseFeature(
      name=name, dtype="int64", num_buckets=card, embedding_dim=embedding_dim
    )
    for name, card in _cardinalities(config).items()
  )
  dense = tuple(
    schema_lib.DenseFeature(name=name, mean=mean, std=std)
    for name, (mean, std) in dense_moments(config, world).items()
  )
  return schema_lib.Schema(
    actions=ACTIONS, sparse_features=sparse, dense_features=dense, has_true_labels=True
  )


def expected_reporting_share(config: SimulationConfig) -> Dict[str, float]:
  """Per action, the expected share of samples whose ad task reports it (target or not)."""
  shares = config.target_shares
  return {
    a: shares[j]
    + (1 - shares[j]) * (config.report_complete_prob[j] + config.report_partial_prob[j])
    for j, a in enumerate(ACTIONS)
  }


def _ratio(numerator, denominator) -> Optional[float]:
  return float(numerator) / float(denominator) if denominator else None


def _percent(x: Optional[float]) -> str:
  return "-" if x is None else f"{100 * x:.2f}%"


class _ReportCounter:
  """Accumulates, per split, the counts behind the data report (chunk by chunk)."""

  def __init__(self):
    self._counts: Dict[str, Dict[str, np.ndarray]] = {}

  def add(self, split: str, columns: Mapping[str, np.ndarray], world: World) -> None:
    task = columns[schema_lib.AD_TASK_ID]
    target = columns[schema_lib.TARGET_ACTION]
    group = np.where(target < 0, OTHER_GROUP, target)
    truth = np.stack([columns[schema_lib.TRUE_LABEL_PREFIX + a] for a in ACTIONS], axis=1)
    labels = np.stack([columns[schema_lib.LABEL_PREFIX + a] for a in ACTIONS], axis=1)
    on_target = group[:, None] == np.arange(NUM_ACTIONS)[None, :]
    add = {
      "rows": np.array(task.size),
      "target": np.bincount(group, minlength=NUM_GROUPS),
      "reporting": np.sum(world.report_rate[task] > 0, axis=0),
      "true": truth.sum(axis=0),
      "reported": labels.sum(axis=0),
      "target_true": np.sum(truth * on_target, axis=0),
    }
    for key in (split, "all"):
      counts = self._counts.setdefault(key, {k: np.zeros_like(v) for k, v in add.items()})
      for k, v in add.items():
        counts[k] = counts[k] + v

  def report(self) -> Dict[str, Any]:
    """Shares and rates per split; rates of an empty split or group are None."""
    out = {}
    for split, counts in self._counts.items():
      rows = int(counts["rows"])
      out[split] = {
        "rows": rows,
        "target_share": {g: _ratio(counts["target"][i], rows) for i, g in enumerate(GROUP_NAMES)},
        "reporting_share": {a: _ratio(counts["reporting"][j], rows) for j, a in enumerate(ACTIONS)},
        "true_positive_rate": {a: _ratio(counts["true"][j], rows) for j, a in enumerate(ACTIONS)},
        "reported_positive_rate": {
          a: _ratio(counts["reported"][j], rows) for j, a in enumerate(ACTIONS)
        },
        "target_traffic_true_positive_rate": {
          a: _ratio(counts["target_true"][j], counts["target"][j]) for j, a in enumerate(ACTIONS)
        },
      }
    return out


def format_report(report: Mapping[str, Any]) -> str:
  """A markdown table of the whole data (`splits.all`) against the configured shares."""
  split = report["splits"]["all"]
  lines = [
    "| group | target share (configured) | reporting share (expected) | "
    "true rate | reported rate | true rate on target traffic |",
    "|---|---|---|---|---|---|",
  ]
  for g in GROUP_NAMES:
    cells = [
      g,
      f"{_percent(split['target_share'][g])} ({_percent(report['configured_target_share'][g])})",
    ]
    if g in ACTIONS:
      cells += [
        f"{_percent(split['reporting_share'][g])} "
        f"({_percent(report['expected_reporting_share'][g])})",
        _percent(split["true_positive_rate"][g]),
        _percent(split["reported_positive_rate"][g]),
        _percent(split["target_traffic_true_positive_rate"][g]),
      ]
    else:
      cells += ["-"] * 4
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def _split_rows(columns: Mapping[str, np.ndarray], parts: int) -> Iterator[Dict[str, np.ndarray]]:
  """Contiguous, non-empty slices of a chunk, one per shard the writer rotates over."""
  n = len(next(iter(columns.values())))
  bounds = np.linspace(0, n, parts + 1).astype(np.int64)
  for start, end in zip(bounds[:-1], bounds[1:]):
    if end > start:
      yield {k: v[start:end] for k, v in columns.items()}


def write_simulation(
  config: SimulationConfig, output_dir: str, num_shards: int = 1, compression: str = ""
) -> Dict[str, Any]:
  """Simulates and writes `schema.json`, train / test shards and `simulation.json`.

  Files: `<output_dir>/train-<shard>-of-<shards>.tfrecord[.gz]` (days < train_days),
  `test-...` (the following days), then `schema.json` and `simulation.json`, each atomic.
  Each chunk is spread evenly over the shards.

  Args:
    config: The simulation.
    output_dir: Destination folder (created if missing).
    num_shards: Shards per split.
    compression: "" or "GZIP".

  Returns:
    The content of `simulation.json`: resolved config, output files and the data report.

  Raises:
    FileExistsError: if `output_dir` holds log shards this run would not overwrite (mixing
      them with the new ones would corrupt the data set).
  """
  if num_shards < 1:
    raise ValueError(f"num_shards must be >= 1, got {num_shards}")
  start_time = time.time()
  world = build_world(config)
  schema = default_schema(config, world)
  os.makedirs(output_dir, exist_ok=True)
  prefixes = {
    TRAIN_PREFIX: os.path.join(output_dir, TRAIN_PREFIX),
    TEST_PREFIX: os.path.join(output_dir, TEST_PREFIX),
  }
  planned = {
    p for prefix in prefixes.values() for p in records.shard_paths(prefix, num_shards, compression)
  }
  stale = sorted(
    p
    for prefix in prefixes.values()
    for p in glob.glob(prefix + "-*.tfrecord*")
    if p not in planned
  )
  if stale:
    raise FileExistsError(
      f"{output_dir} already holds log shards of another run "
      f"({', '.join(os.path.basename(p) for p in stale)}); remove them or "
      "choose another --output_dir"
    )

  counter = _ReportCounter()
  rows_per_day = config.rows_per_day()
  with contextlib.ExitStack() as stack:
    writers = {
      split: stack.enter_context(records.LogWriter(schema, prefix, num_shards, compression))
      for split, prefix in prefixes.items()
    }
    written = 0
    for day, columns in iter_chunks(config, world):
      split = TEST_PREFIX if config.is_test_day(day) else TRAIN_PREFIX
      for part in _split_rows(columns, num_shards):
        writers[split].write(part)
      counter.add(split, columns, world)
      written += len(columns[schema_lib.DAY])
      if written == sum(rows_per_day[: day + 1]):
        logging.info(
          "day %d/%d (%s): %d rows written, %.0f rows/s",
          day + 1,
          config.num_days,
          split,
          written,
          written / max(time.time() - start_time, 1e-9),
        )

  # The schema and the report land after the shards: a crashed run leaves no new schema
  # next to old shards.
  schema.save(schema_lib.schema_path(output_dir))
  report = {
    "actions": list(ACTIONS),
    "configured_target_share": dict(zip(GROUP_NAMES, config.target_shares)),
    "expected_reporting_share": expected_reporting_share(config),
    "splits": counter.report(),
  }
  summary = {
    "config": config.to_dict(),
    "output": {
      "num_shards": num_shards,
      "compression": compression.lower() or "none",
      "schema_fingerprint": schema.fingerprint(),
      "train_files": [os.path.basename(p) for p in writers[TRAIN_PREFIX].paths],
      "test_files": [os.path.basename(p) for p in writers[TEST_PREFIX].paths],
    },
    "report": report,
  }
  atomic.write_text(
    os.path.join(output_dir, REPORT_FILE), json.dumps(summary, indent=2, sort_keys=True) + "\n"
  )
  logging.info(
    "wrote %d rows to %s in %.1f s\n%s",
    config.num_rows,
    output_dir,
    time.time() - start_time,
    format_report(report),
  )
  return summary
