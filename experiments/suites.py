"""The experiment suites: which configurations each paper table trains, every knob explicit.

A suite is a list of `Variant`s (the rows of one of the paper's tables). A variant fixes the
backbone, the mask policy and its ADM thresholds, whether the towers are HKE towers and the
BCE weight gamma of the joint loss (eq. 13; gamma = 1 switches RLU off); everything else (model
widths, optimiser, epochs) is shared by the suite's variants and set by the experiment.

* `baselines` (Table 2): SingleTask, MMoE, SharedBottom, PLE, TAML and STAR with the base mask,
  and KAML (MMoE + ADM + HKE + RLU), in the paper's row order; then KAML's modules as a plug-in
  on the two other expert backbones, PLE+KAML and TAML+KAML (ADM + HKE + RLU on PLE, on TAML),
  which show whether the modules add to the strongest baselines, not only to MMoE.
* `ablation` (Table 4): MMoE, MMoE+ADM, MMoE+ADM+HKE, MMoE+RLU and KAML.
* `oracle` (Table 3's design on simulated logs): Vanilla (base-mask MMoE), KAML and Oracle
  (MMoE trained on the true labels of every action); also evaluated against the true labels.
* `kuairand` (Table 3): the same three on the KuaiRand conversion, where KAML is ADM with alpha
  = 1 for every action plus RLU and no HKE (the targets are drawn at random, so there is no
  distribution discrepancy for HKE to model; paper 4.2.2).

Every simulated suite is also evaluated against the true labels of every action on every test
sample (`oracle_evaluation`): the per-target AUCs of the rare actions rest on a few test
positives (a million-row simulation's test day has about 6 retention-target positives), the
true-label block on every test sample.

Each variant has a role: `kaml` (the row RelaImpr is computed for), `plugin` (KAML's modules on
another backbone: RelaImpr is computed for it too, and it is never a baseline), `baseline`
(candidates for the best baseline of eq. 14) or `reference` (Oracle: an upper bound that uses
labels no real advertiser sends, so it is never "the best baseline").
"""

import dataclasses
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from kaml_tf.data import masks
from kaml_tf.models import config as model_config_lib

# gamma of eq. 13 for the runs with RLU: 0.9 BCE + 0.1 ranking loss (the lead's default).
KAML_GAMMA = 0.9
# Without RLU the joint loss is the masked BCE alone.
NO_RLU_GAMMA = 1.0
# KuaiRand's KAML: one reported conversion in the window makes an action trusted (see
# kaml_tf.datasets.kuairand.conversion); one threshold per action of the default four feedbacks.
KUAIRAND_ALPHA = (1, 1, 1, 1)

BASELINE = "baseline"
KAML = "kaml"
PLUGIN = "plugin"
REFERENCE = "reference"
ROLES = (BASELINE, KAML, PLUGIN, REFERENCE)
# The roles whose rows get a RelaImpr against the best baseline.
COMPARED = (KAML, PLUGIN)

# Where a suite's logs come from.
SIMULATED = "simulated"  # --data_dir: the output of pipelines.simulate
KUAIRAND = "kuairand"  # converted from the KuaiRand log, once per seed
DATA_SOURCES = (SIMULATED, KUAIRAND)

# ModelConfig fields a variant sets itself; an experiment may override every other one.
VARIANT_MODEL_FIELDS = ("backbone", "hke")


