"""Many independent dense layers / MLPs with stacked per-head kernels.

Multi-task models apply one small network per expert, per action or per learner. The H heads'
kernels are stacked into one `(H, d_in, d_out)` variable (one checkpoint entry per layer, and
each head initialised like a `Dense` layer); how the product is computed is a separate choice.

Layouts. The public layout is batch-major:

* shared input `(batch, d_in)`: every head reads the same vector (experts reading x);
* per-head input `(batch, H, d_in)`: head h reads its own slice (towers reading h_j);
* output `(batch, H, d_out)`.

Both layers also take and return a Python list of H per-head `(batch, d)` tensors, which is how
stacked layers (and `Towers`, `HKETowers`) chain them without stacking in between.

Computation. On CPU, forward and backward, one plain 2-D matmul per head beats one broadcast
batched matmul over the heads (`(1, batch, d_in) @ (H, d_in, d_out)`, whose kernel gradient is
a batched product plus a reduction over the broadcast axis) and one wide matmul split per head,
for expert layers on a shared input and for towers alike (no transposes between layers);
`tf.einsum` is slower still, as it transposes on every call
(measured: docs/results/timings/library.md#parallel-mlp-per-head-matmuls). So each head runs its
own `tf.matmul` on its own slice of the kernel (`tf.unstack`, whose gradient is one `tf.stack`),
and per-head activations stay a list until the output of the layer stack is needed as one
tensor. The one exception is a single `ParallelDense` on a shared input (MMoE's gates): one
`(batch, d_in) @ (d_in, H * units)` matmul, reshaped to `(batch, H, units)` at no cost, is the
cheapest there.
"""

from typing import Any, Dict, Optional, Sequence

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf.layers import checks
from kaml_tf.layers import no_autograph


def headwise_glorot_uniform(num_heads: int) -> tf.keras.initializers.Initializer:
  """Glorot-uniform for a stacked `(H, d_in, d_out)` kernel, computed per head.

  Keras computes the fans of a rank-3 kernel as `H * d_in` and `H * d_out`, which would shrink
  each head's weights by sqrt(H). Scaling the variance by H restores the per-head limit
  sqrt(6 / (d_in + d_out)), i.e. each head starts exactly like a `Dense` layer.

  Args:
    num_heads: H, the leading dimension of the kernel.

  Returns:
    A serialisable `VarianceScaling` initializer.
  """
  return tf.keras.initializers.VarianceScaling(
    scale=float(num_heads), mode="fan_avg", distribution="uniform"
  )


def split_heads(inputs: tf.Tensor, num_heads: int) -> list:
  """`(batch, H, d)` -> a list of H `(batch, d)`; a shared `(batch, d)` is repeated H times."""
  if inputs.shape.rank == 2:
    return [inputs] * num_heads
  return tf.unstack(inputs, num=num_heads, axis=1)


def initializer_config(initializer: Any) -> Any:
  """The JSON form of an optional initializer argument (`None` stays `None`: the default)."""
  if initializer is None:
    return None
  return tf.keras.initializers.serialize(tf.keras.initializers.get(initializer))


