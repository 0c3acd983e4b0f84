"""The rows of the simulation: each day's traffic, drawn from the world (`world`, steps 1-3).

4. Traffic of a row on day d. Target group g ~ Categorical(`target_shares`), so the per-sample
   target shares are the configured skew up to binomial sampling error; ad task e ~
   Zipf(`ad_task_zipf`) over the group's tasks in a random order; creative k ~ Zipf(1) over the
   task's creatives; user u ~ P_g(u) ∝ w_u exp(`user_shift` * a_g . tau_u) (a_g in
   `world._GROUP_USER_TILT`: activation traffic reaches shallow users, payment traffic deep ones);
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
   `world._ACTION_USER_LOADINGS`, C_cj ~ N(0, `category_effect_std`^2) and X_f[v, j] ~
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

Rows of chunk c of day d come from `SeedSequence(seed, spawn_key=(1, d, c))`: the output depends
on the config only (chunk boundaries are part of it through `chunk_rows`). With
`interest_tags > 0` each row also carries its user's tags (`interest_tags`), a
`(n, interest_tags)` column padded with -1, drawn from a stream of its own. With
`report_delay_days`, step 9 (`delays`) then zeroes the labels not yet reported by
`observed_through_day`. With `drift_day`, the tasks drawn in step 4 and the reporting
rates of step 8 are those of the row's day (`drift`).
"""

from typing import Dict, Iterator, Optional, Tuple

import numpy as np

from kaml_tf import schema as schema_lib
from kaml_tf.datasets.simulation import delays
from kaml_tf.datasets.simulation import interest_tags
from kaml_tf.datasets.simulation import sampling
from kaml_tf.datasets.simulation import world as world_lib
from kaml_tf.datasets.simulation.config import ACTIONS
from kaml_tf.datasets.simulation.config import ACTIVATION
from kaml_tf.datasets.simulation.config import NUM_ACTIONS
from kaml_tf.datasets.simulation.config import PAYMENT
from kaml_tf.datasets.simulation.config import RE_ENGAGEMENT
from kaml_tf.datasets.simulation.config import REGISTRATION
from kaml_tf.datasets.simulation.config import RETENTION
from kaml_tf.datasets.simulation.config import SimulationConfig


def _sigmoid(x: np.ndarray) -> np.ndarray:
  return 0.5 * (1.0 + np.tanh(0.5 * x))


