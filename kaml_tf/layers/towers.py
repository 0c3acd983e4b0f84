"""Task-specific towers (paper eq. 4): one MLP per action on h_j, then a logit.

`y_j = sigmoid(MLP_j(h_j))`; the layer returns the logits (the sigmoid belongs to the losses
and to serving). The towers are a `ParallelMLP` and a `ParallelDense` chained head by head
(lists of per-head tensors, see `kaml_tf.layers.parallel_mlp`).
"""

from typing import Any, Dict, Optional, Sequence

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf.layers import checks
from kaml_tf.layers import no_autograph
from kaml_tf.layers import parallel_mlp


@tf.keras.utils.register_keras_serializable(package="kaml_tf")
class Towers(tf.keras.layers.Layer):
  """H towers: `logit_h = w_h . MLP_h(h_h) + b_h`.

  Call args:
    inputs: `(batch, H, d)` one representation per head, or `(batch, d)` shared by all heads
      (the shared-bottom baseline).
    training: Whether dropout is active.

  Returns:
    Logits `(batch, H)`.
  """

  def __init__(
    self,
    num_heads: int,
    units: Sequence[int] = (64,),
    activation: Optional[str] = "relu",
    dropout: float = 0.0,
    kernel_initializer: Any = None,
    **kwargs,
  ):
    """Initialises the layer.

    Args:
      num_heads: H, one tower per action (or per TAML learner).
      units: Hidden widths of each tower's MLP; empty means a logit directly on h.
      activation: Activation name of the hidden layers.
      dropout: Dropout rate after every hidden layer.
      kernel_initializer: For every kernel; `None` = per-head Glorot.
      **kwargs: Base `Layer` arguments.
    """
    super().__init__(**kwargs)
    owner = f"Towers({self.name})"
    self.num_heads = checks.positive_int(num_heads, "num_heads", owner)
    self.units = checks.units(units, "units", owner)
    self.activation_name = checks.activation(activation, owner)
    self.dropout = checks.dropout_rate(dropout, owner)
    self._kernel_initializer_arg = kernel_initializer
    # Sublayers get the config, so each builds its own instance (a shared unseeded instance
    # would give them identical initial kernels).
    kernel_initializer = parallel_mlp.initializer_config(kernel_initializer)
    self.mlp = parallel_mlp.ParallelMLP(
      self.num_heads,
      self.units,
      self.activation_name,
      self.dropout,
      kernel_initializer=kernel_initializer,
      name="mlp",
    )
    self.logit = parallel_mlp.ParallelDense(
      self.num_heads, 1, kernel_initializer=kernel_initializer, name="logit"
    )

  @no_autograph.no_autograph
  def call(self, inputs: tf.Tensor, training: Optional[bool] = None) -> tf.Tensor:
    heads = parallel_mlp.split_heads(inputs, self.num_heads)
    logits = self.logit(self.mlp(heads, training=training))  # H x (batch, 1)
    return tf.concat(logits, axis=1)

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config.update(
      {
        "num_heads": self.num_heads,
        "units": list(self.units),
        "activation": self.activation_name,
        "dropout": self.dropout,
        "kernel_initializer": parallel_mlp.initializer_config(self._kernel_initializer_arg),
      }
    )
    return config
