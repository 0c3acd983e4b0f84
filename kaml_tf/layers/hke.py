"""Hierarchical Knowledge Extraction towers (paper section 3.3, eq. 9-10).

For every action j, two sub-towers read the backbone's h_j:
`h_j^original = MLP_original(h_j)` and `h_j^extended = MLP_extended(h_j)` (eq. 9). They are
merged by the indicator M (1 where j is the sample's target action: an "original" sample;
0 where the sample only reaches j through ADM's extended mask) and a final MLP gives the logit:
`y_j = sigmoid(MLP(M * h_j^original + (1 - M) * h_j^extended))` (eq. 10).

The merge is computed literally as `M * o + (1 - M) * e` (not `e + M * (o - e)`), so for M = 1
the extended sub-tower contributes exactly 0 and the output is bit-for-bit the original path's;
at serving the indicator is one_hot(requested action), which routes that action through the
original sub-tower. The indicator is a model input, never a label: the layer sees no labels.

`group_size` lets one indicator column route several consecutive heads: with TAML each action
has `num_learners` learner towers, and all of them follow the action's indicator.
"""

from typing import Any, Dict, Optional, Sequence

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf.layers import checks
from kaml_tf.layers import no_autograph
from kaml_tf.layers import parallel_mlp


@tf.keras.utils.register_keras_serializable(package="kaml_tf")
class HKETowers(tf.keras.layers.Layer):
  """H HKE towers (eq. 9-10), all heads batched.

  Call args:
    inputs: A pair `(representations, indicator)`: representations `(batch, H, d)` (or
      `(batch, d)` shared), indicator `(batch, H / group_size)` float, 1 = original sample.
    training: Whether dropout is active.

  Returns:
    Logits `(batch, H)`.
  """

  def __init__(
    self,
    num_heads: int,
    sub_tower_units: Sequence[int] = (64,),
    final_units: Sequence[int] = (32,),
    activation: Optional[str] = "relu",
    dropout: float = 0.0,
    group_size: int = 1,
    kernel_initializer: Any = None,
    **kwargs,
  ):
    """Initialises the layer.

    Args:
      num_heads: H, the number of towers (actions, or actions x learners).
      sub_tower_units: Hidden widths of each of the two sub-towers (at least one layer: with
        none both paths would be the identity and the routing would be void).
      final_units: Hidden widths of the MLP after the merge (empty = logit on the merge).
      activation: Activation name of the hidden layers.
      dropout: Dropout rate after every hidden layer.
      group_size: Consecutive heads routed by one indicator column; H must be a multiple.
      kernel_initializer: For every kernel; `None` = per-head Glorot.
      **kwargs: Base `Layer` arguments.
    """
    super().__init__(**kwargs)
    owner = f"HKETowers({self.name})"
    self.num_heads = checks.positive_int(num_heads, "num_heads", owner)
    self.sub_tower_units = checks.units(
      sub_tower_units, "sub_tower_units", owner, allow_empty=False
    )
    self.final_units = checks.units(final_units, "final_units", owner)
    self.activation_name = checks.activation(activation, owner)
    self.dropout = checks.dropout_rate(dropout, owner)
    self.group_size = checks.positive_int(group_size, "group_size", owner)
    if self.num_heads % self.group_size:
      raise ValueError(
        f"{owner}: num_heads={self.num_heads} is not a multiple of group_size={self.group_size}"
      )
    self._kernel_initializer_arg = kernel_initializer
    # Sublayers get the config, so each builds its own instance (a shared unseeded instance
    # would give them identical initial kernels).
    kernel_initializer = parallel_mlp.initializer_config(kernel_initializer)
    mlp_args = dict(
      activation=self.activation_name, dropout=self.dropout, kernel_initializer=kernel_initializer
    )
    self.original = parallel_mlp.ParallelMLP(
      self.num_heads, self.sub_tower_units, name="original", **mlp_args
    )
    self.extended = parallel_mlp.ParallelMLP(
      self.num_heads, self.sub_tower_units, name="extended", **mlp_args
    )
    self.final = parallel_mlp.ParallelMLP(
      self.num_heads, self.final_units, name="final", **mlp_args
    )
    self.logit = parallel_mlp.ParallelDense(
      self.num_heads, 1, kernel_initializer=kernel_initializer, name="logit"
    )

  def build(self, input_shape):
    indicator_shape = tf.TensorShape(input_shape[1])
    expected = self.num_heads // self.group_size
    if indicator_shape.rank != 2 or indicator_shape[-1] not in (None, expected):
      raise ValueError(
        f"HKETowers({self.name}): indicator must be (batch, {expected}), got {indicator_shape}"
      )
    super().build(input_shape)

  @no_autograph.no_autograph
  def call(self, inputs, training: Optional[bool] = None) -> tf.Tensor:
    representations, indicator = inputs
    heads = parallel_mlp.split_heads(representations, self.num_heads)
    m = tf.cast(indicator, self.compute_dtype)
    if self.group_size > 1:
      m = tf.repeat(m, self.group_size, axis=1)
    m = tf.split(m, self.num_heads, axis=1)  # H x (batch, 1)
    # Head by head (lists, see `kaml_tf.layers.parallel_mlp`): no stacking between layers.
    original = self.original(heads, training=training)
    extended = self.extended(heads, training=training)
    merged = [mh * o + (1.0 - mh) * e for mh, o, e in zip(m, original, extended)]
    return tf.concat(self.logit(self.final(merged, training=training)), axis=1)

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config.update(
      {
        "num_heads": self.num_heads,
        "sub_tower_units": list(self.sub_tower_units),
        "final_units": list(self.final_units),
        "activation": self.activation_name,
        "dropout": self.dropout,
        "group_size": self.group_size,
        "kernel_initializer": parallel_mlp.initializer_config(self._kernel_initializer_arg),
      }
    )
    return config
