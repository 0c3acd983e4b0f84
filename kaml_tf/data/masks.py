"""Training masks and the HKE indicator, per sample and action (paper section 3.2, eq. 6 and 8).

A mask policy decides which of a sample's N labels a loss may trust:

* `base` (eq. 6): only the sample's target action, `Mask_ij = 1(o_i = j)`;
* `adm` (eq. 8, Attribution Driven Masking): the target action, or any action j whose count of
  reported conversions `c_i^j` by the sample's ad task within the statistics window is at least
  `alpha_j`. Samples targeting "Other" (target -1) take part only through this second term, and
  a sample whose ad task is missing from the statistics falls back to the base mask;
* `all`: every label is trusted, missing reports counting as negatives (the naive approach);
* `oracle`: every action with the complete (true) labels; simulated data only.

The HKE indicator M (eq. 10) is 1 where the action is the sample's target and 0 otherwise (all
zeros for "Other"); it is the base mask, routing original samples to the `original` sub-tower.

Default alpha. `alpha_j` is a count of reported conversions of action j by one ad task over
the whole window, so it grows with traffic: the defaults below suit the simulator's default
data (a few hundred thousand to a million rows over 28 days, 2000 ad tasks) and production
volumes need larger ones. In the simulator an ad task that does not report j never shows a
conversion of j, so any alpha >= 1 removes every non-reporting task, and a larger alpha only
trades samples for slightly cleaner labels (it favours complete over partial reporters). On
300k default rows (seed 0), raising alpha from 1 to 5 lifts the share of true positives that
the extended samples' labels keep from 0.90 to 0.94 for activation but leaves it at about
0.9 for retention, while retention's ADM share falls from 38 % to 22 %. Hence two reports for
every action (one report alone may be a stray event) and three for the frequent activation.
That 300k-row run gives ADM shares of 95.6 / 6.0 / 21.9 / 19.3 / 30.9 % against base shares of
69.1 / 5.3 / 9.9 / 11.5 / 0.55 % (the paper's Table 1 kind of extension: the rare retention
goes from under 1 % to about a third).
"""

import dataclasses
from typing import Mapping, Optional, Sequence, Tuple

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import numpy as np
import tensorflow as tf

from kaml_tf import schema as schema_lib

BASE = "base"
ADM = "adm"
ALL = "all"
ORACLE = "oracle"
POLICIES = (BASE, ADM, ALL, ORACLE)

# Per-action ADM thresholds for the simulator's actions (paper's actions A..E), in reported
# conversions per ad task over the statistics window (see "Default alpha" above).
DEFAULT_ALPHA: Mapping[str, int] = {
  "activation": 3,
  "re_engagement": 2,
  "registration": 2,
  "payment": 2,
  "retention": 2,
}
# Threshold for an action the defaults above do not name.
FALLBACK_ALPHA = 2
ALPHA_FLAG = "alpha"


class MaskError(ValueError):
  """A mask policy or its thresholds do not fit the schema; the message says which."""


def default_alpha(schema: schema_lib.Schema) -> Tuple[int, ...]:
  """The default per-action ADM thresholds: `DEFAULT_ALPHA` by name, else `FALLBACK_ALPHA`."""
  return tuple(DEFAULT_ALPHA.get(a, FALLBACK_ALPHA) for a in schema.actions)


def resolve_alpha(
  alpha: Optional[Sequence[int]], schema: schema_lib.Schema, flag: str = ALPHA_FLAG
) -> Tuple[int, ...]:
  """Validates per-action thresholds, or returns the defaults when `alpha` is None.

  Args:
    alpha: One threshold per schema action, in action order, or None for the defaults.
    schema: Gives the actions.
    flag: Name of the flag or field the values came from, for error messages.

  Returns:
    A tuple of N integers >= 1.

  Raises:
    MaskError: naming `flag` when the length differs from N or a value is not an integer >= 1.
  """
  if alpha is None:
    return default_alpha(schema)
  values = tuple(alpha)
  if len(values) != schema.num_actions:
    raise MaskError(
      f"--{flag} has {len(values)} value(s) {list(values)} but the schema has "
      f"{schema.num_actions} actions {list(schema.actions)}; give one threshold per action"
    )
  out = []
  for action, value in zip(schema.actions, values):
    # Counts are integers; a threshold of 0 would trust every ad task, even ones that never
    # report the action, which is the `all` policy, not ADM.
    if isinstance(value, bool) or not float(value).is_integer() or value < 1:
      raise MaskError(
        f"--{flag} for action {action!r} must be an integer >= 1, got {value!r} "
        "(use policy 'all' to trust every label)"
      )
    out.append(int(value))
  return tuple(out)


