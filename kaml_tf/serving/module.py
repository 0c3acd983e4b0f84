"""`ServingModule`: the `tf.Module` exported for TF Serving, with named signatures.

One model serves every advertiser (paper Figure 2): the network scores all N actions and a
selector returns the conversion rate of the action the advertiser optimises (its target). The
signatures, each with named inputs and outputs (every input and output is (batch,) unless
said otherwise, and a multi-valued feature is (batch, max_values): see "Multi-valued
features" below):

* `serving_default`: every raw feature plus `target_action` (int64) -> `cvr` (float32), the
  probability of the row's target action, `logit` (float32) and `valid` (bool);
* `predict_all`: the raw features -> `probabilities: (batch, N)`, each action scored as if it
  were the target, and `valid`;
* `serve_examples`: `examples`, serialized `tf.train.Example`s holding the features and
  `target_action` -> the outputs of `serving_default` plus `missing_features` (int32), how
  many of the row's features the Example lacked;
* `regress`: TF Serving's Regress API on the same Examples: `inputs` -> `outputs`, the `cvr`
  of `serve_examples` (see "Regress" below).

"Scored as the target" means, with HKE (eq. 9-10), the action's "original" sub-tower: the
indicator is all ones. Each HKE tower reads only its own indicator column, so
`predict_all[row, target]` is exactly what the network gives for the indicator
`one_hot(target)`, and `serving_default` is a gather from the same computation.

A calibrated model (`TrainedModel.calibration`, `pipelines.train --calibrate`) serves
calibrated scores in all signatures: the graph holds the per-action a_j and b_j as
constants, `probabilities` and `cvr` are sigmoid(a_j * logit_j + b_j) and `logit` is
a_j * logit_j + b_j, so that `cvr = sigmoid(logit)` holds either way. The export then ships
`assets/calibration.json`, which says it is calibrated and for which checkpoint.

Per-row validity (the default). A bad row never fails the batch (with TF Serving's batching,
the batch holds other clients' requests too): it gets `valid = False` and fill values,
`cvr = FILL_CVR` (0.0), `logit = FILL_LOGIT` (the lowest float32, so `cvr = sigmoid(logit)`
still holds and no NaN or infinity reaches a client's arithmetic) and, in `predict_all`,
`probabilities = FILL_PROBABILITY` (0.0) on the whole row. A row is invalid when

* its `target_action` is outside [0, N) (including -1, "Other", which has no tower);
* a dense input is NaN or +-Inf: the value is replaced by the feature's mean before the
  network (so the garbage never reaches it), and the row is marked invalid, never scored;
* (`serve_examples`, `regress`) its Example has no `target_action`, more than one value
  for a single-valued field, or a multi-valued feature with more than `max_values` ids or
  with an id equal to its pad value. A missing feature is not an error: it is filled with
  the schema's `missing_value` (a sparse feature's out-of-vocabulary id, a dense feature's
  mean, which normalises to 0) and counted in `missing_features`.

Multi-valued features (`SparseFeature.max_values` M > 1). `serving_default` and
`predict_all` take them padded, (batch, M) ids filled up at the end with the feature's
`pad_value` (-1 for int64, "" for strings); the embedding skips pad entries wherever they
stand, so no padded row is invalid, and a row of pad values is the empty list (the zero
embedding). `serve_examples` and `regress` read each Example's list as it is (var-len), 0 to
M ids: an absent key or an empty list is the empty list, a valid value and not counted in
`missing_features`; a list longer than M or holding the pad value makes the row invalid
(its list is replaced by the empty one before the network, like a non-finite dense value).

Valid rows score exactly as they would in a batch without the invalid rows: the replaced
values change only the invalid rows' own inputs, and no operation mixes rows. A valid row's
`cvr` is 0 only for a logit below -87, which a trained model does not produce; clients should
still read `valid`. What still fails a whole batch: inputs of different lengths, a value of
the wrong dtype, or a string that is not a serialized `tf.train.Example` (request errors, not
row values).

Strict mode (`ServingModule(..., strict=True)`, `export_model(..., strict=True)`): the
earlier behaviour, a bad row fails the whole call with an `InvalidArgumentError` naming the
input (`target_action` and the valid range, the non-finite dense feature, the missing
feature, or the multi-valued feature whose list is too long or holds the pad value); the
outputs are the same (`valid` all true, `missing_features` all 0).

Regress. TF Serving's Regress API runs a signature with exactly one string input `inputs`
(the serialized Examples it builds from the request) and one float output `outputs` of shape
(batch,) (`tensorflow_serving/servables/tensorflow/regressor.cc`). `tf.saved_model.save`
records every signature with the predict method name, which TF Serving accepts for Regress
unless `--enable_signature_method_name_check` is on (off by default, for TF2 models). With one
output there is no room for `valid`: an invalid row regresses to `FILL_CVR`. Classify is not
offered: its result is scores over a fixed set of class labels per Example, whereas here the
one meaningful score is the row's target action's cvr, which is what Regress returns.

The module tracks the network's variables and lookup tables, not the Keras model itself:
tracking the model would make `tf.saved_model.save` trace every Keras layer's call for Keras'
own reload format (seconds per export; measured: docs/results/timings/serving.md), which
serving never uses.
"""

