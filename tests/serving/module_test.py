"""ServingModule: the selector, predict_all, Examples, input checks, and what it tracks."""

import kaml_tf  # noqa: F401
import numpy as np
import pytest
import tensorflow as tf

from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.models import builder
from kaml_tf.serving import client
from kaml_tf.serving import module as module_lib
from kaml_tf.training import trained_model


def _inputs(kit, columns):
  inputs = kit.features_of(columns)
  inputs[module_lib.TARGET_INPUT] = tf.constant(columns[schema_lib.TARGET_ACTION], tf.int64)
  return inputs


@pytest.fixture(scope="module")
def hke_module(hke_model_dir):
  model = trained_model.load(hke_model_dir)
  return model, module_lib.ServingModule(model).signatures()


@pytest.mark.parametrize("backbone", ["mmoe", "taml"])  # TAML: one indicator, 2 learners.
def test_predict_all_at_the_target_is_the_one_hot_indicator(
  tmp_path, kit, log_files, hke_model_dir, backbone
):
  """Each HKE tower reads only its own indicator column: all-ones == one_hot at the target.

  (The export test checks the same on every backbone, through the SavedModel, within 1e-5.)
  """
  _, columns = log_files
  model_dir = hke_model_dir if backbone == "mmoe" else str(tmp_path)
  if backbone != "mmoe":
    kit.make_model_dir(model_dir, backbone, hke=True)
  model = trained_model.load(model_dir)
  target = columns[schema_lib.TARGET_ACTION]
  rows = np.arange(len(target))
  features = kit.features_of(columns)
  one_hot = dict(features)
  one_hot[builder.HKE_INDICATOR] = tf.one_hot(target, kit.schema.num_actions)
  selected = model.network(one_hot, training=False).numpy()[rows, target]
  logits_all = model.logits_all(features).numpy()
  np.testing.assert_array_equal(logits_all[rows, target], selected)
  # The indicator matters: with zeros (the extended sub-towers) the logits differ.
  zeros = dict(features)
  zeros[builder.HKE_INDICATOR] = tf.zeros([len(target), kit.schema.num_actions])
  assert np.abs(model.network(zeros, training=False).numpy() - logits_all).min() > 1e-6


def test_signatures_match_the_network(hke_module, kit, log_files):
  model, signatures = hke_module
  _, columns = log_files
  features = kit.features_of(columns)
  features[builder.HKE_INDICATOR] = tf.ones([len(columns["bid"]), kit.schema.num_actions])
  probabilities = tf.sigmoid(model.network(features, training=False)).numpy()
  target = columns[schema_lib.TARGET_ACTION]

  every = signatures[module_lib.PREDICT_ALL](kit.features_of(columns))
  assert list(every) == ["probabilities"]
  np.testing.assert_allclose(every["probabilities"].numpy(), probabilities, atol=1e-6)
  selected = signatures[module_lib.SERVING_DEFAULT](_inputs(kit, columns))
  assert sorted(selected) == ["cvr", "logit"]
  np.testing.assert_allclose(
    selected["cvr"].numpy(), probabilities[np.arange(len(target)), target], atol=1e-6
  )
  np.testing.assert_allclose(
    tf.sigmoid(selected["logit"]).numpy(), selected["cvr"].numpy(), atol=1e-7
  )
  examples = tf.constant(records.encode_examples(columns, kit.schema.record_dtypes()))
  from_examples = signatures[module_lib.SERVE_EXAMPLES](examples)
  np.testing.assert_array_equal(from_examples["cvr"].numpy(), selected["cvr"].numpy())
  np.testing.assert_array_equal(from_examples["logit"].numpy(), selected["logit"].numpy())


def test_selector_picks_each_rows_own_action(hke_module, kit, log_files):
  """Row i with target j returns predict_all[i, j], whatever the other rows ask for."""
  model, signatures = hke_module
  _, columns = log_files
  every = signatures[module_lib.PREDICT_ALL](kit.features_of(columns))["probabilities"].numpy()
  n = len(columns["bid"])
  for action in range(kit.schema.num_actions):
    rows = dict(columns)
    rows[schema_lib.TARGET_ACTION] = np.full(n, action, np.int64)
    cvr = signatures[module_lib.SERVING_DEFAULT](_inputs(kit, rows))["cvr"].numpy()
    # Not bit-equal: the selector runs the chosen sub-tower on differently shaped matmuls,
    # whose oneDNN kernels may round the last bit differently.
    np.testing.assert_allclose(cvr, every[:, action], rtol=0, atol=1e-6)
  # A batch of one row gives the same value as inside a batch.
  one = {k: np.asarray(v)[3:4] for k, v in columns.items()}
  cvr = signatures[module_lib.SERVING_DEFAULT](_inputs(kit, one))["cvr"].numpy()
  np.testing.assert_allclose(cvr, [every[3, columns[schema_lib.TARGET_ACTION][3]]], atol=1e-6)


