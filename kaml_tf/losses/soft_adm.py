"""Soft ADM: an extended cell weighs w_k in [0, 1] in the losses, a target cell 1 (issue 14).

ADM (eq. 8) adds "extended" cells to the training mask: mask_ik = 1 although action k is not
sample i's target. Soft ADM keeps the mask and the model as they are and only changes how much
each masked cell counts in the masked dynamic-average BCE (eq. 12). The cell weight is

    c_ik = mask_ik * (t_ik + (1 - t_ik) * w_k)

with t = is_target (one_hot of the target action, the base mask of eq. 6), so a target cell
weighs 1, an extended cell w_k and an unmasked cell 0, and the BCE of action k becomes

    L_k = (sum_i c_ik * BCE(y_ik, s_ik)) / (sum_i c_ik).

The dynamic average divides by the sum of the weights, so w_k = 0 is exactly the base mask's
loss for action k and w_k = 1 exactly ADM's; anything between moves the action's loss along
the line from one to the other (the sums and the counts are both linear in w_k). One global w
or one per action: ADM may help one action and cost another through the shared experts.
w_k is relative to the action's target cells in the same batch: a batch holding no target
cell of action k averages its extended cells alike for every w_k > 0 (the dynamic average
normalises it away); `bce_weights` is the knob that scales a whole action.

RLU ranking pairs (eq. 11). By default a pair is (reported positive, zero) of the action over
the whole batch, masked or not: the mask decides which zeros the BCE may call negatives, and
a ranking pair needs no such trust. Those pairs do not depend on the mask, so they do not
depend on w either: weighting an extended cell's pairs by w would make a cell that ADM trusts
count less than one it rejected (still weight 1), and w = 0 would no longer be the base
configuration. With `masked_pairs_only` the pairs do come from the mask, and soft ADM treats
them like the BCE cells: a pair of two target cells weighs 1, a pair involving an extended
cell weighs w_k, and the pair average divides by the sum of the pair weights. That is the
w-interpolation of the two pair sets, `w * (ADM pairs) + (1 - w) * (base pairs)`, which is how
it is computed (`interpolate`), so again w = 0 and w = 1 are exactly base and ADM.

HKE (eq. 9-10) is unchanged: the indicator M is still the target one-hot, so an extended row
still goes through the extended sub-tower; with w = 0 its BCE weight is 0 and the extended
sub-tower learns only through the label-free terms: the ranking loss (when gamma < 1) and TAML's
self-distillation.

The weights are built inside the loss from the targets `mask` and `is_target`; the network
never sees them.
"""

from typing import Sequence, Tuple, Union

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf.losses import statistics_loss

# None (ADM as is: every extended cell weighs 1), one weight for all actions, or one per action.
ExtendedWeight = Union[None, float, Tuple[float, ...]]


def check_extended_weight(
  value: Union[None, float, Sequence[float]], what: str = "extended_weight"
) -> ExtendedWeight:
  """Validates extended-cell weights: None, one number or one per action, each in [0, 1].

  A one-element sequence is the same as its number (one weight for every action).

  Args:
    value: The weights.
    what: Name quoted in error messages.

  Returns:
    None, a float, or a tuple of floats.

  Raises:
    ValueError: naming `what` if a weight is not a number in [0, 1] or the sequence is empty.
  """
  message = (
    f"{what} must be one number, or one per action, each in [0, 1] (0 = base mask, "
    f"1 = ADM), got {value!r}"
  )
  try:
    checked = statistics_loss.check_action_weights(value, what)
  except ValueError:
    raise ValueError(message) from None
  values = checked if isinstance(checked, tuple) else (() if checked is None else (checked,))
  if any(v > 1.0 for v in values):
    raise ValueError(message)
  if isinstance(checked, tuple) and len(checked) == 1:
    return checked[0]
  return checked


def is_hard(extended_weight: ExtendedWeight) -> bool:
  """True when every extended cell weighs 1: the losses are then exactly ADM's, unchanged."""
  if extended_weight is None:
    return True
  values = extended_weight if isinstance(extended_weight, tuple) else (extended_weight,)
  return all(v == 1.0 for v in values)


def _weight_row(extended_weight: ExtendedWeight, num_actions) -> tf.Tensor:
  """w as a float32 (N,) row (or a scalar), after checking its length against N."""
  if isinstance(extended_weight, tuple):
    if num_actions is not None and len(extended_weight) != num_actions:
      raise ValueError(
        f"extended_weight has {len(extended_weight)} values "
        f"{list(extended_weight)} for {num_actions} actions; give one value, "
        "or one per action"
      )
    return tf.constant(extended_weight, tf.float32)
  return tf.constant(1.0 if extended_weight is None else extended_weight, tf.float32)


def base_cells(mask: tf.Tensor, is_target: tf.Tensor) -> tf.Tensor:
  """The base mask within `mask`: (batch, N) float32, 1 where masked and the row's target."""
  return tf.cast(mask, tf.float32) * tf.cast(is_target, tf.float32)


def cell_weights(
  mask: tf.Tensor, is_target: tf.Tensor, extended_weight: ExtendedWeight
) -> tf.Tensor:
  """`c = mask * (t + (1 - t) * w)`: 1 on target cells, w_k on extended ones, 0 unmasked.

  Args:
    mask: (batch, N) 0/1 training mask (ADM, or any policy).
    is_target: (batch, N) 0/1, one_hot(target action) (all zeros for "Other").
    extended_weight: None (all 1), one weight, or N weights in [0, 1] (already validated).

  Returns:
    (batch, N) float32 cell weights.

  Raises:
    ValueError: if the number of weights is neither 1 nor N, or the shapes differ.
  """
  mask = tf.cast(mask, tf.float32)
  is_target = tf.cast(is_target, tf.float32)
  if not is_target.shape.is_compatible_with(mask.shape):
    raise ValueError(f"is_target shape {is_target.shape} does not match mask shape {mask.shape}")
  w = _weight_row(extended_weight, mask.shape[-1])
  return mask * (is_target + (1.0 - is_target) * w)


def interpolate(
  adm: Tuple[tf.Tensor, tf.Tensor],
  base: Tuple[tf.Tensor, tf.Tensor],
  extended_weight: ExtendedWeight,
) -> Tuple[tf.Tensor, tf.Tensor]:
  """`w * adm + (1 - w) * base` per action, for sums and counts alike.

  Args:
    adm: `(sums, counts)`, (N,) each, of a loss over the ADM cells (or pairs).
    base: `(sums, counts)`, (N,) each, of the same loss over the base cells (or pairs).
    extended_weight: None, one weight, or N weights in [0, 1] (already validated).

  Returns:
    `(sums, counts)`, (N,) float32 each.
  """
  w = _weight_row(extended_weight, adm[0].shape[0])
  return tuple(w * a + (1.0 - w) * b for a, b in zip(adm, base))
