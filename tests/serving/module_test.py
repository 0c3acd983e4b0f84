"""ServingModule: the selector, predict_all, Examples, per-row validity, strict mode, input
checks, and what it tracks."""

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


@pytest.fixture(scope="module")
def strict_module(hke_module):
  model, _ = hke_module
  return module_lib.ServingModule(model, strict=True).signatures()


def _examples(kit, columns, drop=()):
  dtypes = {k: d for k, d in kit.schema.record_dtypes().items() if k not in drop}
  return tf.constant(records.encode_examples(columns, dtypes))


def _features_only(inputs):
  return {k: v for k, v in inputs.items() if k != module_lib.TARGET_INPUT}


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
  assert sorted(every) == ["probabilities", "valid"]
  np.testing.assert_allclose(every["probabilities"].numpy(), probabilities, atol=1e-6)
  assert every["valid"].numpy().all()
  selected = signatures[module_lib.SERVING_DEFAULT](_inputs(kit, columns))
  assert sorted(selected) == ["cvr", "logit", "valid"]
  assert selected["valid"].numpy().all()
  np.testing.assert_allclose(
    selected["cvr"].numpy(), probabilities[np.arange(len(target)), target], atol=1e-6
  )
  np.testing.assert_allclose(
    tf.sigmoid(selected["logit"]).numpy(), selected["cvr"].numpy(), atol=1e-7
  )
  examples = _examples(kit, columns)
  from_examples = signatures[module_lib.SERVE_EXAMPLES](examples)
  assert sorted(from_examples) == ["cvr", "logit", "missing_features", "valid"]
  np.testing.assert_array_equal(from_examples["cvr"].numpy(), selected["cvr"].numpy())
  np.testing.assert_array_equal(from_examples["logit"].numpy(), selected["logit"].numpy())
  assert from_examples["valid"].numpy().all()
  np.testing.assert_array_equal(from_examples["missing_features"].numpy(), np.zeros(12))
  regress = signatures[module_lib.REGRESS](examples)
  assert list(regress) == ["outputs"]
  np.testing.assert_array_equal(regress["outputs"].numpy(), selected["cvr"].numpy())


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


def _mixed_rows(kit, columns):
  """The log rows with two bad targets (rows 1, 5) and two non-finite bids (rows 2, 8)."""
  rows = {k: np.array(v) for k, v in columns.items()}
  rows[schema_lib.TARGET_ACTION][[1, 5]] = [-1, 3]
  rows["bid"][[2, 8]] = [np.nan, -np.inf]
  return rows


BAD_ROWS = [1, 2, 5, 8]


