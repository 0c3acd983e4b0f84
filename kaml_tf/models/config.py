"""`ModelConfig`: the typed hyper-parameters of every model the builder makes.

The defaults are the MMoE of the benchmark peer (DeepCTR's MMoE): 16-dimensional embeddings
(the schema's default `embedding_dim`), 4 experts of (256, 128), towers of (64,), ReLU, no
dropout; it trains with batch 5000 and Adam at 1e-3 (paper 4.1.3; those two belong to the
training config). The baselines' own defaults follow DeepCTR's as well (shared bottom (256, 128);
PLE 2 levels of 1 task + 1 shared expert; the same expert and tower widths everywhere), so the
models differ in structure, not in width.

The config is saved as JSON next to the checkpoints (`to_dict`) and restored for export
(`from_dict`); both directions validate every field with a message quoting the bad value, as a
`kaml_tf.configs.ConfigError` naming the field (and its flag: `--model` for `backbone`).
"""

import contextlib
import dataclasses
from typing import Any, Dict, Iterator, Mapping, Optional, Tuple

from kaml_tf import configs
from kaml_tf.layers import checks

BACKBONES = ("single_task", "shared_bottom", "mmoe", "ple", "star", "taml")

_OWNER = "ModelConfig"


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Hyper-parameters of the model (see `build_model`); each field's help says what it sets."""

  backbone: str = configs.field(
    "mmoe",
    "Backbone: how the per-action representations h_j are made.",
    flag="model",
    choices=BACKBONES,
  )
  embedding_dim: Optional[int] = configs.field(
    None,
    "Width of every embedding table (default: each feature's embedding_dim in the schema, "
    "16 unless the schema says otherwise).",
  )
  activation: str = configs.field("relu", "Keras activation name of every hidden layer.")
  dropout: float = configs.field(
    0.0,
    "Dropout rate in [0, 1) after every hidden layer (experts, bottoms, STAR layers, towers "
    "and HKE sub-towers; not gates or logits); active in training only.",
  )
  embedding_l2: float = configs.field(
    0.0,
    "L2 on the embedding rows looked up in the batch: embedding_l2 * mean_i sum_f "
    "||e_f(x_i)||^2 over every sparse feature's table (each action's tables for "
    "single_task), added to model.losses (FeatureEmbedding).",
  )
  expert_units: Tuple[int, ...] = configs.field(
    (256, 128), "Widths of every expert MLP (mmoe, ple, taml)."
  )
  num_experts: int = configs.field(4, "Experts of the MMoE (M in eq. 2-3).")
  num_levels: int = configs.field(2, "PLE: stacked CGC levels.")
  num_task_experts: int = configs.field(
    1, "PLE: experts per action and level. TAML: general task experts per action."
  )
  num_shared_experts: int = configs.field(
    1, "Shared experts (PLE: per level; TAML: shared by every learner)."
  )
  num_learners: int = configs.field(2, "TAML: learners per action.")
  num_learner_experts: int = configs.field(1, "TAML: experts owned by each learner.")
  distillation_weight: float = configs.field(
    0.1, "TAML: weight of the self-distillation term (model.losses)."
  )
  bottom_units: Tuple[int, ...] = configs.field(
    (256, 128),
    "single_task: each action's own MLP; shared_bottom: the shared MLP (empty: towers "
    "straight on the embeddings).",
  )
  star_units: Tuple[int, ...] = configs.field(
    (256, 128), "STAR: widths of the star-topology layers."
  )
  tower_units: Tuple[int, ...] = configs.field(
    (64,), "Hidden widths of each action's tower (eq. 4); empty: the logit on h_j."
  )
  hke: bool = configs.field(
    False, "Hierarchical knowledge extraction towers (eq. 9-10); adds the hke_indicator input."
  )
  hke_sub_tower_units: Tuple[int, ...] = configs.field(
    (64,), "HKE: widths of each of the original / extended sub-towers (eq. 9)."
  )
  hke_final_units: Tuple[int, ...] = configs.field(
    (32,), "HKE: hidden widths of the MLP after the merge (eq. 10), before the logit."
  )

  def __post_init__(self):
    with _naming("backbone"):
      if self.backbone not in BACKBONES:
        raise ValueError(
          f"{_OWNER}: backbone must be one of {list(BACKBONES)}, got {self.backbone!r}"
        )
    if self.embedding_dim is not None:
      with _naming("embedding_dim"):
        checks.positive_int(self.embedding_dim, "embedding_dim", _OWNER)
    with _naming("activation"):
      if not isinstance(self.activation, str):
        raise ValueError(
          f"{_OWNER}: activation must be the name of a Keras activation, got {self.activation!r}"
        )
      checks.activation(self.activation, _OWNER)
    with _naming("dropout"):
      checks.dropout_rate(self.dropout, _OWNER)
    with _naming("embedding_l2"):
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
      with _naming(name):
        checks.positive_int(getattr(self, name), name, _OWNER)
    with _naming("distillation_weight"):
      checks.non_negative_float(self.distillation_weight, "distillation_weight", _OWNER)
    with _naming("hke"):
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
      with _naming(name):
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


@contextlib.contextmanager
def _naming(name: str) -> Iterator[None]:
  """Turns the ValueError of a check (`kaml_tf.layers.checks`) into a `ConfigError` of `name`."""
  try:
    yield
  except configs.ConfigError:
    raise
  except ValueError as e:
    raise configs.ConfigError(str(e), field=name, flag=configs.flag_of(ModelConfig, name)) from None
