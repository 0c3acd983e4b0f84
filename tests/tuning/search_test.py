"""Search strategies: exact proposal sequences for known scores, budgets, replay."""

import pytest

from kaml_tf.tuning import search
from kaml_tf.tuning import search_space

BASE = {"lr": 1.0, "w/a": 1.0, "alpha/a": 2}
COORDS = [
  search_space.Coordinate("lr", (1.0, 0.5, 2.0)),
  search_space.Coordinate("w/a", (1.0, 0.0)),
  search_space.Coordinate("alpha/a", (2, 5), unless_zero="w/a"),
]


def _drive(proposals, score_of):
  points = []
  score = None
  while True:
    try:
      point = proposals.send(score) if points else next(proposals)
    except StopIteration:
      return points
    points.append(point)
    score = score_of(point)


def test_coordinate_search_keeps_strict_improvements_and_skips_switched_off_thresholds():
  # lr 0.5 is best; switching the action off (w=0) is better still, so its threshold is
  # never tried; the second cycle tries the other learning rates with w=0, finds nothing
  # better and stops.
  scores = {(1.0, 1.0, 2): 0.60, (0.5, 1.0, 2): 0.65, (2.0, 1.0, 2): 0.61, (0.5, 0.0, 2): 0.66}
  points = _drive(
    search.coordinate_search(BASE, COORDS, budget=20),
    lambda p: scores.get((p["lr"], p["w/a"], p["alpha/a"]), 0.5),
  )
  assert [(p["lr"], p["w/a"], p["alpha/a"]) for p in points] == [
    (1.0, 1.0, 2),
    (0.5, 1.0, 2),
    (2.0, 1.0, 2),
    (0.5, 0.0, 2),
    (1.0, 0.0, 2),
    (2.0, 0.0, 2),
  ]


def test_coordinate_search_ties_keep_the_incumbent_and_thresholds_are_tried():
  points = _drive(search.coordinate_search(BASE, COORDS, budget=20), lambda p: 0.5)
  assert [(p["lr"], p["w/a"], p["alpha/a"]) for p in points] == [
    (1.0, 1.0, 2),
    (0.5, 1.0, 2),
    (2.0, 1.0, 2),
    (1.0, 0.0, 2),
    (1.0, 1.0, 5),
  ]


@pytest.mark.parametrize("budget", [1, 2, 3])
def test_coordinate_search_stops_at_the_budget(budget):
  points = _drive(search.coordinate_search(BASE, COORDS, budget=budget), lambda p: 0.5)
  assert len(points) == budget
  assert points[0] == BASE


def test_coordinate_search_second_cycle_revisits_earlier_coordinates():
  # After w/a improves, lr candidates are new points again (other w/a), so cycle 2 tries them.
  def score(p):
    return {(1.0, 0.0): 0.7, (2.0, 0.0): 0.8}.get((p["lr"], p["w/a"]), 0.5)

  points = _drive(search.coordinate_search(BASE, COORDS, budget=20), score)
  keys = [(p["lr"], p["w/a"], p["alpha/a"]) for p in points]
  assert keys[:4] == [(1.0, 1.0, 2), (0.5, 1.0, 2), (2.0, 1.0, 2), (1.0, 0.0, 2)]
  assert (0.5, 0.0, 2) in keys and (2.0, 0.0, 2) in keys
  assert len(keys) == len(set(keys))


def test_random_search_is_seeded_distinct_and_starts_from_the_base():
  first = _drive(search.random_search(BASE, COORDS, budget=6, seed=3), lambda p: 0.5)
  again = _drive(search.random_search(BASE, COORDS, budget=6, seed=3), lambda p: 0.1)
  assert first == again
  assert first[0] == BASE and len(first) == 6
  keys = [tuple(sorted(p.items())) for p in first]
  assert len(set(keys)) == 6
  # A switched-off action keeps the base threshold, so no duplicate under another alpha.
  assert all(p["alpha/a"] == 2 for p in first if p["w/a"] == 0.0)


def test_random_search_stops_when_the_grid_is_exhausted():
  # Grid: 3 lr x (w=1: 2 alphas + w=0: 1) = 9 distinct points.
  points = _drive(search.random_search(BASE, COORDS, budget=50, seed=0), lambda p: 0.5)
  assert len(points) == 9


def test_unknown_strategy_names_the_flag():
  with pytest.raises(ValueError, match="tune_search: unknown strategy 'grid'"):
    search.proposals("grid", BASE, COORDS, 3, 0)


def test_grid_size_counts_a_threshold_once_while_its_weight_is_zero():
  # lr 3 x (weight 1.0 with 2 thresholds + weight 0.0 with its threshold pinned) = 3 x 3.
  assert search.grid_size(COORDS) == 9
  assert search.grid_size(COORDS[:1]) == 3
  assert search.grid_size([]) == 1
  # Random search finds exactly that many distinct points, and no more.
  points = list(search.random_search(BASE, COORDS, budget=50, seed=0))
  assert len({tuple(sorted(p.items())) for p in points}) == len(points) == 9
