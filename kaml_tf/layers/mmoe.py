"""Multi-gate Mixture-of-Experts bottom (paper section 3.1, eq. 2-3; Ma et al., KDD 2018).

M experts f_k read the shared x; each action j has a softmax gate over the experts,
`g_j(x) = softmax(W_j x)` (eq. 2, no bias as written), and its representation is the gated sum
`h_j = sum_k g_j^k(x) f_k(x)` (eq. 3).

All M experts are evaluated as one `ParallelMLP` (stacked `(M, d_in, d_out)` kernels, one
batched matmul per layer), all N gates as one `ParallelDense` and the N gated sums as one batched
matmul, instead of M + N separate `Dense` layers and N weighted sums (DeepCTR's construction):
same arithmetic, far fewer ops, and a training step at least as fast as such a DeepCTR-style
Keras MMoE of the same size (measured: docs/results/timings/library.md#mmoe-against-deepctr).
"""

from typing import Any, Dict, Optional, Sequence

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf.layers import checks
from kaml_tf.layers import no_autograph
from kaml_tf.layers import parallel_mlp


@tf.keras.utils.register_keras_serializable(package="kaml_tf")
class MMoE(tf.keras.layers.Layer):
  """MMoE: one representation per action from gated shared experts.

  Call args:
    inputs: x, `(batch, d_in)`.
    training: Whether dropout (inside the experts) is active.

  Returns:
    h, `(batch, num_tasks, expert_units[-1])`.
  """

  def __init__(
    self,
    num_tasks: int,
    num_experts: int = 4,
    expert_units: Sequence[int] = (256, 128),
    activation: Optional[str] = "relu",
    dropout: float = 0.0,
    kernel_initializer: Any = None,
    **kwargs,
  ):
    """Initialises the layer.

    Args:
      num_tasks: N, the number of actions (one gate each).
      num_experts: M.
      expert_units: Hidden widths of every expert MLP (at least one layer).
      activation: Activation name inside the experts.
      dropout: Dropout rate after every expert layer.
      kernel_initializer: For experts and gates; `None` = per-head Glorot.
      **kwargs: Base `Layer` arguments.
    """
    super().__init__(**kwargs)
    owner = f"MMoE({self.name})"
    self.num_tasks = checks.positive_int(num_tasks, "num_tasks", owner)
    self.num_experts = checks.positive_int(num_experts, "num_experts", owner)
    self.expert_units = checks.units(expert_units, "expert_units", owner, allow_empty=False)
    self.activation_name = checks.activation(activation, owner)
    self.dropout = checks.dropout_rate(dropout, owner)
    self._kernel_initializer_arg = kernel_initializer
    # Sublayers get the config, so each builds its own instance (a shared unseeded instance
    # would give them identical initial kernels).
    kernel_initializer = parallel_mlp.initializer_config(kernel_initializer)
    self.experts = parallel_mlp.ParallelMLP(
      self.num_experts,
      self.expert_units,
      self.activation_name,
      self.dropout,
      kernel_initializer=kernel_initializer,
      name="experts",
    )
    self.gates = parallel_mlp.ParallelDense(
      self.num_tasks,
      self.num_experts,
      activation="softmax",
      use_bias=False,
      kernel_initializer=kernel_initializer,
      name="gates",
    )

  def build(self, input_shape):
    if tf.TensorShape(input_shape).rank != 2:
      raise ValueError(f"MMoE({self.name}): expected x of shape (batch, d_in), got {input_shape}")
    super().build(input_shape)

  def gate_weights(self, inputs: tf.Tensor) -> tf.Tensor:
    """The gates g_j(x) of eq. 2: `(batch, num_tasks, num_experts)`, each row sums to 1."""
    return self.gates(inputs)

  @no_autograph.no_autograph
  def call(self, inputs: tf.Tensor, training: Optional[bool] = None) -> tf.Tensor:
    experts = self.experts(inputs, training=training)  # (batch, M, d)
    gates = self.gates(inputs)  # (batch, N, M)
    return tf.matmul(gates, experts)  # h_j = sum_k g_j^k f_k, (batch, N, d)

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config.update(
      {
        "num_tasks": self.num_tasks,
        "num_experts": self.num_experts,
        "expert_units": list(self.expert_units),
        "activation": self.activation_name,
        "dropout": self.dropout,
        "kernel_initializer": parallel_mlp.initializer_config(self._kernel_initializer_arg),
      }
    )
    return config
