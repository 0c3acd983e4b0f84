"""What a tuning job may change in a run, as named coordinates with candidate values.

A point of the space is a flat `{coordinate name: value}` dict, for example
`{"learning_rate": 1e-3, "extended_weight/retention": 0.0, "alpha/retention": 5}`; `apply`
turns it into a `RunConfig`. Only coordinates that mean something for the base run are
searched: ADM thresholds and extended weights only under the `adm` mask, the ranking weight
gamma only when the base run uses RLU (gamma < 1), so that a base-mask baseline stays the
baseline it is and spends its budget on what it has (learning rate, dropout, embedding L2).
Every candidate list contains the base run's own value, so the search starts from it.
"""

import dataclasses
from typing import Any, Dict, List, Sequence, Tuple

from kaml_tf import configs
from kaml_tf import schema as schema_lib
from kaml_tf.data import masks as masks_lib
from kaml_tf.training import config as config_lib

LEARNING_RATE = "learning_rate"
RANK_GAMMA = "rank_gamma"
DROPOUT = "dropout"
EMBEDDING_L2 = "embedding_l2"
ALPHA = "alpha"
EXTENDED_WEIGHT = "extended_weight"

Point = Dict[str, Any]


@dataclasses.dataclass(frozen=True)
class SearchSpace:
  """Candidate values per knob; an empty tuple leaves the knob at the base run's value."""

  learning_rate: Tuple[float, ...] = configs.field(
    (5e-4, 1e-3, 2e-3), "Learning rates to try.", flag="tune_learning_rate"
  )
  rank_gamma: Tuple[float, ...] = configs.field(
    (0.8, 0.9, 1.0),
    "rank_gamma values (gamma of eq. 13) to try (only when the base run uses RLU).",
    flag="tune_rank_gamma",
  )
  dropout: Tuple[float, ...] = configs.field(
    (), "Dropout rates of every backbone and tower to try.", flag="tune_dropout"
  )
  embedding_l2: Tuple[float, ...] = configs.field(
    (), "Embedding L2 coefficients to try.", flag="tune_embedding_l2"
  )
  alpha: Tuple[int, ...] = configs.field(
    (), "ADM thresholds to try for each action separately (--mask=adm only).", flag="tune_alpha"
  )
  extended_weight: Tuple[float, ...] = configs.field(
    (0.0, 0.5, 1.0),
    "Extended weights to try for each action separately; 0 switches ADM off for that action "
    "(--mask=adm only).",
    flag="tune_extended_weight",
  )

  def __post_init__(self):
    for field in dataclasses.fields(self):
      object.__setattr__(self, field.name, tuple(getattr(self, field.name)))
    checks = (
      (LEARNING_RATE, lambda v: v > 0, "> 0"),
      (RANK_GAMMA, lambda v: 0 <= v <= 1, "in [0, 1]"),
      (DROPOUT, lambda v: 0 <= v < 1, "in [0, 1)"),
      (EMBEDDING_L2, lambda v: v >= 0, ">= 0"),
      (ALPHA, lambda v: float(v).is_integer() and v >= 1, "integers >= 1"),
      (EXTENDED_WEIGHT, lambda v: 0 <= v <= 1, "in [0, 1]"),
    )
    for name, ok, expected in checks:
      bad = [v for v in getattr(self, name) if not ok(v)]
      if bad:
        raise config_lib.ConfigError.of(SearchSpace, name, f"values must be {expected}, got {bad}")


@dataclasses.dataclass(frozen=True)
class Coordinate:
  """One searched knob: its name in a point and its candidate values, base value first."""

  name: str
  values: Tuple[Any, ...]
  # For per-action ADM thresholds: the extended-weight coordinate that switches the action
  # off; a threshold is not worth a trial while that weight is 0.
  unless_zero: str = ""


def _with_base(base_value: Any, candidates: Sequence[Any]) -> Tuple[Any, ...]:
  return (base_value,) + tuple(v for v in candidates if v != base_value)


def _per_action(values: Tuple, schema: schema_lib.Schema, default: Any) -> Tuple:
  """A per-action config tuple (empty, one value or N values) as N values."""
  if not values:
    return (default,) * schema.num_actions
  return values * schema.num_actions if len(values) == 1 else tuple(values)


def base_point(run_config: config_lib.RunConfig, schema: schema_lib.Schema) -> Point:
  """The base run as a point (every knob, searched or not)."""
  point: Point = {
    LEARNING_RATE: run_config.optim.learning_rate,
    RANK_GAMMA: run_config.loss.gamma,
    DROPOUT: run_config.model.dropout,
    EMBEDDING_L2: run_config.model.embedding_l2,
  }
  alpha = run_config.data.alpha or masks_lib.default_alpha(schema)
  weights = _per_action(run_config.loss.extended_weight, schema, 1.0)
  for action, a, w in zip(schema.actions, alpha, weights):
    point[f"{ALPHA}/{action}"] = int(a)
    point[f"{EXTENDED_WEIGHT}/{action}"] = float(w)
  return point


def coordinates(
  space: SearchSpace, run_config: config_lib.RunConfig, schema: schema_lib.Schema
) -> List[Coordinate]:
  """The coordinates searched for `run_config`, in search order.

  Global knobs first (learning rate, regularisation, gamma), then per action its extended
  weight and threshold: the shared optimisation settings move every head, so they are settled
  before the per-action ADM choices that trade heads against each other.
  """
  base = base_point(run_config, schema)
  names = [LEARNING_RATE, DROPOUT, EMBEDDING_L2]
  if run_config.loss.gamma < 1.0:
    names.append(RANK_GAMMA)
  out = [Coordinate(n, _with_base(base[n], getattr(space, n))) for n in names]
  if run_config.data.mask_policy == masks_lib.ADM:
    for action in schema.actions:
      weight, alpha = f"{EXTENDED_WEIGHT}/{action}", f"{ALPHA}/{action}"
      out.append(Coordinate(weight, _with_base(base[weight], space.extended_weight)))
      out.append(Coordinate(alpha, _with_base(base[alpha], space.alpha), unless_zero=weight))
  return [c for c in out if len(c.values) > 1]


def apply(
  point: Point, run_config: config_lib.RunConfig, schema: schema_lib.Schema
) -> config_lib.RunConfig:
  """`run_config` with the point's values."""
  alpha = tuple(int(point[f"{ALPHA}/{a}"]) for a in schema.actions)
  weights = tuple(float(point[f"{EXTENDED_WEIGHT}/{a}"]) for a in schema.actions)
  adm = run_config.data.mask_policy == masks_lib.ADM
  return dataclasses.replace(
    run_config,
    data=dataclasses.replace(run_config.data, alpha=alpha if adm else run_config.data.alpha),
    model=dataclasses.replace(
      run_config.model, dropout=float(point[DROPOUT]), embedding_l2=float(point[EMBEDDING_L2])
    ),
    loss=dataclasses.replace(
      run_config.loss,
      gamma=float(point[RANK_GAMMA]),
      extended_weight=weights if adm else run_config.loss.extended_weight,
    ),
    optim=dataclasses.replace(run_config.optim, learning_rate=float(point[LEARNING_RATE])),
  )
