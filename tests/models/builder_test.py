"""Tests for kaml_tf.models.builder: every backbone, with and without HKE."""

import itertools
import os

import numpy as np
import pytest

import kaml_tf  # noqa: F401
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.models import builder
from kaml_tf.models import config as config_lib

SCHEMA = schema_lib.Schema(
  actions=("activate", "register", "pay"),
  sparse_features=(
    schema_lib.SparseFeature("user", num_buckets=11, embedding_dim=3),
    schema_lib.SparseFeature("city", dtype="string", num_buckets=5, embedding_dim=2),
    schema_lib.SparseFeature("slot", vocabulary=(3, 7), embedding_dim=2),
  ),
  dense_features=(schema_lib.DenseFeature("price", mean=2.0, std=4.0),),
)

TINY = dict(
  embedding_dim=None,
  expert_units=(6,),
  num_experts=2,
  bottom_units=(6,),
  star_units=(6, 4),
  tower_units=(4,),
  hke_sub_tower_units=(4,),
  hke_final_units=(3,),
  dropout=0.1,
  activation="tanh",
)

# Sample 0 targets action 0, 1 targets action 1, 2 is "Other" (no target), 3 targets action 2.
INDICATOR = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0], [0, 0, 1]], np.float32)


def _inputs(hke):
  inputs = {
    "user": tf.constant([1, 25, -4, 1], tf.int64),
    "city": tf.constant(["a", "b", "c", "a"]),
    "slot": tf.constant([3, 7, 9, 3], tf.int64),
    "price": tf.constant([0.0, 2.0, 10.0, -6.0]),
  }
  if hke:
    inputs[builder.HKE_INDICATOR] = tf.constant(INDICATOR)
  return inputs


def _build(backbone, hke, **overrides):
  tf.keras.utils.set_random_seed(1)
  return builder.build_model(
    SCHEMA, config_lib.ModelConfig(backbone=backbone, hke=hke, **dict(TINY, **overrides))
  )


COMBOS = list(itertools.product(config_lib.BACKBONES, (False, True)))


@pytest.mark.parametrize("backbone, hke", COMBOS)
def test_builds_runs_trains_and_round_trips(backbone, hke, tmp_path):
  model = _build(backbone, hke)
  # Interface: one scalar input per feature (+ the indicator), one float32 "logits" output.
  expected_inputs = set(SCHEMA.feature_names) | ({builder.HKE_INDICATOR} if hke else set())
  assert set(model.input) == expected_inputs
  assert model.output_names == [builder.OUTPUT_NAME]
  x = _inputs(hke)
  logits = model(x, training=False)
  assert logits.shape == (4, 3) and logits.dtype == tf.float32
  assert np.isfinite(logits.numpy()).all()
  assert len(model.losses) == (1 if backbone == "taml" else 0)

  # One training step: a masked BCE stand-in plus the model's own regularisers.
  labels = tf.constant([[1, 0, 0], [0, 1, 1], [0, 0, 0], [1, 0, 1]], tf.float32)
  before = [w.numpy().copy() for w in model.trainable_weights]
  with tf.GradientTape() as tape:
    out = model(x, training=True)
    loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels, out))
    loss += tf.add_n(model.losses) if model.losses else 0.0
  grads = tape.gradient(loss, model.trainable_weights)
  assert all(g is not None for g in grads), [
    w.name for w, g in zip(model.trainable_weights, grads) if g is None
  ]
  tf.keras.optimizers.Adam(1e-2).apply_gradients(zip(grads, model.trainable_weights))
  assert np.isfinite(loss.numpy())
  assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights))

  expected = model(x, training=False).numpy()
  # Keras v3 file: same outputs exactly, with no custom_objects needed.
  path = os.path.join(tmp_path, "model.keras")
  model.save(path)
  loaded = tf.keras.models.load_model(path)
  np.testing.assert_array_equal(loaded(x, training=False).numpy(), expected)
  # get_config round trip: the same architecture, which takes the same weights.
  clone = tf.keras.Model.from_config(model.get_config())
  clone.set_weights(model.get_weights())
  np.testing.assert_array_equal(clone(x, training=False).numpy(), expected)
  assert builder.count_parameters(clone) == builder.count_parameters(model)


