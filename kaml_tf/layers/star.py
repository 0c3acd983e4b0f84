"""STAR: star-topology fully connected network (Sheng et al., CIKM 2021), actions as domains.

STAR serves several domains with one network whose every layer combines a shared centre with a
per-domain part. Here the N actions play the domains (paper section 4.1.2):

* `StarDense`: action j's effective layer is `W*_j = W (*) W_j` (element-wise product of the
  shared and the action's kernel) and `b*_j = b + b_j`; `y_j = act(x_j W*_j + b*_j)`. Action
  kernels start at ones and action biases at zeros, so at initialisation every action computes
  the shared layer and the product only departs from it as training specialises an action (the
  product of two independently Glorot-initialised kernels would start near zero).
* `PartitionedNormalization` (PN): normalise x, then scale and shift it per action with
  `gamma (*) gamma_j` and `beta + beta_j`. In STAR each sample belongs to one domain, so each
  partition's batch statistics come from its own samples. In multi-task CVR every sample goes
  through every action's path with the same x, so all partitions would see identical statistics:
  we keep one set (batch statistics in training, moving averages at inference, like batch
  normalisation) and partition only the affine parameters.
* `Star`: PN on x, then a stack of `StarDense` layers, giving h_j for each action.

STAR's auxiliary network (a small MLP on the domain indicator and features whose output is added
to the logit) is left out: the domain indicator is the action itself, which already selects a
head, so it would reduce to a second per-action tower on x.
"""

from typing import Any, Dict, Optional, Sequence

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf.layers import checks
from kaml_tf.layers import no_autograph


@tf.keras.utils.register_keras_serializable(package="kaml_tf")
class PartitionedNormalization(tf.keras.layers.Layer):
  """`z_j = (gamma (*) gamma_j) (*) (x - mu) / sqrt(var + epsilon) + (beta + beta_j)`.

  Call args:
    inputs: x, `(batch, d)`.
    training: Batch statistics (and moving-average update) when True, moving averages when
      False.

  Returns:
    `(batch, num_partitions, d)`.
  """

  def __init__(self, num_partitions: int, momentum: float = 0.99, epsilon: float = 1e-3, **kwargs):
    """Initialises the layer.

    Args:
      num_partitions: N, one scale and shift per action.
      momentum: Moving-average momentum of the statistics, in [0, 1).
      epsilon: Added to the variance, > 0.
      **kwargs: Base `Layer` arguments.
    """
    super().__init__(**kwargs)
    owner = f"PartitionedNormalization({self.name})"
    self.num_partitions = checks.positive_int(num_partitions, "num_partitions", owner)
    if (
      isinstance(momentum, bool)
      or not isinstance(momentum, (int, float))
      or not (0 <= momentum < 1)
    ):
      raise ValueError(f"{owner}: momentum must be in [0, 1), got {momentum!r}")
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not epsilon > 0:
      raise ValueError(f"{owner}: epsilon must be > 0, got {epsilon!r}")
    self.momentum = float(momentum)
    self.epsilon = float(epsilon)
    # The statistics are shared by all partitions (see the module docstring).
    self.normalization = tf.keras.layers.BatchNormalization(
      momentum=self.momentum, epsilon=self.epsilon, center=False, scale=False, name="statistics"
    )

  def build(self, input_shape):
    shape = tf.TensorShape(input_shape)
    if shape.rank != 2 or shape[-1] is None:
      raise ValueError(
        f"PartitionedNormalization({self.name}): expected x of shape "
        f"(batch, d) with a known d, got {shape}"
      )
    d = int(shape[-1])
    self.gamma = self.add_weight(name="gamma", shape=(d,), initializer="ones")
    self.beta = self.add_weight(name="beta", shape=(d,), initializer="zeros")
    self.partition_gamma = self.add_weight(
      name="partition_gamma", shape=(self.num_partitions, d), initializer="ones"
    )
    self.partition_beta = self.add_weight(
      name="partition_beta", shape=(self.num_partitions, d), initializer="zeros"
    )
    super().build(input_shape)

  @no_autograph.no_autograph
  def call(self, inputs: tf.Tensor, training: Optional[bool] = None) -> tf.Tensor:
    normalized = self.normalization(inputs, training=training)  # (batch, d)
    scale = self.gamma * self.partition_gamma  # (N, d)
    shift = self.beta + self.partition_beta  # (N, d)
    return normalized[:, tf.newaxis, :] * scale + shift

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config.update(
      {"num_partitions": self.num_partitions, "momentum": self.momentum, "epsilon": self.epsilon}
    )
    return config