@dataclasses.dataclass(frozen=True)
class Variant:
  """One configuration of a suite (a row of its table).

  Attributes:
    name: Row label, also the run folder name (`OUT/runs/<name>/seed-<r>`).
    backbone: One of `kaml_tf.models.config.BACKBONES`.
    mask_policy: One of `kaml_tf.data.masks.POLICIES`.
    hke: HKE towers (eq. 9-10); needs the `adm` policy to train the extended sub-towers.
    gamma: BCE weight of the joint loss (eq. 13); 1.0 = no ranking loss (no RLU).
    alpha: ADM thresholds, one per action, or empty for the data path's defaults
      (`kaml_tf.data.masks.DEFAULT_ALPHA`).
    role: One of `ROLES`.
  """

  name: str
  backbone: str = "mmoe"
  mask_policy: str = "base"
  hke: bool = False
  gamma: float = NO_RLU_GAMMA
  alpha: Tuple[int, ...] = ()
  role: str = BASELINE

  def __post_init__(self):
    object.__setattr__(self, "alpha", tuple(self.alpha))
    if not self.name or "/" in self.name or self.name.startswith("."):
      raise ValueError(f"Variant: name must be a non-empty folder name, got {self.name!r}")
    if self.backbone not in model_config_lib.BACKBONES:
      raise ValueError(
        f"Variant {self.name}: backbone must be one of "
        f"{list(model_config_lib.BACKBONES)}, got {self.backbone!r}"
      )
    if self.mask_policy not in masks.POLICIES:
      raise ValueError(
        f"Variant {self.name}: mask_policy must be one of "
        f"{list(masks.POLICIES)}, got {self.mask_policy!r}"
      )
    if self.hke and self.mask_policy != "adm":
      # Paper 4.2.3: the extended sub-towers only ever see ADM's extended samples.
      raise ValueError(
        f"Variant {self.name}: HKE needs the 'adm' mask policy, got {self.mask_policy!r}"
      )
    if self.alpha and self.mask_policy != "adm":
      raise ValueError(
        f"Variant {self.name}: alpha {list(self.alpha)} is only used by the "
        f"'adm' policy, not {self.mask_policy!r}"
      )
    if not 0.0 <= self.gamma <= 1.0:
      raise ValueError(f"Variant {self.name}: gamma must be in [0, 1], got {self.gamma}")
    if self.role not in ROLES:
      raise ValueError(f"Variant {self.name}: role must be one of {list(ROLES)}, got {self.role!r}")

  @property
  def needs_stats(self) -> bool:
    """Whether training needs the ad-task conversion statistics (the ADM policy does)."""
    return self.mask_policy == "adm"

  def model_config(
    self, overrides: Optional[Mapping[str, Any]] = None
  ) -> model_config_lib.ModelConfig:
    """The variant's `ModelConfig`: its backbone and HKE switch plus the shared overrides.

    Args:
      overrides: `ModelConfig` fields shared by every variant of an experiment (e.g. smaller
        widths); `backbone` and `hke` belong to the variant and may not be overridden.

    Raises:
      ValueError: naming the field for an unknown, forbidden or invalid override.
    """
    overrides = dict(overrides or {})
    check_model_overrides(overrides)
    return model_config_lib.ModelConfig.from_dict(
      dict(overrides, backbone=self.backbone, hke=self.hke),
      source=f"model_overrides of {self.name}",
    )

  def settings(self) -> Dict[str, Any]:
    """The variant's knobs as a JSON-ready dict (for results.json and results.md)."""
    return {
      "backbone": self.backbone,
      "mask_policy": self.mask_policy,
      "hke": self.hke,
      "gamma": self.gamma,
      "alpha": list(self.alpha),
      "role": self.role,
    }


def check_model_overrides(overrides: Mapping[str, Any]) -> None:
  """Raises ValueError naming the key unless every key is an overridable ModelConfig field."""
  known = {f.name for f in dataclasses.fields(model_config_lib.ModelConfig)}
  for key in overrides:
    if key in VARIANT_MODEL_FIELDS:
      raise ValueError(
        f"model_overrides: {key!r} is set by each configuration of the suite "
        "and cannot be overridden"
      )
    if key not in known:
      raise ValueError(
        f"model_overrides: unknown ModelConfig field {key!r}; expected some of "
        f"{sorted(known - set(VARIANT_MODEL_FIELDS))}"
      )