@pytest.mark.parametrize("backbone", config_lib.BACKBONES)
def test_hke_routes_by_indicator(backbone):
  model = _build(backbone, hke=True)
  x = _inputs(hke=True)
  before = model(x, training=False).numpy()
  extended = model.get_layer("hke_towers").extended
  rng = np.random.default_rng(0)
  extended.set_weights(
    [w + rng.normal(0.5, 0.1, w.shape).astype(np.float32) for w in extended.get_weights()]
  )
  after = model(x, training=False).numpy()
  original = INDICATOR == 1
  np.testing.assert_array_equal(after[original], before[original])
  assert (after[~original] != before[~original]).all()


def test_serving_with_one_hot_of_the_requested_action_uses_the_original_path():
  model = _build("mmoe", hke=True)
  x = _inputs(hke=True)
  towers = model.get_layer("hke_towers")
  for j in range(3):
    x[builder.HKE_INDICATOR] = tf.one_hot([j] * 4, 3)
    served = model(x).numpy()[:, j]
    # Reference: action j's tower evaluated by hand on the original sub-tower alone.
    h = model.get_layer("mmoe")(model.get_layer("embedding")(x))
    original = towers.original(h)
    reference = tf.squeeze(towers.logit(towers.final(original)), -1).numpy()[:, j]
    np.testing.assert_allclose(served, reference, rtol=1e-6)


def test_parameter_count_hand_computed():
  schema = schema_lib.Schema(
    actions=("a", "b"),
    sparse_features=(schema_lib.SparseFeature("u", num_buckets=4, embedding_dim=2),),
    dense_features=(schema_lib.DenseFeature("d"),),
  )
  config = config_lib.ModelConfig(num_experts=2, expert_units=(3,), tower_units=(2,))
  # embedding 4*2 = 8; x has 2 + 1 = 3 columns; experts 2 * (3*3 + 3) = 24;
  # gates (no bias) 2 actions * 3 * 2 experts = 12; towers 2 * (3*2 + 2) = 16;
  # logits 2 * (2 + 1) = 6.
  assert builder.count_parameters(builder.build_model(schema, config)) == 8 + 24 + 12 + 16 + 6
  hke = config_lib.ModelConfig(
    num_experts=2, expert_units=(3,), hke=True, hke_sub_tower_units=(2,), hke_final_units=()
  )
  # HKE replaces the towers: two sub-towers 2 * 2 * (3*2 + 2) = 32; logits 6.
  assert builder.count_parameters(builder.build_model(schema, hke)) == 8 + 24 + 12 + 32 + 6


def test_taml_distillation_weight_is_applied():
  heavy = _build("taml", hke=False, distillation_weight=1.0)
  light = _build("taml", hke=False, distillation_weight=0.25)
  light.set_weights(heavy.get_weights())
  x = _inputs(hke=False)
  heavy(x)
  light(x)
  np.testing.assert_allclose(light.losses[0].numpy(), 0.25 * heavy.losses[0].numpy(), rtol=1e-6)
  assert not _build("taml", hke=False, distillation_weight=0.0).losses


def test_errors():
  with pytest.raises(TypeError, match="schema must be a kaml_tf.schema.Schema"):
    builder.build_model(SCHEMA.to_dict(), config_lib.ModelConfig())
  with pytest.raises(TypeError, match="config must be a ModelConfig"):
    builder.build_model(SCHEMA, {"backbone": "mmoe"})
  clash = schema_lib.Schema(
    actions=("a",), dense_features=(schema_lib.DenseFeature(builder.HKE_INDICATOR),)
  )
  with pytest.raises(ValueError, match="'hke_indicator' clashes with the HKE indicator"):
    builder.build_model(clash, config_lib.ModelConfig(hke=True))
