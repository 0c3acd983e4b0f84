"""Users' interest tags: the simulation's multi-valued sparse feature (`interest_tags > 0`).

Each user u holds a fixed list of 0 to K = `interest_tags` tags out of `NUM_TAGS`. Tag t has a
direction d_t ~ N(0, I_4) in the users' interest space; u's list is made of the k_u tags of
highest score p_u . d_t + g_ut (p_u: the interest vector that also drives conversions through
the user x category term of the logits, g_ut ~ Gumbel(0, 1)), with k_u uniform in {0, ..., K}.
So the tags carry the interest signal, noisily, and some users have none (the empty list).

Every draw comes from its own stream, `SeedSequence(seed, spawn_key=(2,))`, and the tags are
added to rows after everything else: the other columns, and with `interest_tags = 0` every
output byte, are those of a simulation without the feature.
"""

import numpy as np

from kaml_tf import schema as schema_lib
from kaml_tf.datasets.simulation import world as world_lib
from kaml_tf.datasets.simulation.config import SimulationConfig

NAME = "interest_tags"
NUM_TAGS = 100
_SPAWN_KEY = (2,)


def feature(config: SimulationConfig, embedding_dim: int) -> schema_lib.SparseFeature:
  """The schema entry of the tags: `interest_tags` ids in [0, NUM_TAGS), mean-combined."""
  return schema_lib.SparseFeature(
    name=NAME,
    dtype="int64",
    num_buckets=NUM_TAGS,
    embedding_dim=embedding_dim,
    max_values=config.interest_tags,
    combiner="mean",
  )


def user_tags(config: SimulationConfig, world: world_lib.World) -> np.ndarray:
  """(U, K) int64 each user's tags, best-scored first, padded with -1 (module docstring)."""
  k = config.interest_tags
  rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=_SPAWN_KEY))
  directions = rng.standard_normal((world_lib.INTEREST_DIM, NUM_TAGS))
  num_users = world.user_interest.shape[0]
  scores = world.user_interest @ directions + rng.gumbel(size=(num_users, NUM_TAGS))
  counts = rng.integers(0, k + 1, num_users)
  best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
  return np.where(np.arange(k)[None, :] < counts[:, None], best, -1).astype(np.int64)