def test_a_mixed_batch_scores_each_valid_row_exactly_as_alone(hke_module, kit, log_files):
  """Bad rows get valid=False and the fill values; every other row is bit-equal to itself
  scored alone (a batch of one), and the call does not fail."""
  _, signatures = hke_module
  rows = _mixed_rows(kit, log_files[1])
  mixed = signatures[module_lib.SERVING_DEFAULT](_inputs(kit, rows))
  valid = np.ones(12, bool)
  valid[BAD_ROWS] = False
  np.testing.assert_array_equal(mixed["valid"].numpy(), valid)
  np.testing.assert_array_equal(mixed["cvr"].numpy()[BAD_ROWS], [module_lib.FILL_CVR] * 4)
  np.testing.assert_array_equal(mixed["logit"].numpy()[BAD_ROWS], [module_lib.FILL_LOGIT] * 4)
  # The fill values keep cvr = sigmoid(logit) and are finite.
  assert tf.sigmoid(tf.constant(module_lib.FILL_LOGIT)).numpy() == module_lib.FILL_CVR
  assert np.isfinite(mixed["logit"].numpy()).all()
  every = signatures[module_lib.PREDICT_ALL](_features_only(_inputs(kit, rows)))
  np.testing.assert_array_equal(every["valid"].numpy(), ~np.isin(np.arange(12), [2, 8]))
  np.testing.assert_array_equal(every["probabilities"].numpy()[[2, 8]], np.zeros((2, 3)))
  for row in np.flatnonzero(valid):
    one = {k: v[row : row + 1] for k, v in rows.items()}
    alone = signatures[module_lib.SERVING_DEFAULT](_inputs(kit, one))
    assert alone["valid"].numpy().tolist() == [True]
    assert alone["cvr"].numpy()[0] == mixed["cvr"].numpy()[row], row
    assert alone["logit"].numpy()[0] == mixed["logit"].numpy()[row], row
    # predict_all's sigmoid runs on (rows, N) values at once, and Eigen's vectorised sigmoid
    # may differ from its scalar one (a lone row) by one float32 step.
    all_alone = signatures[module_lib.PREDICT_ALL](_features_only(_inputs(kit, one)))
    np.testing.assert_allclose(
      all_alone["probabilities"].numpy()[0], every["probabilities"].numpy()[row], rtol=2.5e-7
    )
  # Against a batch of the same shape whose bad rows are repaired: bit-equal everywhere.
  repaired = {k: np.array(v) for k, v in rows.items()}
  repaired[schema_lib.TARGET_ACTION] = np.array(log_files[1][schema_lib.TARGET_ACTION])
  repaired["bid"] = np.array(log_files[1]["bid"])
  good = signatures[module_lib.SERVING_DEFAULT](_inputs(kit, repaired))
  all_good = signatures[module_lib.PREDICT_ALL](_features_only(_inputs(kit, repaired)))
  assert good["valid"].numpy().all()
  for k in ("cvr", "logit"):
    np.testing.assert_array_equal(mixed[k].numpy()[valid], good[k].numpy()[valid])
  finite = every["valid"].numpy()
  np.testing.assert_array_equal(
    every["probabilities"].numpy()[finite], all_good["probabilities"].numpy()[finite]
  )
  # Through Examples and Regress: the same outputs.
  from_examples = signatures[module_lib.SERVE_EXAMPLES](_examples(kit, rows))
  for k in ("cvr", "logit", "valid"):
    np.testing.assert_array_equal(from_examples[k].numpy(), mixed[k].numpy())
  regress = signatures[module_lib.REGRESS](_examples(kit, rows))["outputs"]
  np.testing.assert_array_equal(regress.numpy(), mixed["cvr"].numpy())


def test_non_finite_values_are_replaced_before_the_network(hke_module, kit, log_files):
  """A NaN / +-Inf dense value becomes the feature's mean before the network: no NaN comes
  out anywhere, and the rest of the batch scores as with the mean in those rows."""
  model, signatures = hke_module
  rows = _mixed_rows(kit, log_files[1])
  rows[schema_lib.TARGET_ACTION] = np.array(log_files[1][schema_lib.TARGET_ACTION])
  outputs = signatures[module_lib.SERVING_DEFAULT](_inputs(kit, rows))
  every = signatures[module_lib.PREDICT_ALL](_features_only(_inputs(kit, rows)))
  for value in list(outputs.values()) + list(every.values()):
    assert not np.isnan(value.numpy()).any()
  valid = outputs["valid"].numpy()
  np.testing.assert_array_equal(valid, np.isfinite(rows["bid"]))
  at_mean = dict(rows)
  at_mean["bid"] = np.where(valid, rows["bid"], kit.schema.dense_features[0].mean)
  expected = model.logits_all(kit.features_of(at_mean)).numpy()
  target = rows[schema_lib.TARGET_ACTION]
  np.testing.assert_allclose(
    outputs["logit"].numpy()[valid], expected[np.arange(12), target][valid], atol=1e-6
  )


