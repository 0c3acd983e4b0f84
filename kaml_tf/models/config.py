"""`ModelConfig`: the typed hyper-parameters of every model the builder makes.

The defaults are the MMoE of the benchmark peer (DeepCTR's MMoE): 16-dimensional embeddings
(the schema's default `embedding_dim`), 4 experts of (256, 128), towers of (64,), ReLU, no
dropout; it trains with batch 5000 and Adam at 1e-3 (paper 4.1.3; those two belong to the
training config). The baselines' own defaults follow DeepCTR's as well (shared bottom (256, 128);
PLE 2 levels of 1 task + 1 shared expert; the same expert and tower widths everywhere), so the
models differ in structure, not in width.

The config is saved as JSON next to the checkpoints (`to_dict`) and restored for export
(`from_dict`); both directions validate every field with a message quoting the bad value.
"""

import dataclasses
from typing import Any, Dict, Mapping, Optional, Tuple

from kaml_tf import configs
from kaml_tf.layers import checks

BACKBONES = ("single_task", "shared_bottom", "mmoe", "ple", "star", "taml")

_OWNER = "ModelConfig"


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Hyper-parameters of the model (see `build_model`).

  Attributes:
    backbone: One of `BACKBONES`: how the per-action representations h_j are made.
    embedding_dim: Width of every embedding table; `None` uses each feature's `embedding_dim`
      from the schema (16 unless the schema says otherwise).
    activation: Keras activation name of every hidden layer.
    dropout: Dropout rate after every hidden layer (experts, bottoms, STAR layers, towers and
      HKE sub-towers; not gates or logits), in [0, 1); active in training only.
    embedding_l2: L2 coefficient on the embedding rows looked up in the batch:
      `embedding_l2 * mean_i sum_f ||e_f(x_i)||^2` over every sparse feature's table (each
      action's tables for single_task), added to `model.losses` (see `FeatureEmbedding`).
    expert_units: Widths of every expert MLP (mmoe, ple, taml).
    num_experts: Experts of the MMoE (M in eq. 2-3).
    num_levels: Stacked CGC levels of PLE.
    num_task_experts: PLE: experts per action and level. TAML: general task experts per action.
    num_shared_experts: Shared experts (PLE: per level; TAML: shared by every learner).
    num_learners: TAML: learners per action.
    num_learner_experts: TAML: experts owned by each learner.
    distillation_weight: TAML: weight of the self-distillation term (`model.losses`).
    bottom_units: single_task: each action's own MLP; shared_bottom: the shared MLP (empty for
      towers straight on the embeddings).
    star_units: STAR: widths of the star-topology layers.
    tower_units: Hidden widths of each action's tower (eq. 4); empty = logit on h_j.
    hke: Whether the towers are HKE towers (eq. 9-10); adds the `hke_indicator` input.
    hke_sub_tower_units: HKE: widths of each of the original / extended sub-towers (eq. 9).
    hke_final_units: HKE: hidden widths of the MLP after the merge (eq. 10), before the logit.
  """

  backbone: str = "mmoe"
  embedding_dim: Optional[int] = None
  activation: str = "relu"
  dropout: float = 0.0
  embedding_l2: float = 0.0
  expert_units: Tuple[int, ...] = (256, 128)
  num_experts: int = 4
  num_levels: int = 2
  num_task_experts: int = 1
  num_shared_experts: int = 1
  num_learners: int = 2
  num_learner_experts: int = 1
  distillation_weight: float = 0.1
  bottom_units: Tuple[int, ...] = (256, 128)
  star_units: Tuple[int, ...] = (256, 128)
  tower_units: Tuple[int, ...] = (64,)
  hke: bool = False
  hke_sub_tower_units: Tuple[int, ...] = (64,)
  hke_final_units: Tuple[int, ...] = (32,)

  def __post_init__(self):
    if self.backbone not in BACKBONES:
      raise ValueError(
        f"{_OWNER}: backbone must be one of {list(BACKBONES)}, got {self.backbone!r}"
      )
    if self.embedding_dim is not None:
      checks.positive_int(self.embedding_dim, "embedding_dim", _OWNER)
    if not isinstance(self.activation, str):
      raise ValueError(
        f"{_OWNER}: activation must be the name of a Keras activation, got {self.activation!r}"
      )
    checks.activation(self.activation, _OWNER)
    checks.dropout_rate(self.dropout, _OWNER)
    object.__setattr__(
      self, "embedding_l2", checks.non_negative_float(self.embedding_l2, "embedding_l2", _OWNER)
    )
    for name in (
      "num_experts",
      "num_levels",
      "num_task_experts",
      "num_shared_experts",
      "num_learners",
      "num_learner_experts",
    ):
      checks.positive_int(getattr(self, name), name, _OWNER)
    checks.non_negative_float(self.distillation_weight, "distillation_weight", _OWNER)
    if not isinstance(self.hke, bool):
      raise ValueError(f"{_OWNER}: hke must be true or false, got {self.hke!r}")
    for name, allow_empty in (
      ("expert_units", False),
      ("bottom_units", True),
      ("star_units", False),
      ("tower_units", True),
      ("hke_sub_tower_units", False),
      ("hke_final_units", True),
    ):
      # Lists (from JSON) become tuples so the frozen config stays hashable and comparable.
      object.__setattr__(
        self, name, checks.units(getattr(self, name), name, _OWNER, allow_empty=allow_empty)
      )

  def to_dict(self) -> Dict[str, Any]:
    """A JSON-ready dict (tuples as lists) that `from_dict` turns back into an equal config."""
    return configs.to_dict(self)

  @classmethod
  def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> "ModelConfig":
    """Builds a config from its dict form; unknown or bad fields fail naming `source`.

    Missing fields take their defaults, so configs saved before a field existed still load.

    Raises:
      ValueError: naming `source` and the offending field.
    """
    try:
      return configs.from_dict(cls, data, source)
    except ValueError as e:
      message = str(e)
      raise ValueError(message if message.startswith(source) else f"{source}: {e}") from None