@tf.keras.utils.register_keras_serializable(package="kaml_tf")
class ParallelDense(tf.keras.layers.Layer):
  """H independent dense layers: `y[:, h] = activation(x_h @ W[h] + b[h])`.

  Call args:
    inputs: `(batch, d_in)` shared by every head, or per head `(batch, H, d_in)`
      (`(H, batch, d_in)` when `heads_first`), or a list of H per-head `(batch, d_in)`.

  Returns:
    `(batch, H, units)` (`(H, batch, units)` when `heads_first`), or a list of H
    `(batch, units)` when the input is a list.
  """

  def __init__(
    self,
    num_heads: int,
    units: int,
    activation: Optional[str] = None,
    use_bias: bool = True,
    kernel_initializer: Any = None,
    bias_initializer: Any = "zeros",
    heads_first: bool = False,
    **kwargs,
  ):
    """Initialises the layer.

    Args:
      num_heads: H, the number of independent dense layers.
      units: Output width of each head.
      activation: Name of a Keras activation, applied per head on the last axis (so "softmax"
        normalises each head's `units` outputs); `None` is linear.
      use_bias: Whether each head has a bias.
      kernel_initializer: Initializer of the `(H, d_in, units)` kernel; `None` means
        `headwise_glorot_uniform(H)` (each head initialised like a `Dense` layer).
      bias_initializer: Initializer of the `(H, units)` bias.
      heads_first: Stacked per-head inputs and outputs are head-major, `(H, batch, d)`.
      **kwargs: Base `Layer` arguments.
    """
    super().__init__(**kwargs)
    owner = f"ParallelDense({self.name})"
    self.num_heads = checks.positive_int(num_heads, "num_heads", owner)
    self.units = checks.positive_int(units, "units", owner)
    self.activation_name = checks.activation(activation, owner)
    self.use_bias = bool(use_bias)
    self.heads_first = bool(heads_first)
    self._kernel_initializer_arg = kernel_initializer
    self.kernel_initializer = (
      tf.keras.initializers.get(kernel_initializer)
      if kernel_initializer is not None
      else headwise_glorot_uniform(self.num_heads)
    )
    self.bias_initializer = tf.keras.initializers.get(bias_initializer)
    self._activation = tf.keras.activations.get(self.activation_name)

  def build(self, input_shape):
    if (
      isinstance(input_shape, (list, tuple))
      and input_shape
      and not isinstance(input_shape[0], (int, type(None)))
    ):
      d_in = self._per_head_list_width([tf.TensorShape(s) for s in input_shape])
    else:
      d_in = self._tensor_width(tf.TensorShape(input_shape))
    self.kernel = self.add_weight(
      name="kernel",
      shape=(self.num_heads, d_in, self.units),
      initializer=self.kernel_initializer,
      trainable=True,
    )
    self.bias = (
      self.add_weight(
        name="bias",
        shape=(self.num_heads, self.units),
        initializer=self.bias_initializer,
        trainable=True,
      )
      if self.use_bias
      else None
    )
    super().build(input_shape)

  def _tensor_width(self, shape: tf.TensorShape) -> int:
    """d_in of a `(batch, d_in)` or stacked per-head input, after checking its heads."""
    layout = (
      f"({self.num_heads}, batch, d_in)"
      if self.heads_first
      else (f"(batch, {self.num_heads}, d_in)")
    )
    if shape.rank not in (2, 3) or shape[-1] is None:
      raise ValueError(
        f"ParallelDense({self.name}): expected input (batch, d_in) or "
        f"{layout} with a known d_in, got {shape}"
      )
    heads = shape[0] if self.heads_first else shape[1]
    if shape.rank == 3 and heads is not None and heads != self.num_heads:
      raise ValueError(
        f"ParallelDense({self.name}): input {shape} has {heads} heads, expected {layout}"
      )
    return int(shape[-1])

  def _per_head_list_width(self, shapes) -> int:
    """d_in of a list of H `(batch, d_in)` inputs, after checking their number and shapes."""
    widths = {s[-1] if s.rank == 2 else "bad" for s in shapes}
    if len(shapes) != self.num_heads or len(widths) != 1 or None in widths or "bad" in widths:
      raise ValueError(
        f"ParallelDense({self.name}): expected a list of {self.num_heads} "
        f"(batch, d_in) inputs of one known d_in, got {shapes}"
      )
    return int(widths.pop())

  def per_head(self, inputs) -> list:
    """The H outputs as a list of `(batch, units)`, one 2-D matmul per head.

    Args:
      inputs: `(batch, d_in)` shared by every head, or a list of H `(batch, d_in)`.

    Returns:
      A list of H `(batch, units)` tensors.
    """
    heads = inputs if isinstance(inputs, (list, tuple)) else [inputs] * self.num_heads
    kernels = tf.unstack(self.kernel)
    biases = tf.unstack(self.bias) if self.bias is not None else [None] * self.num_heads
    outputs = []
    for x, kernel, bias in zip(heads, kernels, biases):
      y = tf.matmul(x, kernel)
      outputs.append(self._activation(y if bias is None else tf.nn.bias_add(y, bias)))
    return outputs

  def _shared(self, inputs: tf.Tensor) -> tf.Tensor:
    """`(batch, d_in)` -> `(batch, H, units)` as one matmul against the heads side by side."""
    d_in = self.kernel.shape[1]
    kernel = tf.reshape(tf.transpose(self.kernel, [1, 0, 2]), [d_in, -1])  # (d_in, H * units)
    outputs = tf.matmul(inputs, kernel)
    if self.bias is not None:
      outputs = tf.nn.bias_add(outputs, tf.reshape(self.bias, [-1]))
    # The activation is per head on its own units (softmax), so it comes after the reshape.
    return self._activation(tf.reshape(outputs, [-1, self.num_heads, self.units]))

  @no_autograph.no_autograph
  def call(self, inputs):
    if isinstance(inputs, (list, tuple)):
      return self.per_head(list(inputs))
    if inputs.shape.rank == 2:
      outputs = self._shared(inputs)
      return tf.transpose(outputs, [1, 0, 2]) if self.heads_first else outputs
    axis = 0 if self.heads_first else 1
    return tf.stack(self.per_head(tf.unstack(inputs, num=self.num_heads, axis=axis)), axis=axis)

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config.update(
      {
        "num_heads": self.num_heads,
        "units": self.units,
        "activation": self.activation_name,
        "use_bias": self.use_bias,
        "kernel_initializer": initializer_config(self._kernel_initializer_arg),
        "bias_initializer": tf.keras.initializers.serialize(self.bias_initializer),
        "heads_first": self.heads_first,
      }
    )
    return config