@pytest.mark.parametrize("bad_target", [-1, 3, 100])
def test_target_outside_the_actions_is_rejected(hke_module, kit, log_files, bad_target):
  _, signatures = hke_module
  _, columns = log_files
  rows = dict(columns)
  rows[schema_lib.TARGET_ACTION] = np.array(columns[schema_lib.TARGET_ACTION])
  rows[schema_lib.TARGET_ACTION][2] = bad_target
  message = (
    r"target_action must be in \[0, 3\): the index of one of the actions "
    r"\(install, register, pay\); -1 \(Other\) has no tower"
  )
  with pytest.raises(tf.errors.InvalidArgumentError, match=message):
    signatures[module_lib.SERVING_DEFAULT](_inputs(kit, rows))
  examples = tf.constant(records.encode_examples(rows, kit.schema.record_dtypes()))
  with pytest.raises(tf.errors.InvalidArgumentError, match=message):
    signatures[module_lib.SERVE_EXAMPLES](examples)


def test_saved_model_rejects_a_bad_target(exported, log_files):
  """The check survives export: the loaded signature raises, naming target_action."""
  _, columns = log_files
  signature = tf.saved_model.load(exported.path).signatures[module_lib.SERVING_DEFAULT]
  inputs = {
    k: tf.constant(np.asarray(columns[k])[:2])
    for k in client.ExportedModel(exported.path).input_specs(module_lib.SERVING_DEFAULT)
  }
  inputs[module_lib.TARGET_INPUT] = tf.constant([0, 3], tf.int64)
  with pytest.raises(tf.errors.InvalidArgumentError, match=r"target_action must be in \[0, 3\)"):
    signature(**inputs)


def test_inputs_of_different_lengths_are_rejected(hke_module, kit, log_files):
  _, signatures = hke_module
  _, columns = log_files
  inputs = _inputs(kit, columns)
  inputs["bid"] = inputs["bid"][:5]
  with pytest.raises(
    tf.errors.InvalidArgumentError, match="every input must hold one value per row"
  ):
    signatures[module_lib.SERVING_DEFAULT](inputs)
  with pytest.raises(
    tf.errors.InvalidArgumentError, match="every input must hold one value per row"
  ):
    signatures[module_lib.PREDICT_ALL](
      {k: v for k, v in inputs.items() if k != module_lib.TARGET_INPUT}
    )


def test_example_without_target_action_is_rejected(hke_module, kit, log_files):
  _, signatures = hke_module
  _, columns = log_files
  dtypes = {k: d for k, d in kit.schema.record_dtypes().items() if k != schema_lib.TARGET_ACTION}
  examples = tf.constant(records.encode_examples(columns, dtypes))
  with pytest.raises(tf.errors.InvalidArgumentError, match="target_action"):
    signatures[module_lib.SERVE_EXAMPLES](examples)


def test_tracks_only_the_networks_state(hke_module):
  """Variables and lookup tables, not the Keras model (whose save would trace every layer)."""
  model, _ = hke_module
  serving = module_lib.ServingModule(model)
  assert {id(v) for v in serving.variables} == {id(v) for v in model.network.variables}
  assert not any(isinstance(m, tf.keras.layers.Layer) for m in serving.submodules)
  tables = [t for t in serving._state if not isinstance(t, tf.Variable)]
  assert len(tables) == 2  # The two vocabularies of the schema (city, ad_task_id).


def test_network_with_other_inputs_is_refused(hke_module, kit):
  model, _ = hke_module
  other = schema_lib.Schema(
    actions=kit.schema.actions, sparse_features=kit.schema.sparse_features[:1]
  )
  wrong = trained_model.TrainedModel(
    schema=other, run_config=model.run_config, network=model.network, checkpoint=model.checkpoint
  )
  with pytest.raises(
    ValueError,
    match=r"the network's inputs \['ad_task_id', 'bid', 'city', "
    r"'hke_indicator', 'user_id'\] are not the schema's",
  ):
    module_lib.ServingModule(wrong)