def test_missing_features_are_filled_and_counted(hke_module, kit, log_files):
  """An Example without a feature scores as if it held the schema's missing value (the
  out-of-vocabulary id, the dense mean); without target_action the row is invalid."""
  _, signatures = hke_module
  columns = log_files[1]
  schema = kit.schema
  assert schema.missing_values() == {"user_id": 0, "city": "", "ad_task_id": -1, "bid": 1.0}
  dtypes = schema.record_dtypes()
  # Rows 0-3 lack city and bid, rows 4-7 are complete, rows 8-11 lack target_action.
  parts = [
    records.encode_examples(
      {k: v[0:4] for k, v in columns.items()}, _without(dtypes, "city", "bid")
    ),
    records.encode_examples({k: v[4:8] for k, v in columns.items()}, dtypes),
    records.encode_examples(
      {k: v[8:12] for k, v in columns.items()}, _without(dtypes, schema_lib.TARGET_ACTION)
    ),
  ]
  outputs = signatures[module_lib.SERVE_EXAMPLES](tf.constant(sum(parts, [])))
  np.testing.assert_array_equal(outputs["missing_features"].numpy(), [2] * 4 + [0] * 8)
  np.testing.assert_array_equal(outputs["valid"].numpy(), [True] * 8 + [False] * 4)
  np.testing.assert_array_equal(outputs["cvr"].numpy()[8:], [module_lib.FILL_CVR] * 4)
  filled = {k: np.array(v) for k, v in columns.items()}
  filled["city"] = np.array(["nowhere"] * 12, dtype=object)  # Out of vocabulary, like "".
  filled["bid"] = np.full(12, 1.0, np.float32)
  expected = signatures[module_lib.SERVING_DEFAULT](_inputs(kit, filled))["cvr"].numpy()
  complete = signatures[module_lib.SERVING_DEFAULT](_inputs(kit, columns))["cvr"].numpy()
  np.testing.assert_array_equal(outputs["cvr"].numpy()[:4], expected[:4])
  np.testing.assert_array_equal(outputs["cvr"].numpy()[4:8], complete[4:8])
  assert np.abs(expected[:4] - complete[:4]).max() > 1e-4  # The fill mattered.


def _without(dtypes, *names):
  return {k: d for k, d in dtypes.items() if k not in names}


def test_a_field_with_two_values_makes_only_its_row_invalid(hke_module, kit, log_files):
  _, signatures = hke_module
  columns = log_files[1]
  examples = records.encode_examples(columns, kit.schema.record_dtypes())
  doubled = tf.train.Example.FromString(examples[3])
  doubled.features.feature["user_id"].int64_list.value.append(7)
  examples[3] = doubled.SerializeToString()
  outputs = signatures[module_lib.SERVE_EXAMPLES](tf.constant(examples))
  np.testing.assert_array_equal(outputs["valid"].numpy(), np.arange(12) != 3)
  complete = signatures[module_lib.SERVING_DEFAULT](_inputs(kit, columns))["cvr"].numpy()
  np.testing.assert_array_equal(
    outputs["cvr"].numpy()[np.arange(12) != 3], complete[np.arange(12) != 3]
  )


TARGET_MESSAGE = (
  r"target_action must be in \[0, 3\): the index of one of the actions "
  r"\(install, register, pay\); -1 \(Other\) has no tower"
)


@pytest.mark.parametrize("bad_target", [-1, 3, 100])
def test_strict_mode_rejects_a_target_outside_the_actions(
  strict_module, kit, log_files, bad_target
):
  _, columns = log_files
  rows = dict(columns)
  rows[schema_lib.TARGET_ACTION] = np.array(columns[schema_lib.TARGET_ACTION])
  rows[schema_lib.TARGET_ACTION][2] = bad_target
  with pytest.raises(tf.errors.InvalidArgumentError, match=TARGET_MESSAGE):
    strict_module[module_lib.SERVING_DEFAULT](_inputs(kit, rows))
  with pytest.raises(tf.errors.InvalidArgumentError, match=TARGET_MESSAGE):
    strict_module[module_lib.SERVE_EXAMPLES](_examples(kit, rows))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_strict_mode_rejects_a_non_finite_input_naming_it(strict_module, kit, log_files, value):
  _, columns = log_files
  rows = dict(columns)
  rows["bid"] = np.array(columns["bid"])
  rows["bid"][4] = value
  message = "dense input bid must be finite, got NaN or Inf"
  with pytest.raises(tf.errors.InvalidArgumentError, match=message):
    strict_module[module_lib.SERVING_DEFAULT](_inputs(kit, rows))
  with pytest.raises(tf.errors.InvalidArgumentError, match=message):
    strict_module[module_lib.PREDICT_ALL](_features_only(_inputs(kit, rows)))


