"""Losses made of per-action sums and counts, reduced once; and their arithmetic across replicas.

The masked BCE (eq. 12) and the RLU ranking loss (eq. 11) have the same form: for every action
k a sum S_k of per-sample (or per-pair) terms and a count C_k of the samples (or pairs) that
took part, reduced to

    L = sum_k w_k * S_k / C_k        (an action with C_k = 0 contributes 0, never NaN).

`StatisticsLoss` is their base class: a subclass computes `statistics(labels, logits, mask)`
-> `(sums, counts)`, each (N,), and the base class reduces them (`reduce`, which is
`dynamic_average`). On one device the loss is `reduce(*statistics(...))`.

Across replicas (`all_reduce_statistics`, called by the training step). Each of R replicas
holds a slice of the global batch and computes its own `(S_k^r, C_k^r)`. The loss of the
global batch is

    L = sum_k w_k * (sum_r S_k^r) / C_k,   with the global count C_k = sum_r C_k^r.

It is not the mean of the replicas' own losses: the masked count of an action varies from
slice to slice (an action may have an empty mask on one replica and 3 masked samples on
another), so per-replica averages weigh samples unequally. Hence the counts are all-reduced
(SUM) BEFORE the division, and the division happens once, by the global count.

Gradients. tf-keras' `Optimizer.apply_gradients` SUMs the replicas' gradients (it does not
average them), so each replica must differentiate a share L_r of the objective with
sum_r L_r = L. Given the counts, L is linear in the sums, so

    L_r = sum_k w_k * S_k^r / C_k       (local sums, global counts)

does it: sum_r L_r = L, and sum_r dL_r/dtheta = dL/dtheta, the single-device gradient. The
counts depend only on masks and labels, not on the parameters; they still pass through
`tf.stop_gradient`, so that no gradient flows back through the all-reduce. A term that is a
per-replica mean m_r over the replica's slice (the network's label-free regularisation, e.g.
an L2 penalty averaged over the batch) is the global mean (1 / R) * sum_r m_r for equal
slices, so a replica's share is m_r / R.

Logging. The all-reduced sums and counts give every replica the same global value of the loss
(`reduce` on them), so a trainer reports one replica's logs rather than summing them.

Parameter-server training (asynchronous). Each worker's step is a replica group of its own:
R is the number of devices of that worker (1 on a CPU worker), and the all-reduce spans only
them. So a step's loss is the dynamic average above over that step's batch (`batch_size`
records of one worker), exactly as on one device, and its gradient updates the variables on
the parameter servers by itself: no count or gradient is combined across workers, whose
steps interleave. The loss terms a trainer logs per epoch are then means over all steps of
all workers.

Ranking pairs are formed within a replica's slice (pairs across replicas would need every
replica's logits gathered): with R > 1 the ranking loss is the exact average over the union of
the replicas' pair sets, which is eq. 11 over the whole batch when R = 1.
"""

import abc
import math
import numbers
from typing import Any, Collection, Dict, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

# Per-action weights: None (all 1), one number for every action, or one number per action.
ActionWeights = Union[None, float, Sequence[float]]


def check_action_weights(value: ActionWeights, what: str) -> Union[None, float, Tuple[float, ...]]:
  """Validates per-action loss weights and returns them as float / tuple of floats / None.

  Args:
    value: None (every action weighs 1), a number applied to every action, or one number
      per action.
    what: The hyper-parameter's name, quoted in error messages.

  Returns:
    None, a float, or a tuple of floats.

  Raises:
    ValueError: if a weight is not a finite non-negative number, or the sequence is empty.
  """
  if value is None:
    return None
  if _is_number(value):
    return _check_weight(value, what, value)
  if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
    raise ValueError(f"{what} must be None, a number or a sequence of numbers, got {value!r}")
  if not value:
    raise ValueError(f"{what} must not be empty, got {value!r}")
  return tuple(_check_weight(v, what, value) for v in value)


def _is_number(value: Any) -> bool:
  return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_weight(v: Any, what: str, whole: Any) -> float:
  if not _is_number(v) or not math.isfinite(v) or v < 0:
    raise ValueError(f"{what} must be finite non-negative numbers, got {whole!r}")
  return float(v)


def weights_config(weights: Union[None, float, Tuple[float, ...]]) -> Union[None, float, list]:
  """Validated weights as a JSON value for `get_config`: a tuple becomes a list."""
  return list(weights) if isinstance(weights, tuple) else weights


def check_inputs(
  labels: tf.Tensor, logits: tf.Tensor, mask: tf.Tensor
) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """Converts `labels, logits, mask` to float32 and checks they are (batch, N) alike.

  Logits are cast to float32 too, so that a mixed-precision model still gets a float32 loss.

  Raises:
    ValueError: naming the argument whose static shape is not rank 2 or does not match.
  """
  labels = tf.cast(labels, tf.float32)
  logits = tf.cast(logits, tf.float32)
  mask = tf.cast(mask, tf.float32)
  for name, t in (("labels", labels), ("logits", logits), ("mask", mask)):
    if t.shape.rank is not None and t.shape.rank != 2:
      raise ValueError(f"{name} must have shape (batch, num_actions), got shape {t.shape}")
  for name, t in (("labels", labels), ("mask", mask)):
    if not t.shape.is_compatible_with(logits.shape):
      raise ValueError(f"{name} shape {t.shape} does not match logits shape {logits.shape}")
  return labels, logits, mask


