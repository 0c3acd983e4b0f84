"""The training task: a `tfrs.Model` whose `compute_loss` applies KAML's masked losses.

The network (a functional Keras model from `kaml_tf.models.builder`) only maps features to
logits; this task owns the labels, masks, loss terms and metrics.

Global averages under distribution: each replica computes the losses' per-action sums and
counts, and `kaml_tf.losses.statistics_loss.all_reduce_statistics` turns them into the
replica's share of the objective (to differentiate) and the global loss terms (to log); that
module's docstring explains the arithmetic, and why the summed gradients equal the
single-device gradient.
"""

from typing import Dict, List, Optional, Sequence, Tuple

import kaml_tf  # noqa: F401
import tensorflow as tf
import tensorflow_recommenders as tfrs

from kaml_tf.losses import joint
from kaml_tf.losses import statistics_loss
from kaml_tf.evaluation import streaming_auc
from kaml_tf.training import optimizers as optimizers_lib

Features = Dict[str, tf.Tensor]
Targets = Dict[str, tf.Tensor]


class KamlTask(tfrs.Model):
  """Wraps a logits network with the KAML objective, loss-term metrics and per-action AUCs.

  Inputs to `fit`/`evaluate` are `(features, targets)` from `kaml_tf.data.dataset`:
  features hold the schema's features (+ `hke_indicator`), targets hold `labels`, `mask` and
  `is_target` (batch, N).

  The compiled optimizer trains every variable, or with an `embedding_optimizer` every
  variable but the embedding tables, which that one trains (`kaml_tf.training.optimizers`).
  """

  def __init__(
    self,
    network: tf.keras.Model,
    loss: joint.KamlLoss,
    action_names: Sequence[str],
    embedding_optimizer: Optional[tf.keras.optimizers.Optimizer] = None,
  ):
    super().__init__()
    self.network = network
    self.embedding_optimizer = embedding_optimizer
    # References, not the variables: a list attribute would be tracked by Keras.
    self._tables = frozenset(
      t.ref() for t in (optimizers_lib.embedding_tables(network) if embedding_optimizer else ())
    )
    self.loss_fn = loss
    self.action_names = tuple(action_names)
    self._input_names = tuple(network.input_names)
    self.term_metrics = [tf.keras.metrics.Mean(name=t) for t in joint.TERMS]
    self.auc_metric = streaming_auc.MaskedStreamingAUC(len(self.action_names), name="auc")
    # Every replica's logs are already global (the loss terms come from all-reduced statistics
    # and Keras aggregates metric state across replicas when reading a result), so fit must
    # report the first replica's logs. tf-keras's default ("auto" = "sum" off TPU) would add
    # them up and report num_replicas times the loss and the AUCs.
    self.distribute_reduction_method = "first"

  def call(self, features: Features, training: bool = False) -> tf.Tensor:
    """Logits (batch, N) of the network, fed only the inputs it declares."""
    return self.network({k: features[k] for k in self._input_names}, training=training)

  def _terms(self, targets: Targets, logits: tf.Tensor) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
    """(objective to differentiate on this replica, global loss terms for logging)."""
    labels, mask = targets["labels"], targets["mask"]
    # is_target tells soft ADM's extended cells from target cells (the loss owns the weights).
    local = self.loss_fn.statistics(labels, logits, mask, targets.get("is_target"))
    regularization = tf.add_n(self.network.losses) if self.network.losses else tf.constant(0.0)
    # The regularization is a per-replica mean: it rides along, so every replica logs the same.
    share, total = statistics_loss.all_reduce_statistics(
      local, joint.COUNT_KEYS, {"regularization": regularization}
    )
    objective = self.loss_fn.from_statistics(share, share["regularization"])["total"]
    logged = self.loss_fn.from_statistics(total, total["regularization"])
    return objective, logged

  def compute_loss(self, inputs: Tuple[Features, Targets], training: bool = False) -> tf.Tensor:
    features, targets = inputs
    logits = self(features, training=training)
    objective, logged = self._terms(targets, logits)
    for metric in self.term_metrics:
      metric.update_state(logged[metric.name])
    self.auc_metric.update_state(targets["labels"], tf.sigmoid(logits), targets["mask"])
    return objective

  def _logs(self) -> Dict[str, tf.Tensor]:
    """Scalar logs: each loss term, and the masked streaming AUC of each action."""
    logs = {m.name: m.result() for m in self.term_metrics}
    aucs = self.auc_metric.result()
    logs.update({f"auc_{a}": aucs[k] for k, a in enumerate(self.action_names)})
    return logs

  def get_metrics_result(self) -> Dict[str, tf.Tensor]:
    """The epoch's logs, read from the metrics once the epoch's steps have run.

    Keras replaces the last step's logs with these when their keys match; this matters under
    ParameterServerStrategy, whose last scheduled step need not be the last to run (the
    default lists the AUCs as one vector, so the keys would not match).
    """
    return self._logs()

  def _by_optimizer(self, pairs) -> List[Tuple[tf.keras.optimizers.Optimizer, List]]:
    """(optimizer, its (gradient, variable) pairs) for each optimizer that has variables."""
    if self.embedding_optimizer is None:
      return [(self.optimizer, list(pairs))]
    tables, others = optimizers_lib.split(pairs, self._tables)
    return [(o, p) for o, p in ((self.embedding_optimizer, tables), (self.optimizer, others)) if p]

  def build_optimizers(self) -> None:
    """Creates every optimizer's slots now (call after `compile`, in the strategy's scope)."""
    for optimizer, pairs in self._by_optimizer((None, v) for v in self.trainable_variables):
      optimizer.build([v for _, v in pairs])

  # The step has no tensor-dependent Python control flow, so AutoGraph has nothing to do; left
  # on, it re-transpiles the whole loss/metric/tf-keras call tree and slows the first step of a
  # process down many times
  # (measured: docs/results/timings/library.md#autograph-and-the-first-training-step).
  @tf.autograph.experimental.do_not_convert
  def train_step(self, inputs):
    # tfrs.Model.train_step would add `self.losses` a second time (they are in the objective).
    with tf.GradientTape() as tape:
      objective = self.compute_loss(inputs, training=True)
    gradients = tape.gradient(objective, self.trainable_variables)
    for optimizer, pairs in self._by_optimizer(zip(gradients, self.trainable_variables)):
      optimizer.apply_gradients(pairs)
    return self._logs()

  @tf.autograph.experimental.do_not_convert
  def test_step(self, inputs):
    self.compute_loss(inputs, training=False)
    return self._logs()
