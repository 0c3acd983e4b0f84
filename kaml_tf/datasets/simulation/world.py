"""The world of the simulation: what is drawn once per seed, before any row (steps 1-3).

N = 5 actions j in `ACTIONS` (the paper's A..E); target groups g = 0..4 are the actions and
g = 5 is "Other" (`target_action = -1`). `build_world` draws, from `SeedSequence(seed)`:

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

It also draws the random effects of the conversion logits (`rows`, step 6), each centred on its
traffic-weighted mean, and gives the dense features' exact moments (`dense_moments`).
"""

import dataclasses
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from kaml_tf import schema as schema_lib
from kaml_tf.datasets.simulation import drift as drift_lib
from kaml_tf.datasets.simulation import sampling
from kaml_tf.datasets.simulation.config import NUM_ACTIONS
from kaml_tf.datasets.simulation.config import NUM_GROUPS
from kaml_tf.datasets.simulation.config import OTHER_GROUP
from kaml_tf.datasets.simulation.config import SimulationConfig

# Loadings lambda_j of each action's user effect on the (engagement, depth) traits: deep
# actions depend more on depth (payers), activation slightly less on it (deep users already
# have many apps). Each row has norm <= 1.
_ACTION_USER_LOADINGS = ((0.6, -0.3), (0.7, 0.1), (0.6, 0.4), (0.4, 0.8), (0.6, 0.5))
# Direction a_g in trait space towards which group g's traffic tilts its user population.
_GROUP_USER_TILT = ((0.0, -0.5), (0.8, 0.0), (0.3, 0.3), (0.3, 0.8), (0.5, 0.3), (0.0, 0.0))
# Mean log-bid BID_g per target group: advertisers bid more for deeper actions.
_GROUP_BID_LOG = (1.0, 0.8, 2.0, 3.0, 2.5, 1.5)
INTEREST_DIM = 4
# Relative click traffic per hour of day (quiet nights, evening peak).
HOUR_TRAFFIC = (
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
NETWORK_SHARES = (0.55, 0.33, 0.10, 0.02)  # wifi, 4g, 5g, 3g
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
# log-bid and the row's xi (step 5 of `simulator`).
DENSE_FEATURES = (
  ("user_activity", "user_engagement", 2.0, 0.8, 0.4),
  ("user_pay_history", "user_depth", 1.0, 0.8, 0.4),
  ("ad_quality", "ad", 0.0, 1.0, 0.3),
  ("bid_log", "task", 0.0, 1.0, 0.1),
  ("session_depth", "row", 1.5, 0.6, 0.0),
)
# Context / user-attribute features with a per-id conversion effect X_f.
CONTEXT_FEATURES = (
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
  task_sampler: sampling.GroupedSampler
  user_sampler: sampling.GroupedSampler
  drift: Optional[drift_lib.Drift] = None  # What changes on config.drift_day (drift.py).

  def task_traffic(self, shares: Sequence[float]) -> np.ndarray:
    """Share of all rows going to each task, shape (K,)."""
    return np.asarray(shares)[self.task_group] * self.task_probs

  def user_traffic(self, shares: Sequence[float]) -> np.ndarray:
    """Share of all rows going to each user, shape (U,)."""
    return np.asarray(shares) @ self.user_probs


def cardinalities(config: SimulationConfig) -> Dict[str, int]:
  """Number of distinct ids of every sparse feature, in schema order (ids are 0..n-1)."""
  return {
    "user_id": config.num_users,
    "ad_id": config.num_ad_tasks * config.ads_per_task,
    schema_lib.AD_TASK_ID: config.num_ad_tasks,
    "advertiser_id": config.num_advertisers,
    "app_id": config.num_apps,
    "category_id": config.num_categories,
    "hour": len(HOUR_TRAFFIC),
    "day_of_week": 7,
    "os": len(_OS_SHARES),
    "network": len(NETWORK_SHARES),
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
      sampling.zipf_probs(c.num_categories, c.category_zipf)[
        np.argsort(rng.permutation(c.num_categories))
      ]
      for _ in range(NUM_GROUPS)
    ]
  )
  task_category = sampling.GroupedSampler.build(
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
    probs = sampling.zipf_probs(tasks.size, c.ad_task_zipf) if tasks.size else np.zeros(0)
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
  user_interest = rng.standard_normal((c.num_users, INTEREST_DIM))
  activity = sampling.zipf_probs(c.num_users, c.user_zipf)[np.argsort(rng.permutation(c.num_users))]
  log_tilt = c.user_shift * (traits @ np.asarray(_GROUP_USER_TILT).T)  # (U, G)
  tilted = activity[None, :] * np.exp(log_tilt.T - log_tilt.max(axis=0)[:, None])
  user_probs = tilted / tilted.sum(axis=1, keepdims=True)
  user_attributes = {
    "os": sampling.draw(sampling.cdf(np.asarray(_OS_SHARES)), rng.random(c.num_users)),
    "province": sampling.draw(
      sampling.cdf(sampling.zipf_probs(_NUM_PROVINCES, _PROVINCE_ZIPF)), rng.random(c.num_users)
    ),
    "device_brand": sampling.draw(
      sampling.cdf(sampling.zipf_probs(_NUM_DEVICE_BRANDS, _DEVICE_BRAND_ZIPF)),
      rng.random(c.num_users),
    ),
    "age_bucket": sampling.draw(sampling.cdf(np.asarray(_AGE_SHARES)), rng.random(c.num_users)),
    "gender": sampling.draw(sampling.cdf(np.asarray(_GENDER_SHARES)), rng.random(c.num_users)),
  }
  category_interest = rng.standard_normal((c.num_categories, INTEREST_DIM))
  category_effect = c.category_effect_std * rng.standard_normal((c.num_categories, NUM_ACTIONS))
  cards = cardinalities(c)
  context_effect = {
    f: c.context_effect_std * rng.standard_normal((cards[f], NUM_ACTIONS)) for f in CONTEXT_FEATURES
  }
  slot_probs = sampling.zipf_probs(c.num_slots, c.slot_zipf)[
    np.argsort(rng.permutation(c.num_slots))
  ]

  # Centre every random effect on its traffic-weighted mean, so that a few heavy ids (the top
  # os, the top tasks of a Zipf) do not shift all conversion rates: `base_logits` then sets
  # the rate level whatever the seed.
  shares = np.asarray(c.target_shares)
  user_traffic = shares @ user_probs
  task_traffic = shares[task_group] * task_probs
  id_traffic = {
    "hour": np.asarray(HOUR_TRAFFIC) / np.sum(HOUR_TRAFFIC),
    "day_of_week": np.full(7, 1 / 7),
    "network": np.asarray(NETWORK_SHARES),
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
    creative_probs=sampling.zipf_probs(c.ads_per_task, _CREATIVE_ZIPF),
    user_traits=traits,
    user_effect=user_effect,
    user_interest=user_interest,
    user_probs=user_probs,
    user_attributes=user_attributes,
    category_interest=category_interest,
    category_effect=category_effect,
    context_effect=context_effect,
    slot_probs=slot_probs,
    task_sampler=sampling.GroupedSampler.build(group_tasks, group_task_probs),
    user_sampler=sampling.GroupedSampler.build([all_users] * NUM_GROUPS, list(user_probs)),
    drift=drift_lib.draw(c, group_tasks, group_task_probs, report_rate, task_target),
  )


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
  for name, entity, offset, scale, noise in DENSE_FEATURES:
    values, weights = entities[entity]
    mean = float(weights @ values)
    var = float(weights @ (values - mean) ** 2)
    moments[name] = (offset + scale * mean, float(np.sqrt(scale**2 * var + noise**2)))
  return moments