def generate_rows(
  config: SimulationConfig, world: world_lib.World, day: int, n: int, rng: np.random.Generator
) -> Dict[str, np.ndarray]:
  """Draws `n` rows of day `day` (steps 4-8 of the module docstring).

  Returns:
    Columns keyed like `simulator.default_schema(config).record_dtypes()`, each (n,): int64 ids, key
    fields and labels, float32 dense features.
  """
  c, w = config, world
  groups = sampling.draw(sampling.cdf(np.asarray(c.target_shares)), rng.random(n))
  task_sampler, report_rate = w.task_sampler, w.report_rate
  if w.drift is not None:
    task_sampler = w.drift.task_sampler(day, task_sampler)
    report_rate = w.drift.report_rate(day, report_rate)
  task = task_sampler.draw(groups, rng.random(n))
  ad = task * c.ads_per_task + sampling.draw(sampling.cdf(w.creative_probs), rng.random(n))
  user = w.user_sampler.draw(groups, rng.random(n))
  category = w.task_category[task]
  ids = {
    "user_id": user,
    "ad_id": ad,
    schema_lib.AD_TASK_ID: task,
    "advertiser_id": w.task_advertiser[task],
    "app_id": w.task_app[task],
    "category_id": category,
    "hour": sampling.draw(sampling.cdf(np.asarray(world_lib.HOUR_TRAFFIC)), rng.random(n)),
    "day_of_week": np.full(n, day % 7, np.int64),
    "network": sampling.draw(sampling.cdf(np.asarray(world_lib.NETWORK_SHARES)), rng.random(n)),
    "slot_id": sampling.draw(sampling.cdf(w.slot_probs), rng.random(n)),
  }
  for name, values in w.user_attributes.items():
    ids[name] = values[user]

  eps = rng.standard_normal((n, len(world_lib.DENSE_FEATURES)))
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
    for i, (name, entity, offset, scale, noise) in enumerate(world_lib.DENSE_FEATURES)
  }

  target = w.task_target[task]
  logits = (
    np.asarray(c.base_logits)[None, :]
    + c.target_boost * (target[:, None] == np.arange(NUM_ACTIONS)[None, :])
    + w.user_effect[user]
    + c.interaction_std
    / np.sqrt(world_lib.INTEREST_DIM)
    * np.sum(w.user_interest[user] * w.category_interest[category], axis=1)[:, None]
    + w.category_effect[category]
    + w.task_effect[task]
    + c.ad_effect_std * w.ad_quality[ad][:, None]
    + c.session_effect * xi[:, None]
  )
  for name in world_lib.CONTEXT_FEATURES:
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
  reported = truth & (rng.random((n, NUM_ACTIONS)) < report_rate[task])

  columns = {
    schema_lib.AD_TASK_ID: task,
    schema_lib.TARGET_ACTION: target,
    schema_lib.DAY: np.full(n, day, np.int64),
  }
  # Fields in the order of `simulator.default_schema(config).record_dtypes()`.
  columns.update({k: ids[k].astype(np.int64) for k in world_lib.cardinalities(c)})
  columns.update(dense)
  for j, action in enumerate(ACTIONS):
    columns[schema_lib.LABEL_PREFIX + action] = reported[:, j].astype(np.int64)
  for j, action in enumerate(ACTIONS):
    columns[schema_lib.TRUE_LABEL_PREFIX + action] = truth[:, j].astype(np.int64)
  return columns


def iter_chunks(
  config: SimulationConfig, world: Optional[world_lib.World] = None
) -> Iterator[Tuple[int, Dict[str, np.ndarray]]]:
  """Yields `(day, columns)` chunks of at most `chunk_rows` rows, in day order."""
  for day, columns, _ in iter_chunks_with_pending(config, world):
    yield day, columns


def iter_chunks_with_pending(
  config: SimulationConfig, world: Optional[world_lib.World] = None
) -> Iterator[Tuple[int, Dict[str, np.ndarray], Optional[np.ndarray]]]:
  """`iter_chunks` with each chunk's pending conversions (`delays.withhold`).

  Yields:
    `(day, columns, pending)`: pending is (n, NUM_ACTIONS) bool, or None without
    `report_delay_days`.
  """
  world = world_lib.build_world(config) if world is None else world
  # Drawn from a stream of their own, after the rest: every other column stays the same.
  tags = interest_tags.user_tags(config, world) if config.interest_tags else None
  for day, rows in enumerate(config.rows_per_day()):
    for chunk, start in enumerate(range(0, rows, config.chunk_rows)):
      n = min(config.chunk_rows, rows - start)
      rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(1, day, chunk)))
      columns = generate_rows(config, world, day, n, rng)
      if tags is not None:
        columns[interest_tags.NAME] = tags[columns["user_id"]]
      pending = None
      if config.report_delay_days:
        delay = delays.draw_delays(config, day, chunk, n)
        pending = delays.withhold(columns, delay, config.observed_day)
      yield day, columns, pending


def simulate(
  config: SimulationConfig, world: Optional[world_lib.World] = None
) -> Dict[str, np.ndarray]:
  """All rows (train window then test days) in memory, for tests and small experiments.

  Returns:
    Columns (num_rows,) keyed like `simulator.default_schema(config).record_dtypes()`; test rows are
    those with `day >= config.train_days`.
  """
  chunks = [columns for _, columns in iter_chunks(config, world)]
  return {k: np.concatenate([ch[k] for ch in chunks]) for k in chunks[0]}
