"""The protocol an experiment's runs follow: how each configuration is trained and selected.

`VALIDATION` (the default; the fair protocol of `docs/results/fair_protocol/`): every run
holds the last `validation_days` train days out, is early-stopped on them (`patience`
evaluations without a better per-target overall AUC, also every `eval_every_steps`;
`--epochs` is the maximum) and calibrated on them; ADM configurations join point-in-time
(daily) statistics. Each configuration's settings are first chosen on validation by
`kaml_tf.tuning` with the same number of trials (`trials_per_config`, random search over the
configuration's own knobs of `search_space`); each seed's final run then uses the chosen
settings and is evaluated once on the test split.

`FIXED_EPOCHS`: every run trains `--epochs` epochs with the suite's settings and static
statistics, no validation; kept to reproduce the committed results of
`docs/results/{baselines,ablation,oracle,kuairand}/`, which were run that way.
"""

import dataclasses
from typing import Any, Mapping

from kaml_tf import configs
from kaml_tf.tuning import search_space as space_lib

VALIDATION = "validation"
FIXED_EPOCHS = "fixed_epochs"
PROTOCOLS = (VALIDATION, FIXED_EPOCHS)

# What each configuration may search under the validation protocol (an experiment overrides
# any field with --search_space): the tuner searches only the knobs that mean something for
# the configuration (`kaml_tf.tuning.search_space.coordinates`), so a base-mask baseline
# searches learning rate, dropout and embedding L2 (3 x 2 x 2 = 12 points) and an ADM / RLU
# configuration also its extended weight and threshold per action and gamma.
DEFAULT_SPACE = space_lib.SearchSpace(
  learning_rate=(5e-4, 1e-3, 2e-3),
  dropout=(0.0, 0.1),
  embedding_l2=(0.0, 1e-4),
  rank_gamma=(0.8, 0.9, 1.0),
  extended_weight=(0.25, 0.5, 1.0),
  alpha=(1, 2, 3, 5),
)


@dataclasses.dataclass(frozen=True)
class ProtocolConfig:
  """How every run of an experiment is trained and selected (module docstring)."""

  protocol: str = configs.field(
    VALIDATION,
    "validation: settings chosen per configuration on the validation days, runs early-stopped "
    "and calibrated on them, point-in-time statistics; fixed_epochs: --epochs epochs with the "
    "suite's settings (the committed docs/results/{baselines,ablation,oracle,kuairand}).",
    choices=PROTOCOLS,
  )
  validation_days: int = configs.field(
    1,
    "validation protocol: the last K train days each run validates on (never the test split).",
    flag="protocol_validation_days",
  )
  patience: int = configs.field(
    2,
    "validation protocol: stop a run after this many validation evaluations without a better "
    "per-target overall AUC (--epochs is the maximum).",
    flag="protocol_patience",
  )
  eval_every_steps: int = configs.field(
    0,
    "validation protocol: also validate every N steps (0: after each epoch only).",
    flag="protocol_eval_every_steps",
  )
  calibrate: bool = configs.field(
    True,
    "validation protocol: fit per-action Platt scaling on the validation days.",
    flag="protocol_calibrate",
  )
  trials_per_config: int = configs.field(
    6,
    "validation protocol: trials of the settings search, the same for every configuration "
    "(each one an early-stopped run, the suite's settings first).",
  )

  def __post_init__(self):
    if self.protocol not in PROTOCOLS:
      raise configs.ConfigError.of(
        ProtocolConfig, "protocol", f"must be one of {list(PROTOCOLS)}, got {self.protocol!r}"
      )
    for name, lowest in (
      ("validation_days", 1),
      ("patience", 1),
      ("eval_every_steps", 0),
      ("trials_per_config", 1),
    ):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
        raise configs.ConfigError.of(
          ProtocolConfig, name, f"must be an integer >= {lowest}, got {value!r}"
        )

  @property
  def selects(self) -> bool:
    """Whether runs are selected on validation (the validation protocol)."""
    return self.protocol == VALIDATION

  def describe(self) -> Mapping[str, Any]:
    """The protocol's settings as JSON (experiment.json, results)."""
    return dataclasses.asdict(self)


def search_space(overrides: Mapping[str, Any]) -> space_lib.SearchSpace:
  """`DEFAULT_SPACE` with the fields of `overrides` replaced (ValueError naming a bad one)."""
  known = {f.name for f in dataclasses.fields(space_lib.SearchSpace)}
  unknown = sorted(set(overrides) - known)
  if unknown:
    raise ValueError(f"search_space: unknown field(s) {unknown}; expected some of {sorted(known)}")
  return dataclasses.replace(DEFAULT_SPACE, **{k: tuple(v) for k, v in overrides.items()})