def test_strict_mode_scores_good_rows_like_the_default(strict_module, hke_module, kit, log_files):
  _, signatures = hke_module
  _, columns = log_files
  for name in (module_lib.SERVING_DEFAULT, module_lib.SERVE_EXAMPLES):
    args = _inputs(kit, columns) if name == module_lib.SERVING_DEFAULT else _examples(kit, columns)
    strict, default = strict_module[name](args), signatures[name](args)
    assert sorted(strict) == sorted(default)
    for k in strict:
      np.testing.assert_array_equal(strict[k].numpy(), default[k].numpy())


def test_saved_model_marks_a_bad_target_invalid(exported, log_files):
  """Per-row validity survives export: the loaded signature answers, row 1 invalid."""
  _, columns = log_files
  signature = tf.saved_model.load(exported.path).signatures[module_lib.SERVING_DEFAULT]
  inputs = {
    k: tf.constant(np.asarray(columns[k])[:2])
    for k in client.ExportedModel(exported.path).input_specs(module_lib.SERVING_DEFAULT)
  }
  inputs[module_lib.TARGET_INPUT] = tf.constant([0, 3], tf.int64)
  outputs = signature(**inputs)
  assert outputs["valid"].numpy().tolist() == [True, False]
  assert outputs["cvr"].numpy()[1] == module_lib.FILL_CVR


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


def test_strict_mode_rejects_an_example_without_a_field(strict_module, kit, log_files):
  _, columns = log_files
  for field in (schema_lib.TARGET_ACTION, "city"):
    with pytest.raises(tf.errors.InvalidArgumentError, match=field):
      strict_module[module_lib.SERVE_EXAMPLES](_examples(kit, columns, drop=(field,)))


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


# Multi-valued features (kit.mv_schema: tags, string, M=3; apps, int64, M=2).


@pytest.fixture(scope="module")
def mv_module(mv_model_dir):
  model = trained_model.load(mv_model_dir)
  return (
    model,
    module_lib.ServingModule(model).signatures(),
    module_lib.ServingModule(model, strict=True).signatures(),
  )


def _mv_keras_logit(kit, model, columns):
  features = kit.features_of(columns, kit.mv_schema)
  target = np.asarray(columns[schema_lib.TARGET_ACTION])
  features[builder.HKE_INDICATOR] = tf.one_hot(target, kit.schema.num_actions)
  return model.network(features, training=False).numpy()[np.arange(len(target)), target]


def _example(**fields):
  """A serialized Example holding each field's list as given (an empty list included)."""
  example = tf.train.Example()
  for k, values in fields.items():
    feature = example.features.feature[k]
    if k in ("city", "tags"):
      feature.bytes_list.SetInParent()
      feature.bytes_list.value.extend(v.encode() for v in values)
    elif k == "bid":
      feature.float_list.value.extend(values)
    else:
      feature.int64_list.SetInParent()
      feature.int64_list.value.extend(values)
  return example.SerializeToString()


def test_multivalued_padded_signatures_match_keras(mv_module, kit):
  model, signatures, _ = mv_module
  columns = kit.mv_log_columns()
  expected = _mv_keras_logit(kit, model, columns)
  inputs = kit.features_of(columns, kit.mv_schema)
  inputs[module_lib.TARGET_INPUT] = tf.constant(columns[schema_lib.TARGET_ACTION], tf.int64)
  default = signatures[module_lib.SERVING_DEFAULT](inputs)
  np.testing.assert_allclose(default["logit"].numpy(), expected, atol=1e-6)
  assert default["valid"].numpy().all()
  every = signatures[module_lib.PREDICT_ALL](_features_only(inputs))
  target = columns[schema_lib.TARGET_ACTION]
  np.testing.assert_allclose(
    every["probabilities"].numpy()[np.arange(len(target)), target],
    default["cvr"].numpy(),
    atol=1e-6,
  )
  # The lists matter: emptying them changes the scores of rows that had ids.
  emptied = dict(inputs, tags=tf.fill([len(target), 3], ""))
  changed = signatures[module_lib.SERVING_DEFAULT](emptied)["logit"].numpy()
  had_tags = (columns["tags"] != "").any(axis=1)
  assert np.all(np.abs(changed - default["logit"].numpy())[had_tags] > 1e-7)