@tf.keras.utils.register_keras_serializable(package="kaml_tf")
class ParallelMLP(tf.keras.layers.Layer):
  """H independent MLPs (`ParallelDense` stack, activation then dropout after every layer).

  With no `units` the layer is the identity (a tower with no hidden layer).

  Call args:
    inputs: `(batch, d_in)` shared by every head, `(batch, H, d_in)`, or a list of H per-head
      `(batch, d_in)`.
    training: Whether dropout is active.

  Returns:
    `(batch, H, units[-1])` (a list of H `(batch, units[-1])` for a list input), or `inputs`
    unchanged when `units` is empty.
  """

  def __init__(
    self,
    num_heads: int,
    units: Sequence[int],
    activation: Optional[str] = "relu",
    dropout: float = 0.0,
    kernel_initializer: Any = None,
    **kwargs,
  ):
    """Initialises the layer.

    Args:
      num_heads: H, the number of independent MLPs.
      units: Width of each hidden layer, shared by all heads; may be empty.
      activation: Activation name after every layer (including the last).
      dropout: Dropout rate after every layer, in [0, 1).
      kernel_initializer: Passed to every `ParallelDense`; `None` = per-head Glorot.
      **kwargs: Base `Layer` arguments.
    """
    super().__init__(**kwargs)
    owner = f"ParallelMLP({self.name})"
    self.num_heads = checks.positive_int(num_heads, "num_heads", owner)
    self.units = checks.units(units, "units", owner)
    self.activation_name = checks.activation(activation, owner)
    self.dropout = checks.dropout_rate(dropout, owner)
    self._kernel_initializer_arg = kernel_initializer
    # Each layer gets its own initializer instance (the config, not a shared object): one
    # unseeded instance shared by several layers would give them identical initial kernels.
    self.dense_layers = [
      ParallelDense(
        self.num_heads,
        u,
        activation=self.activation_name,
        kernel_initializer=initializer_config(kernel_initializer),
        name=f"dense_{i}",
      )
      for i, u in enumerate(self.units)
    ]
    self.dropout_layers = (
      [tf.keras.layers.Dropout(self.dropout, name=f"dropout_{i}") for i in range(len(self.units))]
      if self.dropout > 0
      else []
    )

  @no_autograph.no_autograph
  def call(self, inputs, training: Optional[bool] = None):
    if isinstance(inputs, (list, tuple)):
      return self.per_head(list(inputs), training)
    if not self.dense_layers:
      return inputs
    return tf.stack(self.per_head(split_heads(inputs, self.num_heads), training), axis=1)

  def per_head(self, inputs, training: Optional[bool] = None) -> list:
    """The H MLPs' outputs as a list, one 2-D matmul per head and layer (module docstring).

    Args:
      inputs: `(batch, d_in)` shared by every head, or a list of H `(batch, d_in)`.
      training: Whether dropout is active.

    Returns:
      A list of H `(batch, units[-1])` tensors (the inputs, as a list, when `units` is empty).
    """
    outputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs] * self.num_heads
    for i, dense in enumerate(self.dense_layers):
      outputs = dense(outputs)  # Keras __call__: builds the layer under its name scope
      if self.dropout_layers:
        outputs = [self.dropout_layers[i](o, training=training) for o in outputs]
    return outputs

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config.update(
      {
        "num_heads": self.num_heads,
        "units": list(self.units),
        "activation": self.activation_name,
        "dropout": self.dropout,
        "kernel_initializer": initializer_config(self._kernel_initializer_arg),
      }
    )
    return config
