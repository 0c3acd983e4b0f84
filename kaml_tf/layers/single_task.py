"""The single-task baseline's bottom (paper section 4.1.2): one independent network per action.

Action j has its own embedding tables and its own MLP; nothing is shared between actions, so
with the base mask each action's network is trained only on the samples targeting it. The N MLPs
run as one batched op over the stacked per-action embeddings.
"""

from typing import Any, Dict, Mapping, Optional, Sequence, Union

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.layers import checks
from kaml_tf.layers import embedding as embedding_lib
from kaml_tf.layers import no_autograph
from kaml_tf.layers import parallel_mlp


@tf.keras.utils.register_keras_serializable(package="kaml_tf")
class SingleTask(tf.keras.layers.Layer):
  """N independent (embedding, MLP) networks, one per schema action.

  Call args:
    inputs: Dict `{feature_name: (batch,) tensor}` with every schema feature.
    training: Whether dropout is active.

  Returns:
    h, `(batch, N, units[-1])` (or `(batch, N, embedding width)` when `units` is empty).
  """

  def __init__(
    self,
    schema: Union[schema_lib.Schema, Mapping[str, Any]],
    units: Sequence[int] = (256, 128),
    embedding_dim: Optional[int] = None,
    activation: Optional[str] = "relu",
    dropout: float = 0.0,
    kernel_initializer: Any = None,
    embedding_l2: float = 0.0,
    **kwargs,
  ):
    """Initialises the layer.

    Args:
      schema: The feature schema (or its dict form); one network per action.
      units: Hidden widths of each action's MLP.
      embedding_dim: Embedding width override (see `FeatureEmbedding`).
      activation: Activation name of the MLPs.
      dropout: Dropout rate after every MLP layer.
      kernel_initializer: For the MLP kernels; `None` = per-head Glorot.
      embedding_l2: L2 on the looked-up rows of every action's tables (`FeatureEmbedding`).
      **kwargs: Base `Layer` arguments.
    """
    super().__init__(**kwargs)
    owner = f"SingleTask({self.name})"
    if isinstance(schema, schema_lib.Schema):
      self.schema = schema
    elif isinstance(schema, Mapping):
      self.schema = schema_lib.Schema.from_dict(schema, source=f"{owner} config")
    else:
      raise ValueError(f"{owner}: schema must be a Schema or its dict form, got {schema!r}")
    self.units = checks.units(units, "units", owner)
    self.embedding_dim = (
      None if embedding_dim is None else checks.positive_int(embedding_dim, "embedding_dim", owner)
    )
    self.activation_name = checks.activation(activation, owner)
    self.dropout = checks.dropout_rate(dropout, owner)
    self.embedding_l2 = checks.non_negative_float(embedding_l2, "embedding_l2", owner)
    self._kernel_initializer_arg = kernel_initializer
    # Sublayers get the config, so each builds its own instance (a shared unseeded instance
    # would give them identical initial kernels).
    kernel_initializer = parallel_mlp.initializer_config(kernel_initializer)
    self.embeddings = [
      embedding_lib.FeatureEmbedding(
        self.schema, self.embedding_dim, l2=self.embedding_l2, name=f"embedding_{a}"
      )
      for a in self.schema.actions
    ]
    self.mlp = parallel_mlp.ParallelMLP(
      self.schema.num_actions,
      self.units,
      self.activation_name,
      self.dropout,
      kernel_initializer=kernel_initializer,
      name="mlp",
    )

  @no_autograph.no_autograph
  def call(self, inputs: Mapping[str, tf.Tensor], training: Optional[bool] = None) -> tf.Tensor:
    per_action = tf.stack([e(inputs) for e in self.embeddings], axis=1)  # (b, N, D)
    return self.mlp(per_action, training=training)

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config.update(
      {
        "schema": self.schema.to_dict(),
        "units": list(self.units),
        "embedding_dim": self.embedding_dim,
        "activation": self.activation_name,
        "dropout": self.dropout,
        "kernel_initializer": parallel_mlp.initializer_config(self._kernel_initializer_arg),
        "embedding_l2": self.embedding_l2,
      }
    )
    return config
