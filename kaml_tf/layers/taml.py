"""TAML: task adaptive multi-learner network (Liu et al., WWW 2023), reconstructed.

No public code exists and the paper is a short paper; its abstract and the KAML paper
(section 4.1.2: "TAML further separates task-level experts into general task experts and learner
task experts and utilizes self-distillation losses to make robust predictions") fix the outline:
hierarchical experts at several granularities, several learners per task whose predictions are
fused, and a self-distillation loss teaching every learner with the fused score. Every detail
below is our choice:

1. Experts (one extraction level, not stacked): `num_shared_experts` shared by all actions;
   per action j, `num_task_experts` general task experts; per learner l of action j,
   `num_learner_experts` learner experts. Every expert is an MLP of `expert_units` on x. All
   experts of the layer run as one batched op. Default sizes (also ours): 1 shared expert,
   1 general task expert per action, 2 learners per action with 1 expert each, experts of
   (256, 128) like the other backbones.
2. Learners: action j has `num_learners` learners. Learner (j, l) has a softmax gate (no bias,
   computed from x, as in MMoE / PLE) over exactly the shared experts, j's general task experts
   and its own learner experts; the gated sum is its representation r_{j,l}. The layer returns
   these `N * L` representations (action-major: head `j * L + l`), and each learner gets its own
   tower (the same tower as the other backbones: MLP of `tower_units`, then a logit s_{j,l}).
3. Fusion (`LearnerFusion`): the action's logit is the plain mean of its learners' logits,
   `s_j = (1 / L) sum_l s_{j,l}` (a geometric mean of the learners' odds). It is parameter-free
   on purpose: a learned fusion could hand all the weight to one learner and defeat the point
   of several views.
4. Supervision: the model outputs only the fused logits, so the (masked) losses supervise the
   fused prediction; learners learn through their share of it and through distillation.
5. Self-distillation: the teacher is `p_j = sigmoid(stop_gradient(s_j))` (gradient stopped, so
   the term moves the learners toward the ensemble and never the ensemble toward a learner;
   with the mean fusion the teacher path would carry no gradient anyway, as
   d/ds_j sum_l KL = p_j (1 - p_j) sum_l (s_j - s_{j,l}) = 0, but the stop-gradient states the
   intent and keeps it true for any other fusion). Each learner pays the binary KL divergence
   `KL(p_j || sigmoid(s_{j,l}))`, which has the gradient of a soft-label cross-entropy but is 0
   when the learners agree. It is label-free, so it is computed on every sample and every
   action (masks belong to the losses). Reduction: mean over samples and learners, sum over
   actions (as eq. 12 sums per-action means), times `distillation_weight` (default 0.1);
   registered with `add_loss` so it appears in `model.losses` and the joint loss adds it.
6. With HKE on top (builder choice): each learner's tower is an HKE tower (its own original and
   extended sub-towers and final MLP), all learners of action j routed by j's indicator; fusion
   and distillation then act on those learner logits unchanged.
"""

from typing import Any, Dict, Optional, Sequence

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf.layers import checks
from kaml_tf.layers import no_autograph
from kaml_tf.layers import parallel_mlp