from typing import Any, Dict, List, Optional, Tuple

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import numpy as np
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.training import trained_model as trained_model_lib

SERVING_DEFAULT = "serving_default"
PREDICT_ALL = "predict_all"
SERVE_EXAMPLES = "serve_examples"
REGRESS = "regress"
SIGNATURE_NAMES = (SERVING_DEFAULT, PREDICT_ALL, SERVE_EXAMPLES, REGRESS)

TARGET_INPUT = schema_lib.TARGET_ACTION
EXAMPLES_INPUT = "examples"
REGRESS_INPUT = "inputs"  # The names TF Serving's Regress API requires.
REGRESS_OUTPUT = "outputs"
CVR_OUTPUT = "cvr"
LOGIT_OUTPUT = "logit"
PROBABILITIES_OUTPUT = "probabilities"
VALID_OUTPUT = "valid"
MISSING_OUTPUT = "missing_features"

# What an invalid row gets (module docstring). sigmoid(FILL_LOGIT) == FILL_CVR in float32.
FILL_CVR = 0.0
FILL_LOGIT = float(np.finfo(np.float32).min)
FILL_PROBABILITY = 0.0

# Files the export ships in `assets/`.
SCHEMA_ASSET = "schema.json"
ACTIONS_ASSET = "actions.txt"
CALIBRATION_ASSET = "calibration.json"  # Only in calibrated exports.


def target_range_message(schema: schema_lib.Schema) -> str:
  """The error text of a `target_action` outside [0, N)."""
  # No quotes: TF escapes them in assertion messages.
  return (
    f"{TARGET_INPUT} must be in [0, {schema.num_actions}): the index of one of the "
    f"actions ({', '.join(schema.actions)}); -1 (Other) has no tower"
  )


def non_finite_message(name: str) -> str:
  """The strict-mode error text of a NaN or infinite dense input."""
  return f"dense input {name} must be finite, got NaN or Inf"


def multivalued_message(feature: schema_lib.SparseFeature) -> str:
  """The strict-mode error text of an Example's bad list for a multi-valued feature."""
  pad = "-1" if feature.dtype == "int64" else "the empty string"
  return (
    f"multi-valued input {feature.name} must hold at most {feature.max_values} ids per "
    f"Example, none equal to its pad value ({pad})"
  )


