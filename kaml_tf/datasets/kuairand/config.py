"""What the converted KuaiRand logs depend on: `ConversionConfig`, its checks, the feedbacks.

The protocol each field enters is described in `conversion`.
"""

import dataclasses
import functools
from typing import Any, Dict, Mapping, Tuple

from kaml_tf import configs
from kaml_tf.datasets import fields
from kaml_tf.datasets.incomplete import config as incomplete_config
from kaml_tf.datasets.incomplete.errors import ConversionError  # noqa: F401  (its public name here)

# Action name -> feedback column of the KuaiRand log (0/1 each).
FEEDBACK_COLUMNS: Mapping[str, str] = {
  "like": "label",
  "follow": "is_follow",
  "comment": "is_comment",
  "forward": "is_forward",
  "click": "is_click",
  "long_view": "long_view",
  "profile_enter": "is_profile_enter",
}
# The paper's four feedbacks, actions A..D.
DEFAULT_ACTIONS = ("like", "follow", "comment", "forward")


@dataclasses.dataclass(frozen=True)
class ConversionConfig:
  """Everything the converted logs depend on (see `conversion`)."""

  log_path: str = fields.field(
    dataclasses.MISSING,
    "The KuaiRand log (TSV or CSV with a header, optionally .gz).",
    flag="log",
  )
  user_features_path: str = fields.field(
    dataclasses.MISSING,
    "The KuaiRand user features CSV (one row per user_id).",
    flag="user_features",
  )
  seed: int = fields.field(0, "Seed of the per-video target / reported draws and of the sampling.")
  actions: Tuple[str, ...] = fields.field(
    DEFAULT_ACTIONS,
    "Feedbacks used as conversion actions, in order; known: " + ", ".join(FEEDBACK_COLUMNS) + ".",
  )
  extra_reported_actions: int = fields.field(
    2, "Actions besides its target that each video reports (K; the paper's KAML run: 2)."
  )
  negative_keep_rate: float = incomplete_config.negative_keep_rate_field()
  sample_test_negatives: bool = fields.field(
    True, "Apply the negative sampling to the test split as well as to the train split."
  )
  play_time_features: bool = fields.field(
    False,
    "Keep play_time_ms, duration_ms and comment_stay_time as dense features (the paper "
    "drops them; they are measured after the exposure and leak the labels).",
  )
  allow_missing_users: bool = fields.field(
    False,
    "Accept log users absent from the user features (missing category, mean numeric "
    "values) instead of failing.",
  )
  test_fraction: float = incomplete_config.test_fraction_field()
  embedding_dim: int = fields.field(
    16, "Embedding width written into the schema's sparse features."
  )

  def __post_init__(self):
    object.__setattr__(self, "actions", tuple(self.actions))
    _validate_config(self)

  @property
  def num_actions(self) -> int:
    return len(self.actions)

  def to_dict(self) -> Dict[str, Any]:
    return configs.to_dict(self)

  @classmethod
  def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> "ConversionConfig":
    return configs.from_dict(cls, data, source)


def _validate_config(c: ConversionConfig) -> None:
  """Raises ValueError starting with the field name and quoting the bad value."""
  check = functools.partial(fields.require, c)
  for name in ("log_path", "user_features_path"):
    check(
      isinstance(getattr(c, name), str) and bool(getattr(c, name)), name, "must be a non-empty path"
    )
  check(fields.is_int(c.seed) and c.seed >= 0, "seed", "must be an integer >= 0")
  check(len(c.actions) >= 1, "actions", "needs at least one feedback")
  unknown = [a for a in c.actions if a not in FEEDBACK_COLUMNS]
  check(not unknown, "actions", f"unknown feedback(s) {unknown}; known: {list(FEEDBACK_COLUMNS)}")
  check(len(set(c.actions)) == len(c.actions), "actions", "must not repeat a feedback")
  check(
    fields.is_int(c.extra_reported_actions) and 0 <= c.extra_reported_actions <= len(c.actions) - 1,
    "extra_reported_actions",
    f"must be an integer in [0, {len(c.actions) - 1}] (the actions besides the target)",
  )
  check(
    fields.is_number(c.negative_keep_rate) and 0 <= c.negative_keep_rate <= 1,
    "negative_keep_rate",
    "must be a number in [0, 1]",
  )
  check(
    fields.is_number(c.test_fraction) and 0 < c.test_fraction < 1,
    "test_fraction",
    "must be a number in (0, 1)",
  )
  check(
    fields.is_int(c.embedding_dim) and c.embedding_dim >= 1,
    "embedding_dim",
    "must be an integer >= 1",
  )
  for name in ("sample_test_negatives", "play_time_features", "allow_missing_users"):
    check(isinstance(getattr(c, name), bool), name, "must be true or false")