@tf.keras.utils.register_keras_serializable(package="kaml_tf")
class TAML(tf.keras.layers.Layer):
  """TAML's hierarchical experts and per-learner gates (choices 1-2 of the module docstring).

  Call args:
    inputs: x, `(batch, d_in)`.
    training: Whether dropout (inside the experts) is active.

  Returns:
    Learner representations `(batch, num_tasks * num_learners, expert_units[-1])`,
    action-major (head `j * num_learners + l`).
  """

  def __init__(
    self,
    num_tasks: int,
    num_learners: int = 2,
    num_shared_experts: int = 1,
    num_task_experts: int = 1,
    num_learner_experts: int = 1,
    expert_units: Sequence[int] = (256, 128),
    activation: Optional[str] = "relu",
    dropout: float = 0.0,
    kernel_initializer: Any = None,
    **kwargs,
  ):
    """Initialises the layer.

    Args:
      num_tasks: N, the number of actions.
      num_learners: L, learners per action.
      num_shared_experts: Experts shared by all actions and learners.
      num_task_experts: General task experts per action (shared by its learners).
      num_learner_experts: Experts owned by each learner.
      expert_units: Hidden widths of every expert MLP (at least one layer).
      activation: Activation name inside the experts.
      dropout: Dropout rate after every expert layer.
      kernel_initializer: For experts and gates; `None` = per-head Glorot.
      **kwargs: Base `Layer` arguments.
    """
    super().__init__(**kwargs)
    owner = f"TAML({self.name})"
    self.num_tasks = checks.positive_int(num_tasks, "num_tasks", owner)
    self.num_learners = checks.positive_int(num_learners, "num_learners", owner)
    self.num_shared_experts = checks.positive_int(num_shared_experts, "num_shared_experts", owner)
    self.num_task_experts = checks.positive_int(num_task_experts, "num_task_experts", owner)
    self.num_learner_experts = checks.positive_int(
      num_learner_experts, "num_learner_experts", owner
    )
    self.expert_units = checks.units(expert_units, "expert_units", owner, allow_empty=False)
    self.activation_name = checks.activation(activation, owner)
    self.dropout = checks.dropout_rate(dropout, owner)
    self._kernel_initializer_arg = kernel_initializer
    # Sublayers get the config, so each builds its own instance (a shared unseeded instance
    # would give them identical initial kernels).
    kernel_initializer = parallel_mlp.initializer_config(kernel_initializer)
    n, l = self.num_tasks, self.num_learners
    ks, kt, kl = self.num_shared_experts, self.num_task_experts, self.num_learner_experts
    # Expert heads, in order: shared, then general task experts (action-major), then learner
    # experts (action-major, then learner).
    self.experts = parallel_mlp.ParallelMLP(
      ks + n * kt + n * l * kl,
      self.expert_units,
      self.activation_name,
      self.dropout,
      kernel_initializer=kernel_initializer,
      name="experts",
    )
    # One gate per learner over [shared | its action's task experts | its own experts].
    self.gates = parallel_mlp.ParallelDense(
      n * l,
      ks + kt + kl,
      activation="softmax",
      use_bias=False,
      kernel_initializer=kernel_initializer,
      name="gates",
    )

  def build(self, input_shape):
    if tf.TensorShape(input_shape).rank != 2:
      raise ValueError(f"TAML({self.name}): expected x of shape (batch, d_in), got {input_shape}")
    super().build(input_shape)

  def gate_weights(self, inputs: tf.Tensor) -> tf.Tensor:
    """Learner gates `(batch, N * L, ks + kt + kl)`: shared, task, learner experts in order."""
    return self.gates(inputs)

  @no_autograph.no_autograph
  def call(self, inputs: tf.Tensor, training: Optional[bool] = None) -> tf.Tensor:
    n, l = self.num_tasks, self.num_learners
    ks, kt, kl = self.num_shared_experts, self.num_task_experts, self.num_learner_experts
    d = self.expert_units[-1]
    experts = self.experts(inputs, training=training)  # (b, ks + n*kt + n*l*kl, d)
    shared = experts[:, :ks]  # (b, ks, d)
    task = tf.reshape(experts[:, ks : ks + n * kt], [-1, n, kt, d])
    learner = tf.reshape(experts[:, ks + n * kt :], [-1, n, l, kl, d])
    gates = self.gates(inputs)  # (b, N*L, ks + kt + kl)
    per_learner = tf.reshape(gates, [-1, n, l, ks + kt + kl])
    # Three batched matmuls, one per expert kind, instead of materialising the
    # (b, N, L, ks + kt + kl, d) tensor of every learner's candidate experts.
    from_shared = tf.matmul(gates[:, :, :ks], shared)  # (b, N*L, ks) @ (b, ks, d)
    from_task = tf.matmul(per_learner[..., ks : ks + kt], task)  # (b,N,L,kt) @ (b,N,kt,d)
    from_learner = tf.squeeze(
      tf.matmul(per_learner[..., tf.newaxis, ks + kt :], learner), axis=3
    )  # (b, N, L, 1, kl) @ (b, N, L, kl, d)
    return from_shared + tf.reshape(from_task + from_learner, [-1, n * l, d])

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config.update(
      {
        "num_tasks": self.num_tasks,
        "num_learners": self.num_learners,
        "num_shared_experts": self.num_shared_experts,
        "num_task_experts": self.num_task_experts,
        "num_learner_experts": self.num_learner_experts,
        "expert_units": list(self.expert_units),
        "activation": self.activation_name,
        "dropout": self.dropout,
        "kernel_initializer": parallel_mlp.initializer_config(self._kernel_initializer_arg),
      }
    )
    return config


