"""Progressive Layered Extraction bottom (Tang et al., RecSys 2020): stacked CGC levels.

Each Customized Gate Control (CGC) level has, for every action j, `num_task_experts` experts of
its own, plus `num_shared_experts` experts shared by all actions. Action j's gate (a softmax
over its own and the shared experts, computed from j's input to the level) mixes them into j's
output. Every level except the last also has a shared gate (a softmax over all experts, from the
shared input) whose mix is the shared input of the next level. Level 1 reads x for every input;
the last level's per-action outputs are h_j.

As in MMoE, gates have no bias; every expert is an MLP of `expert_units`. All experts of a level
run as one batched op per kind (task-specific, shared).
"""

from typing import Any, Dict, Optional, Sequence

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf.layers import checks
from kaml_tf.layers import no_autograph
from kaml_tf.layers import parallel_mlp


@tf.keras.utils.register_keras_serializable(package="kaml_tf")
class PLE(tf.keras.layers.Layer):
  """PLE with `num_levels` CGC levels.

  Call args:
    inputs: x, `(batch, d_in)`.
    training: Whether dropout (inside the experts) is active.

  Returns:
    h, `(batch, num_tasks, expert_units[-1])`.
  """

  def __init__(
    self,
    num_tasks: int,
    num_levels: int = 2,
    num_task_experts: int = 1,
    num_shared_experts: int = 1,
    expert_units: Sequence[int] = (256, 128),
    activation: Optional[str] = "relu",
    dropout: float = 0.0,
    kernel_initializer: Any = None,
    **kwargs,
  ):
    """Initialises the layer.

    Args:
      num_tasks: N, the number of actions.
      num_levels: Number of stacked CGC levels.
      num_task_experts: Experts per action and level.
      num_shared_experts: Shared experts per level.
      expert_units: Hidden widths of every expert MLP (at least one layer).
      activation: Activation name inside the experts.
      dropout: Dropout rate after every expert layer.
      kernel_initializer: For experts and gates; `None` = per-head Glorot.
      **kwargs: Base `Layer` arguments.
    """
    super().__init__(**kwargs)
    owner = f"PLE({self.name})"
    self.num_tasks = checks.positive_int(num_tasks, "num_tasks", owner)
    self.num_levels = checks.positive_int(num_levels, "num_levels", owner)
    self.num_task_experts = checks.positive_int(num_task_experts, "num_task_experts", owner)
    self.num_shared_experts = checks.positive_int(num_shared_experts, "num_shared_experts", owner)
    self.expert_units = checks.units(expert_units, "expert_units", owner, allow_empty=False)
    self.activation_name = checks.activation(activation, owner)
    self.dropout = checks.dropout_rate(dropout, owner)
    self._kernel_initializer_arg = kernel_initializer
    # Sublayers get the config, so each builds its own instance (a shared unseeded instance
    # would give them identical initial kernels).
    kernel_initializer = parallel_mlp.initializer_config(kernel_initializer)
    n, kt, ks = self.num_tasks, self.num_task_experts, self.num_shared_experts
    mlp_args = dict(
      activation=self.activation_name, dropout=self.dropout, kernel_initializer=kernel_initializer
    )
    self.task_experts = []
    self.shared_experts = []
    self.task_gates = []
    self.shared_gates = []
    for level in range(self.num_levels):
      self.task_experts.append(
        parallel_mlp.ParallelMLP(
          n * kt, self.expert_units, name=f"task_experts_{level}", **mlp_args
        )
      )
      self.shared_experts.append(
        parallel_mlp.ParallelMLP(ks, self.expert_units, name=f"shared_experts_{level}", **mlp_args)
      )
      self.task_gates.append(
        parallel_mlp.ParallelDense(
          n,
          kt + ks,
          activation="softmax",
          use_bias=False,
          kernel_initializer=kernel_initializer,
          name=f"task_gates_{level}",
        )
      )
      if level < self.num_levels - 1:
        self.shared_gates.append(
          parallel_mlp.ParallelDense(
            1,
            n * kt + ks,
            activation="softmax",
            use_bias=False,
            kernel_initializer=kernel_initializer,
            name=f"shared_gate_{level}",
          )
        )

  def build(self, input_shape):
    if tf.TensorShape(input_shape).rank != 2:
      raise ValueError(f"PLE({self.name}): expected x of shape (batch, d_in), got {input_shape}")
    super().build(input_shape)

  @no_autograph.no_autograph
  def call(self, inputs: tf.Tensor, training: Optional[bool] = None) -> tf.Tensor:
    n, kt = self.num_tasks, self.num_task_experts
    d = self.expert_units[-1]
    task_inputs = inputs  # (batch, d_in) at level 1, then (batch, N, d)
    shared_inputs = inputs  # (batch, d_in) at level 1, then (batch, d)
    for level in range(self.num_levels):
      # Expert k of action j reads j's input: repeat each action's input for its kt experts.
      expert_inputs = (
        task_inputs if task_inputs.shape.rank == 2 else tf.repeat(task_inputs, kt, axis=1)
      )
      task_experts = self.task_experts[level](expert_inputs, training=training)  # (b, N*kt, d)
      shared_experts = self.shared_experts[level](shared_inputs, training=training)  # (b, ks, d)
      gates = self.task_gates[level](task_inputs)  # (b, N, kt + ks)
      per_task = tf.reshape(task_experts, [-1, n, kt, d])
      # Gated sums as batched matmuls: (b, N, 1, kt) @ (b, N, kt, d) and (b, N, ks) @ (b, ks, d).
      outputs = tf.squeeze(tf.matmul(gates[:, :, tf.newaxis, :kt], per_task), axis=2) + tf.matmul(
        gates[:, :, kt:], shared_experts
      )
      if level < self.num_levels - 1:
        shared_gate = self.shared_gates[level](shared_inputs)  # (b, 1, N*kt + ks)
        shared_inputs = tf.squeeze(
          tf.matmul(shared_gate[:, :, : n * kt], task_experts)
          + tf.matmul(shared_gate[:, :, n * kt :], shared_experts),
          axis=1,
        )
      task_inputs = outputs
    return task_inputs

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config.update(
      {
        "num_tasks": self.num_tasks,
        "num_levels": self.num_levels,
        "num_task_experts": self.num_task_experts,
        "num_shared_experts": self.num_shared_experts,
        "expert_units": list(self.expert_units),
        "activation": self.activation_name,
        "dropout": self.dropout,
        "kernel_initializer": parallel_mlp.initializer_config(self._kernel_initializer_arg),
      }
    )
    return config