@dataclasses.dataclass(frozen=True)
class Suite:
  """A named list of variants evaluated on one kind of data.

  Attributes:
    name: The `--suite` value.
    title: What the suite reproduces (the heading of results.md).
    variants: The configurations, in table row order; exactly one has the `kaml` role.
    data: One of `DATA_SOURCES`.
    oracle_evaluation: Also evaluate every action against the true labels (`--oracle`).
  """

  name: str
  title: str
  variants: Tuple[Variant, ...]
  data: str = SIMULATED
  oracle_evaluation: bool = False

  def __post_init__(self):
    object.__setattr__(self, "variants", tuple(self.variants))
    names = [v.name for v in self.variants]
    if not names or len(set(names)) != len(names):
      raise ValueError(f"Suite {self.name}: needs uniquely named variants, got {names}")
    if self.data not in DATA_SOURCES:
      raise ValueError(
        f"Suite {self.name}: data must be one of {list(DATA_SOURCES)}, got {self.data!r}"
      )
    kaml = [v.name for v in self.variants if v.role == KAML]
    if len(kaml) > 1:
      raise ValueError(f"Suite {self.name}: at most one variant may have the kaml role, got {kaml}")

  @property
  def names(self) -> Tuple[str, ...]:
    return tuple(v.name for v in self.variants)

  @property
  def kaml(self) -> Optional[Variant]:
    """The variant RelaImpr is computed for, or None when the suite has none."""
    return next((v for v in self.variants if v.role == KAML), None)

  def variant(self, name: str) -> Variant:
    for v in self.variants:
      if v.name == name:
        return v
    raise KeyError(f"suite {self.name!r} has no configuration {name!r}; it has {list(self.names)}")

  def select(self, names: Sequence[str]) -> "Suite":
    """The suite restricted to `names` (kept in the suite's row order); empty = all.

    Raises:
      ValueError: naming an unknown configuration.
    """
    if not names:
      return self
    unknown = [n for n in names if n not in self.names]
    if unknown:
      raise ValueError(
        f"configs: suite {self.name!r} has no configuration(s) {unknown}; it has {list(self.names)}"
      )
    return dataclasses.replace(self, variants=tuple(v for v in self.variants if v.name in names))


def _kaml(alpha: Tuple[int, ...] = (), hke: bool = True) -> Variant:
  return Variant("KAML", mask_policy="adm", hke=hke, gamma=KAML_GAMMA, alpha=alpha, role=KAML)


def _plugin(name: str, backbone: str) -> Variant:
  """KAML's modules (ADM + HKE + RLU) on another backbone."""
  return Variant(
    f"{name}+KAML", backbone=backbone, mask_policy="adm", hke=True, gamma=KAML_GAMMA, role=PLUGIN
  )


def _oracle() -> Variant:
  return Variant("Oracle", mask_policy="oracle", role=REFERENCE)


SUITES: Mapping[str, Suite] = {
  "baselines": Suite(
    name="baselines",
    title="Table 2: KAML against the multi-task baselines (base mask), and as a plug-in",
    oracle_evaluation=True,
    variants=(
      Variant("SingleTask", backbone="single_task"),
      Variant("MMoE"),
      Variant("SharedBottom", backbone="shared_bottom"),
      Variant("PLE", backbone="ple"),
      Variant("TAML", backbone="taml"),
      Variant("STAR", backbone="star"),
      _kaml(),
      _plugin("PLE", "ple"),
      _plugin("TAML", "taml"),
    ),
  ),
  "ablation": Suite(
    name="ablation",
    title="Table 4: ablation of ADM, HKE and RLU on MMoE",
    oracle_evaluation=True,
    variants=(
      Variant("MMoE"),
      Variant("MMoE+ADM", mask_policy="adm"),
      Variant("MMoE+ADM+HKE", mask_policy="adm", hke=True),
      Variant("MMoE+RLU", gamma=KAML_GAMMA),
      _kaml(),
    ),
  ),
  "oracle": Suite(
    name="oracle",
    title="Table 3's design on simulated logs: Vanilla, KAML and Oracle",
    variants=(Variant("Vanilla"), _kaml(), _oracle()),
    oracle_evaluation=True,
  ),
  "kuairand": Suite(
    name="kuairand",
    title="Table 3: Vanilla, KAML and Oracle on the KuaiRand conversion",
    variants=(Variant("Vanilla"), _kaml(alpha=KUAIRAND_ALPHA, hke=False), _oracle()),
    data=KUAIRAND,
    oracle_evaluation=True,
  ),
}


def get(name: str) -> Suite:
  """The suite called `name`; ValueError listing the suites otherwise."""
  if name not in SUITES:
    raise ValueError(f"suite: unknown suite {name!r}; expected one of {list(SUITES)}")
  return SUITES[name]