def self_distillation_loss(learner_logits: tf.Tensor, fused_logits: tf.Tensor) -> tf.Tensor:
  """TAML's self-distillation term (choice 5), unweighted.

  `mean_{i,l} sum_j KL(sigmoid(sg(s_ij)) || sigmoid(s_ijl))` with, for teacher p and student
  q = sigmoid(s), `KL = p (softplus(-s) - softplus(-t)) + (1 - p) (softplus(s) - softplus(t))`
  (the log-sigmoid form, stable for large logits).

  Args:
    learner_logits: `(batch, N, L)` logits s_{j,l}.
    fused_logits: `(batch, N)` fused logits s_j (the teacher; its gradient is stopped).

  Returns:
    A float32 scalar.
  """
  t = tf.stop_gradient(fused_logits)[:, :, tf.newaxis]  # (b, N, 1)
  p = tf.sigmoid(t)
  s = learner_logits
  kl = p * (tf.math.softplus(-s) - tf.math.softplus(-t)) + (1.0 - p) * (
    tf.math.softplus(s) - tf.math.softplus(t)
  )  # (b, N, L)
  return tf.reduce_mean(tf.reduce_sum(kl, axis=1))


@tf.keras.utils.register_keras_serializable(package="kaml_tf")
class LearnerFusion(tf.keras.layers.Layer):
  """Fuses learner logits into action logits and registers the self-distillation loss.

  Call args:
    inputs: Learner logits `(batch, num_tasks * num_learners)`, action-major.

  Returns:
    Fused logits `(batch, num_tasks)`: the mean over each action's learners.
  """

  def __init__(self, num_tasks: int, num_learners: int, distillation_weight: float = 0.1, **kwargs):
    """Initialises the layer.

    Args:
      num_tasks: N.
      num_learners: L.
      distillation_weight: Weight of the self-distillation term added with `add_loss`; 0
        adds nothing.
      **kwargs: Base `Layer` arguments.
    """
    super().__init__(**kwargs)
    owner = f"LearnerFusion({self.name})"
    self.num_tasks = checks.positive_int(num_tasks, "num_tasks", owner)
    self.num_learners = checks.positive_int(num_learners, "num_learners", owner)
    self.distillation_weight = checks.non_negative_float(
      distillation_weight, "distillation_weight", owner
    )

  @no_autograph.no_autograph
  def call(self, inputs: tf.Tensor) -> tf.Tensor:
    learner_logits = tf.reshape(inputs, [-1, self.num_tasks, self.num_learners])
    fused = tf.reduce_mean(learner_logits, axis=-1)
    if self.distillation_weight > 0:
      self.add_loss(self.distillation_weight * self_distillation_loss(learner_logits, fused))
    return fused

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config.update(
      {
        "num_tasks": self.num_tasks,
        "num_learners": self.num_learners,
        "distillation_weight": self.distillation_weight,
      }
    )
    return config
