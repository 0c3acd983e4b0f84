"""Search strategies over a `SearchSpace`: coordinate descent and random search.

Both are written as generators that propose a point, receive its validation score (higher
is better) through `send`, and stop at the trial budget. They are deterministic given the
scores, so a tuning job that is killed and rerun replays the same proposals, finds the
finished trials on disk and continues where it stopped.

* `coordinate_search`: from the base point, try every candidate of one coordinate with the
  others fixed, keep the best (strict improvement only: ties keep the incumbent, which is the
  cheaper or the default choice), move to the next coordinate, and cycle until a full cycle
  improves nothing or the budget is spent. Cheap on 2 cores, and on this problem, where each
  per-action ADM choice moves mainly its own head, close to a per-action search.
* `random_search`: the base point, then points drawn uniformly from the product of the
  candidate lists (seeded, without repeats).
"""

import random
from typing import Generator, List, Optional, Sequence

from kaml_tf.tuning import search_space as space_lib

COORDINATE = "coordinate"
RANDOM = "random"
STRATEGIES = (COORDINATE, RANDOM)

Proposals = Generator[space_lib.Point, Optional[float], None]


def _key(point: space_lib.Point) -> tuple:
  return tuple(sorted(point.items()))


def _skipped(coordinate: space_lib.Coordinate, point: space_lib.Point) -> bool:
  return bool(coordinate.unless_zero) and point[coordinate.unless_zero] == 0


def grid_size(coordinates: Sequence[space_lib.Coordinate]) -> int:
  """Distinct points of the grid: a threshold pinned while its action's weight is 0 counts
  once (as both strategies try it)."""
  by_name = {c.name: c for c in coordinates}
  pinned = {c.unless_zero for c in coordinates if c.unless_zero in by_name}
  size = 1
  for coordinate in coordinates:
    if coordinate.name in pinned:
      continue
    if coordinate.unless_zero in by_name:
      weights = by_name[coordinate.unless_zero].values
      zero = sum(1 for w in weights if w == 0)
      size *= zero + (len(weights) - zero) * len(coordinate.values)
    else:
      size *= len(coordinate.values)
  return size


def coordinate_search(
  base: space_lib.Point, coordinates: Sequence[space_lib.Coordinate], budget: int
) -> Proposals:
  """Coordinate descent; yields points, expects each one's score sent back."""
  best = dict(base)
  best_score = yield dict(best)
  tried = {_key(best)}
  trials = 1
  improved = True
  while improved and trials < budget:
    improved = False
    for coordinate in coordinates:
      if _skipped(coordinate, best):
        continue
      for value in coordinate.values:
        candidate = dict(best, **{coordinate.name: value})
        if _key(candidate) in tried:
          continue
        if trials >= budget:
          return
        tried.add(_key(candidate))
        score = yield candidate
        trials += 1
        if score is not None and (best_score is None or score > best_score):
          best, best_score, improved = candidate, score, True


def random_search(
  base: space_lib.Point, coordinates: Sequence[space_lib.Coordinate], budget: int, seed: int
) -> Proposals:
  """The base point, then up to `budget - 1` distinct random points of the grid."""
  yield dict(base)
  rng = random.Random(seed)
  # Sample indices lazily: the product grows as (candidates)^(2N + 4), far too big to list.
  sizes = [len(c.values) for c in coordinates]
  total = 1
  for size in sizes:
    total *= size
  seen = {_key(base)}
  draws = 0
  while len(seen) < budget and draws < 100 * budget:
    draws += 1
    point = dict(base)
    for coordinate in coordinates:
      point[coordinate.name] = rng.choice(coordinate.values)
    for coordinate in coordinates:
      # A threshold means nothing for a switched-off action: pin it so that such points
      # are not tried twice under different thresholds.
      if _skipped(coordinate, point):
        point[coordinate.name] = base[coordinate.name]
    if _key(point) in seen:
      continue
    seen.add(_key(point))
    yield point
    if len(seen) >= total:
      return


def proposals(
  strategy: str,
  base: space_lib.Point,
  coordinates: List[space_lib.Coordinate],
  budget: int,
  seed: int,
) -> Proposals:
  """The generator of `strategy` (one of `STRATEGIES`)."""
  if strategy == COORDINATE:
    return coordinate_search(base, coordinates, budget)
  if strategy == RANDOM:
    return random_search(base, coordinates, budget, seed)
  raise ValueError(
    f"tune_search: unknown strategy {strategy!r}; expected one of {list(STRATEGIES)}"
  )
