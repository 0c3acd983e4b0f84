"""DeepCTR's MMoE as a throughput peer (benchmark only; DeepCTR is not a dependency).

DeepCTR 0.9.4 builds its models with `tf.keras`; imported after `kaml_tf` (which sets
TF_USE_LEGACY_KERAS=1), that is tf-keras 2.16, the same Keras as this project's models, so both
sides train with the same `fit` loop and Adam. It is imported only when a peer is built, and a
missing install fails with the command that installs it (it declares an old TensorFlow as a
requirement, hence `--no-deps`).

The peer has the architecture of the base MMoE (`ModelConfig` defaults): one embedding table of
`num_buckets` rows per sparse feature of the schema, the dense features as scalars, 4 experts
of (256, 128), one gate per task, a (64,) tower per action, sigmoid outputs trained with binary
cross-entropy and Adam. Its L2 penalty on the embeddings (DeepCTR's default 1e-5) is off, as the
project's model has none. It is fed from NumPy arrays, as DeepCTR's examples do.
"""

from typing import Dict, Mapping, Tuple

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow and DeepCTR are imported)
import numpy as np
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.models import config as model_config_lib

INSTALL_HINT = (
  "the peer benchmark needs DeepCTR, a benchmark-only extra that is not a "
  "dependency of kaml_tf; install it into this environment with "
  "`pip install --no-deps deepctr==0.9.4`"
)


class PeerUnavailableError(ImportError):
  """DeepCTR cannot be imported; the message says how to install it."""


def import_deepctr():
  """Returns `(MMOE, SparseFeat, DenseFeat)` from DeepCTR.

  Raises:
    PeerUnavailableError: naming the install command when DeepCTR is missing or broken.
  """
  try:
    from deepctr import feature_column  # pylint: disable=g-import-not-at-top
    from deepctr.models import MMOE  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise PeerUnavailableError(f"{INSTALL_HINT} (import failed: {e})") from e
  return MMOE, feature_column.SparseFeat, feature_column.DenseFeat


def numpy_inputs(
  columns: Mapping[str, np.ndarray], schema: schema_lib.Schema
) -> Tuple[Dict[str, np.ndarray], list]:
  """DeepCTR's inputs and per-task labels from log columns.

  Sparse ids become table rows in [0, num_buckets) (int64 ids modulo the table size; string
  values their index in the vocabulary, 0 when unknown); dense features are standardised with
  the schema's mean and std.

  Args:
    columns: `{field: (n,)}` log columns (`kaml_tf.logs.records.read_columns`).
    schema: The logs' schema.

  Returns:
    `({feature: (n,) array}, [labels (n,) float32 of each action, in schema order])`.
  """
  inputs = {}
  for f in schema.sparse_features:
    values = np.asarray(columns[f.name])
    if f.dtype == "string":
      index = {v.encode() if isinstance(v, str) else v: i for i, v in enumerate(f.vocabulary)}
      inputs[f.name] = np.array([index.get(v, 0) for v in values], np.int32)
    else:
      inputs[f.name] = np.mod(values, f.num_buckets).astype(np.int32)
  for f in schema.dense_features:
    inputs[f.name] = ((np.asarray(columns[f.name], np.float32) - f.mean) / (f.std or 1.0)).astype(
      np.float32
    )
  labels = [np.asarray(columns[k], np.float32) for k in schema.label_keys]
  return inputs, labels


def build_peer(
  schema: schema_lib.Schema,
  model_config: model_config_lib.ModelConfig = model_config_lib.ModelConfig(),
  learning_rate: float = 1e-3,
) -> tf.keras.Model:
  """DeepCTR's MMoE with the sizes of `model_config`, compiled with Adam.

  Args:
    schema: Features (tables of `num_buckets` rows) and actions (one task each).
    model_config: Supplies expert_units, num_experts, tower_units, embedding_dim, activation.
    learning_rate: Adam learning rate.

  Returns:
    A compiled `tf.keras.Model` taking `{feature: (batch,)}` and returning N (batch, 1)
    probabilities.

  Raises:
    PeerUnavailableError: when DeepCTR is not installed.
  """
  mmoe, sparse_feat, dense_feat = import_deepctr()
  columns = [
    sparse_feat(
      f.name,
      vocabulary_size=f.num_buckets,
      embedding_dim=model_config.embedding_dim or f.embedding_dim,
      dtype="int32",
    )
    for f in schema.sparse_features
  ]
  columns += [dense_feat(f.name, 1) for f in schema.dense_features]
  model = mmoe(
    columns,
    num_experts=model_config.num_experts,
    expert_dnn_hidden_units=tuple(model_config.expert_units),
    tower_dnn_hidden_units=tuple(model_config.tower_units),
    l2_reg_embedding=0.0,
    dnn_activation=model_config.activation,
    task_types=("binary",) * schema.num_actions,
    task_names=tuple(schema.actions),
  )
  if not isinstance(model, tf.keras.Model):
    # DeepCTR picked another Keras than tf-keras: the comparison would not be like for like.
    raise RuntimeError(
      f"DeepCTR built a {type(model).__module__}.{type(model).__name__}, not a "
      "tf.keras (tf-keras) model; import kaml_tf before DeepCTR"
    )
  model.compile(
    optimizer=tf.keras.optimizers.Adam(learning_rate),
    loss=["binary_crossentropy"] * schema.num_actions,
  )
  return model


class PeerRunner:
  """DeepCTR's MMoE fed from NumPy arrays (a `benchmarks.throughput` runner).

  Args:
    schema: The logs' schema.
    columns: Log columns to train on (`read_columns`); a turn of `steps` steps takes the
      first `steps * batch_size` rows, so it needs that many.
    batch_size: Samples per step.
    model_config: Sizes (default: the base MMoE's).
    learning_rate: Adam learning rate.
  """

  def __init__(
    self,
    schema: schema_lib.Schema,
    columns: Mapping[str, np.ndarray],
    batch_size: int = 5000,
    model_config: model_config_lib.ModelConfig = model_config_lib.ModelConfig(),
    learning_rate: float = 1e-3,
    name: str = "deepctr_mmoe",
  ):
    self.name = name
    self.batch_size = batch_size
    self.model = build_peer(schema, model_config, learning_rate)
    self.inputs, self.labels = numpy_inputs(columns, schema)
    self.rows = len(self.labels[0])

  def fit(self, steps: int, callback: tf.keras.callbacks.Callback) -> None:
    n = steps * self.batch_size
    if n > self.rows:
      raise ValueError(
        f"{steps} steps of {self.batch_size} need {n} rows; the peer has {self.rows}"
      )
    self.model.fit(
      {k: v[:n] for k, v in self.inputs.items()},
      [y[:n] for y in self.labels],
      batch_size=self.batch_size,
      epochs=1,
      verbose=0,
      shuffle=True,
      callbacks=[callback],
    )
