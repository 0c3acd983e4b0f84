"""The optimizers of a training run: Adam, or Adam plus a sparse-aware one for the embeddings.

`--embedding_optimizer=adam` (the default) trains every variable with one Adam. `adagrad` or
`ftrl` trains the embedding tables with that optimizer at `--embedding_learning_rate` and every
other variable with Adam at `--learning_rate`, as production CTR systems do. Why: Adam
normalises every parameter's step, so an embedding row shared by all heads moves about as far
under a small loss weight as under a large one; Adagrad's and FTRL's steps scale with the
gradient (over the root of the row's accumulated squared gradients), so a head's weight in the
loss is also its weight in the rows' updates.

The tables are found from the network's layers, not by variable names: every
`tf.keras.layers.Embedding` it contains (the tables of each `FeatureEmbedding`, one per sparse
feature, multi-valued ones included; each task's own under `single_task`).

Adagrad updates only the rows the batch looked up (its sparse update). Keras' `Ftrl` has one
update for sparse and dense gradients: it turns the tables' gradients dense, so each step
updates every row of every table, and a row not looked up yet is set to FTRL's weight of
empty accumulators, zero.
"""

from typing import AbstractSet, Iterable, List, Optional, Tuple

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

ADAM = "adam"
ADAGRAD = "adagrad"
FTRL = "ftrl"
EMBEDDING_OPTIMIZERS = (ADAM, ADAGRAD, FTRL)

_SPARSE_AWARE = {ADAGRAD: tf.keras.optimizers.Adagrad, FTRL: tf.keras.optimizers.Ftrl}

GradientsAndVariables = List[Tuple[tf.Tensor, tf.Variable]]


def embedding_optimizer(name: str, learning_rate: float) -> Optional[tf.keras.optimizers.Optimizer]:
  """The embedding tables' own optimizer with Keras' defaults, or None for `adam` (one Adam).

  Raises:
    ValueError: for a name not in `EMBEDDING_OPTIMIZERS`.
  """
  if name == ADAM:
    return None
  if name not in _SPARSE_AWARE:
    raise ValueError(f"embedding optimizer must be one of {EMBEDDING_OPTIMIZERS}, got {name!r}")
  return _SPARSE_AWARE[name](learning_rate)


def embedding_tables(network: tf.keras.Model) -> List[tf.Variable]:
  """The trainable variables of every `tf.keras.layers.Embedding` inside `network`."""
  tables, seen = [], set()
  for layer in network.submodules:
    if isinstance(layer, tf.keras.layers.Embedding):
      for variable in layer.trainable_variables:
        if variable.ref() not in seen:
          seen.add(variable.ref())
          tables.append(variable)
  return tables


def split(
  pairs: Iterable[Tuple[tf.Tensor, tf.Variable]], tables: AbstractSet[object]
) -> Tuple[GradientsAndVariables, GradientsAndVariables]:
  """(the pairs of the embedding tables, the others), each in the order given.

  Args:
    pairs: (gradient or None, variable), as `zip(gradients, variables)`.
    tables: The tables' `variable.ref()`s.
  """
  embedding, other = [], []
  for gradient, variable in pairs:
    (embedding if variable.ref() in tables else other).append((gradient, variable))
  return embedding, other
