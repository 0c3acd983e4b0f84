"""A plain multi-layer perceptron: the shared bottom of the `shared_bottom` baseline."""

from typing import Any, Dict, Optional, Sequence

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf.layers import checks
from kaml_tf.layers import no_autograph


@tf.keras.utils.register_keras_serializable(package="kaml_tf")
class MLP(tf.keras.layers.Layer):
  """`Dense` layers, each followed by the activation and (optionally) dropout.

  Call args:
    inputs: `(batch, d_in)`.
    training: Whether dropout is active.

  Returns:
    `(batch, units[-1])`, or `inputs` unchanged when `units` is empty.
  """

  def __init__(
    self,
    units: Sequence[int],
    activation: Optional[str] = "relu",
    dropout: float = 0.0,
    kernel_initializer: Any = "glorot_uniform",
    **kwargs,
  ):
    """Initialises the layer.

    Args:
      units: Width of each layer; may be empty (identity).
      activation: Activation name after every layer.
      dropout: Dropout rate after every layer, in [0, 1).
      kernel_initializer: Initializer of every kernel.
      **kwargs: Base `Layer` arguments.
    """
    super().__init__(**kwargs)
    owner = f"MLP({self.name})"
    self.units = checks.units(units, "units", owner)
    self.activation_name = checks.activation(activation, owner)
    self.dropout = checks.dropout_rate(dropout, owner)
    self.kernel_initializer = tf.keras.initializers.get(kernel_initializer)
    # Each layer gets its own initializer instance: one unseeded instance shared by several
    # layers would give them identical initial kernels.
    self.dense_layers = [
      tf.keras.layers.Dense(
        u,
        activation=self.activation_name,
        name=f"dense_{i}",
        kernel_initializer=tf.keras.initializers.serialize(self.kernel_initializer),
      )
      for i, u in enumerate(self.units)
    ]
    self.dropout_layers = (
      [tf.keras.layers.Dropout(self.dropout, name=f"dropout_{i}") for i in range(len(self.units))]
      if self.dropout > 0
      else []
    )

  @no_autograph.no_autograph
  def call(self, inputs: tf.Tensor, training: Optional[bool] = None) -> tf.Tensor:
    outputs = inputs
    for i, dense in enumerate(self.dense_layers):
      outputs = dense(outputs)
      if self.dropout_layers:
        outputs = self.dropout_layers[i](outputs, training=training)
    return outputs

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config.update(
      {
        "units": list(self.units),
        "activation": self.activation_name,
        "dropout": self.dropout,
        "kernel_initializer": tf.keras.initializers.serialize(self.kernel_initializer),
      }
    )
    return config