@tf.keras.utils.register_keras_serializable(package="kaml_tf")
class StarDense(tf.keras.layers.Layer):
  """Star-topology dense layer: `y_j = act(x_j (W (*) W_j) + (b + b_j))`.

  Call args:
    inputs: `(batch, num_partitions, d_in)`, or `(batch, d_in)` shared by all partitions.

  Returns:
    `(batch, num_partitions, units)`.
  """

  def __init__(
    self,
    num_partitions: int,
    units: int,
    activation: Optional[str] = "relu",
    kernel_initializer: Any = "glorot_uniform",
    **kwargs,
  ):
    """Initialises the layer.

    Args:
      num_partitions: N, one partition (action) kernel each.
      units: Output width.
      activation: Activation name.
      kernel_initializer: Initializer of the shared kernel (action kernels start at ones).
      **kwargs: Base `Layer` arguments.
    """
    super().__init__(**kwargs)
    owner = f"StarDense({self.name})"
    self.num_partitions = checks.positive_int(num_partitions, "num_partitions", owner)
    self.units = checks.positive_int(units, "units", owner)
    self.activation_name = checks.activation(activation, owner)
    self.kernel_initializer = tf.keras.initializers.get(kernel_initializer)
    self._activation = tf.keras.activations.get(self.activation_name)

  def build(self, input_shape):
    shape = tf.TensorShape(input_shape)
    if shape.rank not in (2, 3) or shape[-1] is None:
      raise ValueError(
        f"StarDense({self.name}): expected (batch, d_in) or "
        f"(batch, {self.num_partitions}, d_in), got {shape}"
      )
    if shape.rank == 3 and shape[1] not in (None, self.num_partitions):
      raise ValueError(
        f"StarDense({self.name}): input has {shape[1]} partitions, expected {self.num_partitions}"
      )
    d = int(shape[-1])
    self.shared_kernel = self.add_weight(
      name="shared_kernel", shape=(d, self.units), initializer=self.kernel_initializer
    )
    self.shared_bias = self.add_weight(name="shared_bias", shape=(self.units,), initializer="zeros")
    self.partition_kernel = self.add_weight(
      name="partition_kernel", shape=(self.num_partitions, d, self.units), initializer="ones"
    )
    self.partition_bias = self.add_weight(
      name="partition_bias", shape=(self.num_partitions, self.units), initializer="zeros"
    )
    super().build(input_shape)

  def effective_kernel(self) -> tf.Tensor:
    """`W (*) W_j` for every partition: `(num_partitions, d_in, units)`."""
    return self.shared_kernel[tf.newaxis] * self.partition_kernel

  def effective_bias(self) -> tf.Tensor:
    """`b + b_j` for every partition: `(num_partitions, units)`."""
    return self.shared_bias + self.partition_bias

  @no_autograph.no_autograph
  def call(self, inputs: tf.Tensor) -> tf.Tensor:
    equation = "bd,pdu->bpu" if inputs.shape.rank == 2 else "bpd,pdu->bpu"
    outputs = tf.einsum(equation, inputs, self.effective_kernel()) + self.effective_bias()
    return self._activation(outputs)

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config.update(
      {
        "num_partitions": self.num_partitions,
        "units": self.units,
        "activation": self.activation_name,
        "kernel_initializer": tf.keras.initializers.serialize(self.kernel_initializer),
      }
    )
    return config


@tf.keras.utils.register_keras_serializable(package="kaml_tf")
class Star(tf.keras.layers.Layer):
  """STAR bottom: partitioned normalisation then star-topology dense layers.

  Call args:
    inputs: x, `(batch, d_in)`.
    training: Batch statistics in PN and active dropout when True.

  Returns:
    h, `(batch, num_tasks, units[-1])`.
  """

  def __init__(
    self,
    num_tasks: int,
    units: Sequence[int] = (256, 128),
    activation: Optional[str] = "relu",
    dropout: float = 0.0,
    kernel_initializer: Any = "glorot_uniform",
    **kwargs,
  ):
    """Initialises the layer.

    Args:
      num_tasks: N, the actions playing STAR's domains.
      units: Widths of the star-topology layers (at least one).
      activation: Activation name after every layer.
      dropout: Dropout rate after every layer.
      kernel_initializer: Initializer of the shared kernels.
      **kwargs: Base `Layer` arguments.
    """
    super().__init__(**kwargs)
    owner = f"Star({self.name})"
    self.num_tasks = checks.positive_int(num_tasks, "num_tasks", owner)
    self.units = checks.units(units, "units", owner, allow_empty=False)
    self.activation_name = checks.activation(activation, owner)
    self.dropout = checks.dropout_rate(dropout, owner)
    self.kernel_initializer = tf.keras.initializers.get(kernel_initializer)
    self.normalization = PartitionedNormalization(self.num_tasks, name="partitioned_norm")
    # Each layer gets its own initializer instance: one unseeded instance shared by several
    # layers would give them identical initial kernels.
    self.dense_layers = [
      StarDense(
        self.num_tasks,
        u,
        self.activation_name,
        name=f"star_dense_{i}",
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
    outputs = self.normalization(inputs, training=training)
    for i, dense in enumerate(self.dense_layers):
      outputs = dense(outputs)
      if self.dropout_layers:
        outputs = self.dropout_layers[i](outputs, training=training)
    return outputs

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config.update(
      {
        "num_tasks": self.num_tasks,
        "units": list(self.units),
        "activation": self.activation_name,
        "dropout": self.dropout,
        "kernel_initializer": tf.keras.initializers.serialize(self.kernel_initializer),
      }
    )
    return config