class ServingModule(tf.Module):
  """The exported selector over a restored network (see the module docstring).

  Attributes:
    assets: `tf.saved_model.Asset`s copied into the export's `assets/`.
    strict: Whether a bad row fails the call (True) or gets `valid = False` (False).
  """

  def __init__(
    self,
    model: trained_model_lib.TrainedModel,
    asset_paths=(),
    name: str = "kaml_serving",
    strict: bool = False,
  ):
    """Wraps a restored model.

    Args:
      model: The network with its schema (`kaml_tf.training.trained_model.load`).
      asset_paths: Files to ship in `assets/` (e.g. `schema.json`), by path.
      name: Module name.
      strict: Fail a call on any bad row instead of marking the row invalid.

    Raises:
      ValueError: if the network's inputs are not the schema's features (plus the HKE
        indicator).
    """
    super().__init__(name=name)
    schema = model.schema
    expected = set(schema.feature_names)
    if model.uses_indicator:
      expected.add(trained_model_lib.HKE_INPUT)
    if set(model.network.input_names) != expected:
      raise ValueError(
        f"ServingModule: the network's inputs {sorted(model.network.input_names)} "
        f"are not the schema's features {sorted(expected)}"
      )
    self.strict = bool(strict)
    self._model = _Hidden(model)
    self._state = _checkpointed_state(model.network)
    self.assets = [tf.saved_model.Asset(p) for p in asset_paths]

    features = schema.feature_signature()
    with_target = dict(features)
    with_target[TARGET_INPUT] = tf.TensorSpec([None], tf.int64, name=TARGET_INPUT)
    examples = tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)
    regress_inputs = tf.TensorSpec([None], tf.string, name=REGRESS_INPUT)
    # AutoGraph is off: the bodies have no data-dependent Python control flow, and converting
    # tf-keras' layer calls costs seconds per trace. The network is traced once, in
    # `_logits_all`, which the signatures call. The functions are hidden from
    # `tf.saved_model.save`, which would trace every function attribute again (in its save
    # context); only their signature concrete functions are exported.
    logits_all = tf.function(self._logits_all, input_signature=[features], autograph=False)
    self._logits_all_fn = _Hidden(logits_all)
    self._functions = _Hidden(
      {
        SERVING_DEFAULT: tf.function(
          self._serving_default, input_signature=[with_target], autograph=False
        ),
        PREDICT_ALL: tf.function(self._predict_all, input_signature=[features], autograph=False),
        SERVE_EXAMPLES: tf.function(
          self._serve_examples, input_signature=[examples], autograph=False
        ),
        REGRESS: tf.function(self._regress, input_signature=[regress_inputs], autograph=False),
      }
    )

  @property
  def schema(self) -> schema_lib.Schema:
    return self._model.value.schema

  def signatures(self) -> Dict[str, tf.types.experimental.ConcreteFunction]:
    """The concrete functions to export, keyed by signature name.

    Each takes one dict of its named inputs (`{name: (batch,) tensor}`, (batch, max_values)
    for a multi-valued feature, or the examples
    tensor for `serve_examples` and `regress`) and returns the dict of its named outputs.
    """
    return {k: f.get_concrete_function() for k, f in self._functions.value.items()}

  def _logits_all(self, features: Dict[str, tf.Tensor]) -> tf.Tensor:
    """Logits (batch, N) of the served probabilities (calibrated if the model is), each
    action scored as the target."""
    model = self._model.value
    return model.calibrated_logits(model.logits_all(features))

  def _checked_features(self, inputs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """`inputs` after checking that every input has one value (or padded list) per row."""
    names = sorted(inputs)
    sizes = tf.stack([tf.shape(inputs[k])[0] for k in names])
    check = tf.debugging.assert_equal(
      sizes,
      sizes[0],
      message=f"every input must hold one value per row; sizes of the inputs {names}",
    )
    with tf.control_dependencies([check]):
      return {k: tf.identity(v) for k, v in inputs.items()}

  def _finite_features(
    self, inputs: Dict[str, tf.Tensor]
  ) -> Tuple[Dict[str, tf.Tensor], Optional[tf.Tensor]]:
    """The schema's features with every NaN / +-Inf dense value replaced by its mean.

    Returns:
      (features, finite): `finite` (batch,) bool is False on rows that had a non-finite
      dense value; None when the schema has no dense feature. In strict mode such a row
      fails the call instead, naming the feature.
    """
    features = {k: inputs[k] for k in self.schema.feature_names}
    finite = None
    for f in self.schema.dense_features:
      ok = tf.math.is_finite(features[f.name])
      if self.strict:
        check = tf.debugging.Assert(tf.reduce_all(ok), [non_finite_message(f.name)])
        with tf.control_dependencies([check]):
          ok = tf.identity(ok)
      features[f.name] = tf.where(ok, features[f.name], tf.constant(f.mean, tf.float32))
      finite = ok if finite is None else tf.logical_and(finite, ok)
    return features, finite

  def _select(
    self, inputs: Dict[str, tf.Tensor], row_ok: Optional[tf.Tensor] = None
  ) -> Dict[str, tf.Tensor]:
    """The selector: the logit, probability and validity of each row's target action.

    Args:
      inputs: The features and `target_action`, each (batch,) ((batch, max_values) padded
        for a multi-valued feature).
      row_ok: (batch,) bool, False on rows already known to be invalid; None: all fine.
    """
    inputs = self._checked_features(inputs)
    target = inputs[TARGET_INPUT]
    in_range = tf.logical_and(target >= 0, target < tf.constant(self.schema.num_actions, tf.int64))
    if self.strict:
      check = tf.debugging.Assert(tf.reduce_all(in_range), [target_range_message(self.schema)])
      with tf.control_dependencies([check]):
        in_range = tf.identity(in_range)
    features, finite = self._finite_features(inputs)
    valid = in_range
    for ok in (finite, row_ok):
      if ok is not None:
        valid = tf.logical_and(valid, ok)
    logits = self._logits_all_fn.value(features)
    # An out-of-range target gathers action 0 (gather would fail the batch), then is filled.
    logit = tf.gather(logits, tf.where(in_range, target, 0), axis=1, batch_dims=1)
    return {
      CVR_OUTPUT: tf.where(valid, tf.sigmoid(logit), FILL_CVR),
      LOGIT_OUTPUT: tf.where(valid, logit, FILL_LOGIT),
      VALID_OUTPUT: valid,
    }

  def _serving_default(self, inputs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    return self._select(inputs)

  def _predict_all(self, features: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    features, finite = self._finite_features(self._checked_features(features))
    probabilities = tf.sigmoid(self._logits_all_fn.value(features))
    if finite is None:
      valid = tf.ones_like(probabilities[:, 0], tf.bool)
    else:
      valid = finite
      probabilities = tf.where(valid[:, tf.newaxis], probabilities, FILL_PROBABILITY)
    return {PROBABILITIES_OUTPUT: probabilities, VALID_OUTPUT: valid}

  def _serve_examples(self, examples: tf.Tensor) -> Dict[str, tf.Tensor]:
    if self.strict:
      spec = dict(self.schema.feature_parse_spec())
      spec[TARGET_INPUT] = tf.io.FixedLenFeature([], tf.int64)
      inputs = tf.io.parse_example(examples, spec)
      for f in self.schema.multivalued_features:
        values, ok = inputs[f.name], self._list_ok(f, inputs[f.name])
        check = tf.debugging.Assert(tf.reduce_all(ok), [multivalued_message(f)])
        with tf.control_dependencies([check]):
          inputs[f.name] = tf.identity(f.padded(values))
      outputs = self._select(inputs)
      outputs[MISSING_OUTPUT] = tf.zeros(tf.shape(examples), tf.int32)
      return outputs
    inputs, well_formed, missing = self._parse_filled(examples)
    outputs = self._select(inputs, row_ok=well_formed)
    outputs[MISSING_OUTPUT] = missing
    return outputs

  def _regress(self, examples: tf.Tensor) -> Dict[str, tf.Tensor]:
    return {REGRESS_OUTPUT: self._serve_examples(examples)[CVR_OUTPUT]}

  @staticmethod
  def _list_ok(feature: schema_lib.SparseFeature, values: tf.RaggedTensor) -> tf.Tensor:
    """(batch,) bool: each row's list fits `max_values` and holds no pad value."""
    has_pad = tf.reduce_any(tf.equal(values, feature.pad_value), axis=1)
    return tf.logical_and(values.row_lengths() <= feature.max_values, tf.logical_not(has_pad))

  def _parse_filled(self, examples: tf.Tensor) -> Tuple[Dict[str, tf.Tensor], tf.Tensor, tf.Tensor]:
    """Parses Examples, filling each absent feature with the schema's `missing_value`.

    Returns:
      (inputs, well_formed, missing): the features and `target_action` (-1 where absent),
      each (batch,) or (batch, max_values) padded for a multi-valued feature (the empty list
      on rows where its list is bad); `well_formed` (batch,) bool, False on rows with more
      than one value in a single-valued field or a bad multi-valued list (module docstring);
      `missing` (batch,) int32, the number of absent single-valued features per row.
    """
    dtypes = self.schema.record_dtypes(include_true_labels=False)
    fills = dict(self.schema.missing_values())
    fills[TARGET_INPUT] = schema_lib.OTHER_TARGET  # Out of range: the row is invalid.
    spec = {k: tf.io.RaggedFeature(dtypes[k], row_splits_dtype=tf.int64) for k in fills}
    parsed = tf.io.parse_example(examples, spec)
    multivalued = {f.name: f for f in self.schema.multivalued_features}
    inputs, well_formed, missing = {}, None, None
    for name, fill in fills.items():
      if name in multivalued:
        ok = self._list_ok(multivalued[name], parsed[name])
        padded = multivalued[name].padded(parsed[name])
        inputs[name] = tf.where(ok[:, tf.newaxis], padded, tf.constant(fill, dtypes[name]))
        well_formed = ok if well_formed is None else tf.logical_and(well_formed, ok)
        continue  # An absent list is the empty list, not a missing feature.
      counts = parsed[name].row_lengths()
      fill = tf.constant(fill, dtypes[name])
      first = parsed[name].to_tensor(default_value=fill, shape=[None, 1])[:, 0]
      inputs[name] = tf.where(counts == 1, first, fill)
      one = counts <= 1
      well_formed = one if well_formed is None else tf.logical_and(well_formed, one)
      if name != TARGET_INPUT:
        absent = tf.cast(counts == 0, tf.int32)
        missing = absent if missing is None else missing + absent
    if missing is None:  # Every feature is multi-valued.
      missing = tf.zeros(tf.shape(examples), tf.int32)
    return inputs, well_formed, missing


class _Hidden:
  """Holds a value out of `tf.Module`'s dependency tracking (see the module docstring)."""

  def __init__(self, value):
    self.value = value


def _checkpointed_state(network: tf.keras.Model) -> List[Any]:
  """The network's variables and resources (lookup tables) in its checkpoint graph."""
  return [
    t
    for t in tf.train.TrackableView(network).descendants()
    if isinstance(t, (tf.Variable, tf.saved_model.experimental.TrackableResource))
  ]
