"""Sampling primitives of the simulator: Zipf weights, inverse-CDF draws, per-group draws.

Every draw takes its uniforms from the caller, so the caller's seeded stream alone decides the
result.
"""

import dataclasses
from typing import Sequence

import numpy as np


def zipf_probs(n: int, exponent: float) -> np.ndarray:
  """P(rank r) ∝ (1 + r)^-exponent for r = 0..n-1, shape (n,)."""
  weights = (1.0 + np.arange(n, dtype=np.float64)) ** -exponent
  return weights / weights.sum()


def cdf(probs: np.ndarray) -> np.ndarray:
  """The CDF of `probs` along the last axis, its last value exactly 1 (no rounding gap)."""
  out = np.cumsum(probs, axis=-1)
  out /= out[..., -1:]
  out[..., -1] = 1.0
  return out


def draw(cumulative: np.ndarray, u: np.ndarray) -> np.ndarray:
  """Inverse-CDF sampling: indices (n,) for uniforms u (n,) in [0, 1), given a `cdf` (k,)."""
  return np.minimum(np.searchsorted(cumulative, u, side="right"), cumulative.size - 1)


@dataclasses.dataclass(frozen=True)
class GroupedSampler:
  """Samples an item of a per-group distribution for each row with one `searchsorted`.

  Group g's CDF is stored shifted by g in one sorted array, so `g + u` lands in g's block.
  """

  items: np.ndarray  # (total,) item of each block position.
  shifted_cdf: np.ndarray  # (total,) g + cdf_g, concatenated over groups.
  block_end: np.ndarray  # (G,) one past the last position of each group's block.

  @classmethod
  def build(
    cls, items_per_group: Sequence[np.ndarray], probs_per_group: Sequence[np.ndarray]
  ) -> "GroupedSampler":
    shifted = [g + cdf(p) if p.size else p for g, p in enumerate(probs_per_group)]
    return cls(
      items=np.concatenate(items_per_group).astype(np.int64),
      shifted_cdf=np.concatenate(shifted),
      block_end=np.cumsum([len(i) for i in items_per_group]),
    )

  def draw(self, groups: np.ndarray, u: np.ndarray) -> np.ndarray:
    pos = np.searchsorted(self.shifted_cdf, groups + u, side="right")
    # Rounding of g + u near g + 1 must not spill into the next group's block.
    return self.items[np.minimum(pos, self.block_end[groups] - 1)]
