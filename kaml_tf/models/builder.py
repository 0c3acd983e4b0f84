"""`build_model`: schema + `ModelConfig` -> a functional tf-keras model from features to logits.

Every model has the same skeleton (paper section 3.1, Figure 3):

  features --FeatureEmbedding--> x --backbone--> h_j per action --towers--> logits (batch, N)

* backbone (`ModelConfig.backbone`):
  - `single_task`: N independent networks (own embeddings and MLP) (`SingleTask`);
  - `shared_bottom`: shared embeddings and an optional shared MLP (`MLP`);
  - `mmoe`: eq. 2-3 (`MMoE`); `ple`: stacked CGC levels (`PLE`); `star`: STAR (`Star`);
  - `taml`: TAML's learners (`TAML`), one tower per learner, fused by `LearnerFusion`, which
    registers the label-free self-distillation term with `add_loss` (it is in `model.losses`).
* towers: an MLP then a logit per action (eq. 4, `Towers`), or with `hke=True` the HKE towers
  (eq. 9-10, `HKETowers`) routed by the extra input `hke_indicator` (batch, N) float32:
  1 where the action is the sample's target (at serving: one_hot(requested action)).
  HKE on TAML: every learner's tower is an HKE tower and all learners of action j follow j's
  indicator (see `kaml_tf.layers.taml`, choice 6).

Regularisation: `dropout` follows every hidden layer of every backbone and tower (experts,
bottoms, STAR layers, towers, HKE sub-towers and final MLP; not gates, not logits), active in
training only; `embedding_l2` penalises the looked-up embedding rows (`FeatureEmbedding`), in
`model.losses` with TAML's self-distillation.

Inputs are `schema.keras_inputs()` (one scalar per example and feature, or `max_values` padded
ids for a multi-valued feature) plus `hke_indicator` only when HKE is on; the single output is
the float32 logits layer named "logits". Layers never see labels or masks.
"""

from absl import logging
import numpy as np

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.layers import embedding
from kaml_tf.layers import hke as hke_lib
from kaml_tf.layers import mlp
from kaml_tf.layers import mmoe
from kaml_tf.layers import ple
from kaml_tf.layers import single_task
from kaml_tf.layers import star
from kaml_tf.layers import taml
from kaml_tf.layers import towers as towers_lib
from kaml_tf.models import config as config_lib

HKE_INDICATOR = schema_lib.HKE_INDICATOR
OUTPUT_NAME = "logits"


def count_parameters(model: tf.keras.Model) -> int:
  """The number of trainable scalars of `model` (BN moving statistics are not counted)."""
  return int(sum(np.prod(v.shape.as_list()) for v in model.trainable_weights))


def _backbone(schema: schema_lib.Schema, config: config_lib.ModelConfig, features):
  """Returns the per-head representations: (batch, H, d), or (batch, d) shared by all heads."""
  n = schema.num_actions
  common = dict(activation=config.activation, dropout=config.dropout)
  if config.backbone == "single_task":
    return single_task.SingleTask(
      schema,
      config.bottom_units,
      config.embedding_dim,
      embedding_l2=config.embedding_l2,
      name="single_task",
      **common,
    )(features)
  x = embedding.FeatureEmbedding(
    schema, config.embedding_dim, l2=config.embedding_l2, name="embedding"
  )(features)
  if config.backbone == "shared_bottom":
    return mlp.MLP(config.bottom_units, name="shared_bottom", **common)(x)
  if config.backbone == "mmoe":
    return mmoe.MMoE(n, config.num_experts, config.expert_units, name="mmoe", **common)(x)
  if config.backbone == "ple":
    return ple.PLE(
      n,
      config.num_levels,
      config.num_task_experts,
      config.num_shared_experts,
      config.expert_units,
      name="ple",
      **common,
    )(x)
  if config.backbone == "star":
    return star.Star(n, config.star_units, name="star", **common)(x)
  if config.backbone == "taml":
    return taml.TAML(
      n,
      config.num_learners,
      config.num_shared_experts,
      config.num_task_experts,
      config.num_learner_experts,
      config.expert_units,
      name="taml",
      **common,
    )(x)
  raise ValueError(f"unknown backbone {config.backbone!r}")  # ModelConfig already refuses it.


def build_model(
  schema: schema_lib.Schema, config: config_lib.ModelConfig = config_lib.ModelConfig()
) -> tf.keras.Model:
  """Builds the functional model mapping raw features to per-action logits.

  Args:
    schema: The feature schema (features, actions).
    config: Model hyper-parameters.

  Returns:
    A `tf.keras.Model` whose inputs are a dict `{feature: (batch,)}` (`(batch, max_values)`
    for a multi-valued feature; plus `hke_indicator: (batch, N)` float32 when `config.hke`)
    and whose output is the logits `(batch, N)` float32 (layer "logits"). TAML's
    self-distillation is in `model.losses`.

  Raises:
    TypeError: if `schema` or `config` has the wrong type.
    ValueError: if a schema feature is named like the HKE indicator input.
  """
  if not isinstance(schema, schema_lib.Schema):
    raise TypeError(f"build_model: schema must be a kaml_tf.schema.Schema, got {schema!r}")
  if not isinstance(config, config_lib.ModelConfig):
    raise TypeError(f"build_model: config must be a ModelConfig, got {config!r}")
  if config.hke and HKE_INDICATOR in schema.feature_names:
    raise ValueError(
      f"build_model: schema feature {HKE_INDICATOR!r} clashes with the HKE "
      "indicator input; rename the feature"
    )
  n = schema.num_actions
  features = schema.keras_inputs()
  inputs = dict(features)
  if config.hke:
    inputs[HKE_INDICATOR] = tf.keras.Input(shape=(n,), dtype=tf.float32, name=HKE_INDICATOR)

  representations = _backbone(schema, config, features)
  learners = config.num_learners if config.backbone == "taml" else 1
  heads = n * learners
  common = dict(activation=config.activation, dropout=config.dropout)
  if config.hke:
    logits = hke_lib.HKETowers(
      heads,
      config.hke_sub_tower_units,
      config.hke_final_units,
      group_size=learners,
      name="hke_towers",
      **common,
    )([representations, inputs[HKE_INDICATOR]])
  else:
    logits = towers_lib.Towers(heads, config.tower_units, name="towers", **common)(representations)
  if config.backbone == "taml":
    logits = taml.LearnerFusion(n, learners, config.distillation_weight, name="learner_fusion")(
      logits
    )
  logits = tf.keras.layers.Activation("linear", dtype="float32", name=OUTPUT_NAME)(logits)

  name = f"kaml_{config.backbone}" + ("_hke" if config.hke else "")
  model = tf.keras.Model(inputs=inputs, outputs=logits, name=name)
  logging.info("Built %s for %d actions: %d trainable parameters", name, n, count_parameters(model))
  return model