def dynamic_average(sums: tf.Tensor, counts: tf.Tensor, weights: ActionWeights = None) -> tf.Tensor:
  """Reduces per-action statistics to `sum_k w_k * sums_k / counts_k`, with 0 where count is 0.

  Linear in `sums` for given `counts`: see the module docstring for why that makes the
  per-replica shares add up to the global loss.

  Args:
    sums: (N,) float32 per-action loss sums.
    counts: (N,) float32 per-action counts (samples or pairs).
    weights: None (all 1), one number, or N numbers (already validated).

  Returns:
    A float32 scalar.

  Raises:
    ValueError: if the number of weights does not match N.
  """
  sums = tf.convert_to_tensor(sums, tf.float32)
  counts = tf.convert_to_tensor(counts, tf.float32)
  per_action = tf.math.divide_no_nan(sums, counts)
  if weights is None:
    return tf.reduce_sum(per_action)
  if isinstance(weights, tuple):
    n = per_action.shape[0]
    if n is not None and n != len(weights):
      raise ValueError(f"got {len(weights)} per-action weights {list(weights)} for {n} actions")
  return tf.reduce_sum(per_action * tf.constant(weights, tf.float32))


class StatisticsLoss(abc.ABC):
  """Base class of a loss `sum_k w_k * sums_k / counts_k` over per-action statistics.

  A subclass implements `statistics`; the reduction, the call, and the config's "name" are
  shared. Not a `tf.keras.losses.Loss`: Keras' `(y_true, y_pred, sample_weight)` contract
  would apply the mask as an element weight and average over the whole batch (eq. 7), whereas
  each action is divided by its own count here, and a distributed trainer needs the
  statistics rather than a reduced scalar (see the module docstring).

  Example:
    sums, counts = loss.statistics(labels, logits, mask)    # (N,) each
    value = loss.reduce(sums, counts)                        # == loss(labels, logits, mask)
  """

  def __init__(self, action_weights: ActionWeights, name: str):
    """Stores the validated per-action weights w_k and the ops' name scope.

    Args:
      action_weights: None (all 1), one number, or one number per action, already validated
        with `check_action_weights` under the subclass's argument name.
      name: Name scope of the ops.
    """
    self.action_weights = action_weights
    self.name = name

  @abc.abstractmethod
  def statistics(
    self, labels: tf.Tensor, logits: tf.Tensor, mask: Optional[tf.Tensor]
  ) -> Tuple[tf.Tensor, tf.Tensor]:
    """Per-action `(sums, counts)`, (N,) float32 each, of a (batch, N) batch."""

  def reduce(self, sums: tf.Tensor, counts: tf.Tensor) -> tf.Tensor:
    """`sum_k w_k * sums_k / counts_k` of (possibly all-reduced) statistics; a scalar."""
    with tf.name_scope(self.name):
      return dynamic_average(sums, counts, self.action_weights)

  def __call__(
    self, labels: tf.Tensor, logits: tf.Tensor, mask: Optional[tf.Tensor] = None
  ) -> tf.Tensor:
    """The loss of one batch on one device: a float32 scalar (inputs are (batch, N))."""
    return self.reduce(*self.statistics(labels, logits, mask))

  def get_config(self) -> Dict[str, Any]:
    """The shared part of the config; subclasses put their hyper-parameters first."""
    return {"name": self.name}

  @classmethod
  def from_config(cls, config: Dict[str, Any]) -> "StatisticsLoss":
    return cls(**config)


class AllReduced(NamedTuple):
  """One replica's statistics after `all_reduce_statistics`; both dicts have the input's keys.

  Attributes:
    share: Local sums, global counts (no gradient) and each mean divided by the number of
      replicas: reducing it gives this replica's share L_r of the objective, to differentiate.
    total: Global sums and counts, and the replicas' average of each mean, all without
      gradient: reducing it gives the global objective, the same on every replica, to log.
  """

  share: Dict[str, tf.Tensor]
  total: Dict[str, tf.Tensor]


def num_replicas() -> int:
  """The number of replicas in sync; 1 outside a replica context or without a strategy."""
  context = tf.distribute.get_replica_context()
  return 1 if context is None else context.num_replicas_in_sync


def sum_across_replicas(values: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
  """All-reduces (SUM) a dict of tensors in replica context; identity with one replica."""
  context = tf.distribute.get_replica_context()
  if context is None or context.num_replicas_in_sync == 1:
    return values
  return context.all_reduce(tf.distribute.ReduceOp.SUM, values)


def all_reduce_statistics(
  local: Mapping[str, tf.Tensor],
  count_keys: Collection[str],
  means: Optional[Mapping[str, tf.Tensor]] = None,
) -> AllReduced:
  """This replica's share of the objective and the global statistics (module docstring).

  One all-reduce carries every statistic and mean. With one replica (or outside a strategy)
  `share` and `total` hold the local values.

  Args:
    local: This replica's statistics by name: per-action sums and counts, (N,) float32 each.
    count_keys: The keys of `local` that are counts (divisors); every other key is a sum.
    means: Per-replica means over the replica's slice by name, float32 scalars (e.g. the
      network's regularisation); their keys must not be in `local`.

  Returns:
    `AllReduced(share, total)`.

  Raises:
    ValueError: if a count key is not in `local`, or a key is in both `local` and `means`.
  """
  means = dict(means or {})
  missing = [k for k in count_keys if k not in local]
  if missing:
    raise ValueError(f"count keys {missing} are not among the statistics {sorted(local)}")
  both = sorted(set(local) & set(means))
  if both:
    raise ValueError(f"keys {both} are both statistics and means")
  replicas = float(num_replicas())
  share = dict(local)
  share.update({k: tf.cast(v, tf.float32) / replicas for k, v in means.items()})
  summed = sum_across_replicas(share)
  total = {k: tf.stop_gradient(v) for k, v in summed.items()}
  for key in count_keys:
    share[key] = total[key]
  return AllReduced(share=share, total=total)
