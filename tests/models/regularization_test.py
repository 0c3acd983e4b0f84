"""Dropout and embedding L2 in every backbone, with and without HKE (ModelConfig -> builder)."""

import itertools

import numpy as np
import pytest

import kaml_tf  # noqa: F401
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.layers import mlp
from kaml_tf.layers import parallel_mlp
from kaml_tf.layers import star
from kaml_tf.models import builder
from kaml_tf.models import config as config_lib

SCHEMA = schema_lib.Schema(
  actions=("activate", "register", "pay"),
  sparse_features=(
    schema_lib.SparseFeature("user", num_buckets=11, embedding_dim=3),
    schema_lib.SparseFeature("city", dtype="string", num_buckets=5, embedding_dim=2),
  ),
  dense_features=(schema_lib.DenseFeature("price", mean=2.0, std=4.0),),
)

# TAML's self-distillation is off so that `model.losses` holds the embedding penalty only.
TINY = dict(
  expert_units=(6,),
  num_experts=2,
  bottom_units=(6,),
  star_units=(6, 4),
  tower_units=(4,),
  hke_sub_tower_units=(4,),
  hke_final_units=(3,),
  distillation_weight=0.0,
)
COMBOS = list(itertools.product(config_lib.BACKBONES, (False, True)))
# Every table is filled with one value per feature, so each looked-up row has the squared norm
# dim * value^2 whatever the id: user 3 * 0.5^2 = 0.75, city 2 * 1^2 = 2, per sample 2.75.
TABLE_VALUES = {"user": 0.5, "city": 1.0}
PER_SAMPLE = 2.75


def _inputs(hke, batch=8):
  inputs = {
    "user": tf.range(batch, dtype=tf.int64),
    "city": tf.constant(["a", "b", "c", "d"] * (batch // 4)),
    "price": tf.linspace(-1.0, 1.0, batch),
  }
  if hke:
    # Half the rows are original samples of some action, the rest extended only.
    inputs[builder.HKE_INDICATOR] = tf.one_hot([0, 1, 2, -1] * (batch // 4), 3)
  return inputs


def _build(backbone, hke, **overrides):
  tf.keras.utils.set_random_seed(4)
  return builder.build_model(
    SCHEMA, config_lib.ModelConfig(backbone=backbone, hke=hke, **dict(TINY, **overrides))
  )


@pytest.mark.parametrize("backbone, hke", COMBOS)
def test_dropout_is_random_in_training_and_off_at_inference(backbone, hke):
  model = _build(backbone, hke, dropout=0.5)
  x = _inputs(hke)
  first, second = model(x, training=True).numpy(), model(x, training=True).numpy()
  assert not np.array_equal(first, second)
  inference = model(x, training=False).numpy()
  np.testing.assert_array_equal(model(x, training=False).numpy(), inference)
  np.testing.assert_array_equal(model(x).numpy(), inference)  # the default is inference


@pytest.mark.parametrize("backbone, hke", COMBOS)
def test_every_hidden_layer_has_dropout(backbone, hke):
  model = _build(backbone, hke, dropout=0.25)
  hidden = [
    m
    for m in model.submodules
    if isinstance(m, (mlp.MLP, parallel_mlp.ParallelMLP, star.Star)) and m.units
  ]
  assert hidden  # experts / bottoms / STAR layers / towers / HKE sub-towers
  for layer in hidden:
    assert [d.rate for d in layer.dropout_layers] == [0.25] * len(layer.units), layer.name


@pytest.mark.parametrize("backbone, hke", COMBOS)
def test_embedding_l2_is_the_hand_computed_penalty_of_the_rows_used(backbone, hke):
  model = _build(backbone, hke, embedding_l2=0.01)
  tables = [m for m in model.submodules if isinstance(m, tf.keras.layers.Embedding)]
  # single_task has one set of tables per action.
  assert len(tables) == 2 * (3 if backbone == "single_task" else 1)
  for table in tables:
    value = TABLE_VALUES[table.name[len("embedding_") :]]
    table.embeddings.assign(tf.fill(table.embeddings.shape, value))
  model(_inputs(hke), training=True)
  copies = 3 if backbone == "single_task" else 1
  assert len(model.losses) == copies
  assert float(tf.add_n(model.losses)) == pytest.approx(0.01 * PER_SAMPLE * copies, rel=1e-6)


@pytest.mark.parametrize("backbone, hke", COMBOS)
def test_without_dropout_or_l2_training_calls_repeat_and_add_no_loss(backbone, hke):
  model = _build(backbone, hke, dropout=0.0, embedding_l2=0.0)
  x = _inputs(hke)
  np.testing.assert_array_equal(model(x, training=True).numpy(), model(x, training=True).numpy())
  assert not model.losses


def test_regularisation_settings_do_not_change_the_initial_weights():
  # The same seed gives the same network whatever dropout and L2 say (no extra variables, no
  # extra random draws at construction), so inference outputs agree too.
  plain = _build("ple", hke=True)
  regularised = _build("ple", hke=True, dropout=0.3, embedding_l2=0.1)
  for a, b in zip(plain.get_weights(), regularised.get_weights()):
    np.testing.assert_array_equal(a, b)
  x = _inputs(hke=True)
  np.testing.assert_array_equal(plain(x).numpy(), regularised(x).numpy())