@dataclasses.dataclass(frozen=True)
class MaskConfig:
  """Which labels the losses may trust.

  Attributes:
    policy: One of `POLICIES`.
    alpha: ADM thresholds, one per action, or None for `default_alpha(schema)`. Used only by
      the `adm` policy.
  """

  policy: str = ADM
  alpha: Optional[Tuple[int, ...]] = None

  def __post_init__(self):
    if self.policy not in POLICIES:
      raise MaskError(f"unknown mask policy {self.policy!r}; expected one of {list(POLICIES)}")
    if self.alpha is not None:
      object.__setattr__(self, "alpha", tuple(self.alpha))

  def resolve(self, schema: schema_lib.Schema) -> "MaskConfig":
    """Checks the policy against `schema` and fills in the thresholds.

    Raises:
      MaskError: for `oracle` on a schema without true labels, or bad thresholds.
    """
    if self.policy == ORACLE and not schema.has_true_labels:
      raise MaskError(
        "mask policy 'oracle' needs the complete labels (true_label_<action> fields), but the "
        "schema has has_true_labels=false; oracle is for simulated or re-labelled data only"
      )
    return MaskConfig(self.policy, resolve_alpha(self.alpha, schema))

  @property
  def needs_stats(self) -> bool:
    """Whether the policy reads the ad tasks' conversion statistics."""
    return self.policy == ADM

  @property
  def uses_true_labels(self) -> bool:
    return self.policy == ORACLE


def target_indicator(target_action: tf.Tensor, num_actions: int) -> tf.Tensor:
  """The HKE indicator M, which is also the base mask (eq. 6): one_hot(target).

  Args:
    target_action: (batch,) int, the target action index, -1 for "Other".
    num_actions: N.

  Returns:
    (batch, N) float32, 1 at the target action, all zeros for "Other".
  """
  # tf.one_hot maps an index of -1 to an all-zero row, which is exactly "Other".
  return tf.one_hot(tf.cast(target_action, tf.int32), num_actions, dtype=tf.float32)


def adm_extension(window_counts: tf.Tensor, alpha: Sequence[int]) -> tf.Tensor:
  """The count condition of eq. 8: 1(c_i^j >= alpha_j).

  Args:
    window_counts: (batch, N) int, each sample's ad-task conversion counts in the window (zeros
      for an ad task missing from the statistics).
    alpha: (N,) thresholds.

  Returns:
    (batch, N) float32.
  """
  counts = tf.convert_to_tensor(window_counts)
  thresholds = tf.constant(np.asarray(alpha, dtype=np.int64))
  return tf.cast(tf.cast(counts, tf.int64) >= thresholds, tf.float32)


def training_mask(
  config: MaskConfig,
  target_action: tf.Tensor,
  num_actions: int,
  window_counts: Optional[tf.Tensor] = None,
  known_ad_task: Optional[tf.Tensor] = None,
) -> tf.Tensor:
  """The (batch, N) training mask of a resolved `config` (see the module docstring).

  Args:
    config: A `MaskConfig` after `resolve` (alpha filled in).
    target_action: (batch,) int, -1 for "Other".
    num_actions: N.
    window_counts: (batch, N) int, required for `adm`: the ad task's window counts.
    known_ad_task: (batch,) bool, whether the ad task is in the statistics; unknown ones fall
      back to the base mask whatever `window_counts` says. None means all known.

  Returns:
    (batch, N) float32 of 0/1.
  """
  is_target = target_indicator(target_action, num_actions)
  if config.policy == BASE:
    return is_target
  if config.policy in (ALL, ORACLE):
    return tf.ones_like(is_target)
  if config.alpha is None:
    raise MaskError("MaskConfig.alpha is unset; call MaskConfig.resolve(schema) first")
  if window_counts is None:
    raise MaskError("the 'adm' policy needs the ad tasks' window conversion counts")
  extension = adm_extension(window_counts, config.alpha)
  if known_ad_task is not None:
    extension *= tf.cast(known_ad_task, tf.float32)[:, None]
  return tf.maximum(is_target, extension)