def test_multivalued_examples_mark_bad_lists_invalid_and_keep_valid_rows_exact(mv_module, kit):
  _, signatures, strict = mv_module
  base = dict(user_id=[7], city=["rome"], ad_task_id=[11], bid=[0.5], target_action=[1])
  rows = [
    _example(**base, tags=["a", "z"], apps=[3, 40]),  # valid, "z" out of vocabulary
    _example(**base, tags=["a", "b", "c", "a"], apps=[3]),  # 4 tags > max_values 3
    _example(**base, apps=[5]),  # tags absent: the empty list, valid
    _example(**base, tags=["a", ""], apps=[3]),  # the pad value "" as a tag
    _example(**base, tags=[], apps=[3, -1]),  # the pad value -1 as an app id
    _example(**base, tags=["c"], apps=[1, 2, 3]),  # 3 apps > max_values 2
    _example(**dict(base, target_action=[7]), tags=["b"], apps=[]),  # target out of range
  ]
  out = signatures[module_lib.SERVE_EXAMPLES](tf.constant(rows))
  np.testing.assert_array_equal(out["valid"].numpy(), [1, 0, 1, 0, 0, 0, 0])
  np.testing.assert_array_equal(out["missing_features"].numpy(), [0] * 7)  # lists never missing
  invalid = ~out["valid"].numpy()
  assert (out["cvr"].numpy()[invalid] == module_lib.FILL_CVR).all()
  assert (out["logit"].numpy()[invalid] == module_lib.FILL_LOGIT).all()
  # Each valid row scores as alone, and as its padded form through serving_default.
  padded = {
    "user_id": [7, 7],
    "city": ["rome", "rome"],
    "ad_task_id": [11, 11],
    "bid": [0.5, 0.5],
    "target_action": [1, 1],
    "tags": [["a", "z", ""], ["", "", ""]],
    "apps": [[3, 40], [5, -1]],
  }
  dtypes = dict(kit.mv_schema.record_dtypes(), target_action=tf.int64)
  default = signatures[module_lib.SERVING_DEFAULT](
    {k: tf.constant(v, dtypes[k]) for k, v in padded.items()}
  )
  # Alone, within float32 rounding: some of Eigen's vectorised kernels (sigmoid) take another
  # path for a lone row; the lists' combination itself is batch-independent (embedding_test).
  for i, row in ((0, 0), (2, 1)):
    alone = signatures[module_lib.SERVE_EXAMPLES](tf.constant(rows[i : i + 1]))
    np.testing.assert_allclose(alone["logit"].numpy()[0], out["logit"].numpy()[i], rtol=1e-6)
    np.testing.assert_allclose(out["logit"].numpy()[i], default["logit"].numpy()[row], atol=1e-6)
  regress = signatures[module_lib.REGRESS](tf.constant(rows))
  np.testing.assert_array_equal(regress["outputs"].numpy(), out["cvr"].numpy())
  # Strict: the valid rows pass, a bad list fails the call naming the feature.
  strict_out = strict[module_lib.SERVE_EXAMPLES](tf.constant([rows[0], rows[2]]))
  np.testing.assert_array_equal(strict_out["logit"].numpy(), out["logit"].numpy()[[0, 2]])
  for bad, name in ((1, "tags"), (3, "tags"), (4, "apps"), (5, "apps")):
    with pytest.raises(
      tf.errors.InvalidArgumentError, match=f"multi-valued input {name} must hold at most"
    ):
      strict[module_lib.SERVE_EXAMPLES](tf.constant([rows[0], rows[bad]]))
