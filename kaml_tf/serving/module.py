"""`ServingModule`: the `tf.Module` exported for TF Serving, with named signatures.

One model serves every advertiser (paper Figure 2): the network scores all N actions and a
selector returns the conversion rate of the action the advertiser optimises (its target). The
signatures, each with named inputs and outputs:

* `serving_default`: every raw feature `{name: (batch,)}` plus `target_action: (batch,)`
  int64 -> `cvr: (batch,)`, the probability of the row's target action, and `logit: (batch,)`;
* `predict_all`: the raw features -> `probabilities: (batch, N)`, each action scored as if it
  were the target;
* `serve_examples`: `examples: (batch,)` serialized `tf.train.Example`s holding the features
  and `target_action` -> the outputs of `serving_default`.

"Scored as the target" means, with HKE (eq. 9-10), the action's "original" sub-tower: the
indicator is all ones. Each HKE tower reads only its own indicator column, so
`predict_all[row, target]` is exactly what the network gives for the indicator
`one_hot(target)`, and `serving_default` is a gather from the same computation.

A calibrated model (`TrainedModel.calibration`, `pipelines.train --calibrate`) serves
calibrated scores in all three signatures: the graph holds the per-action a_j and b_j as
constants, `probabilities` and `cvr` are sigmoid(a_j * logit_j + b_j) and `logit` is
a_j * logit_j + b_j, so that `cvr = sigmoid(logit)` holds either way. The export then ships
`assets/calibration.json`, which says it is calibrated and for which checkpoint.

A `target_action` outside [0, N) (including -1, "Other", which has no tower) fails the call
with an `InvalidArgumentError` naming `target_action` and the valid range, instead of
returning another action's score.

The module tracks the network's variables and lookup tables, not the Keras model itself:
tracking the model would make `tf.saved_model.save` trace every Keras layer's call for Keras'
own reload format (10-20 s per export), which serving never uses.
"""

from typing import Any, Dict, List

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.training import trained_model as trained_model_lib

SERVING_DEFAULT = "serving_default"
PREDICT_ALL = "predict_all"
SERVE_EXAMPLES = "serve_examples"
SIGNATURE_NAMES = (SERVING_DEFAULT, PREDICT_ALL, SERVE_EXAMPLES)

TARGET_INPUT = schema_lib.TARGET_ACTION
EXAMPLES_INPUT = "examples"
CVR_OUTPUT = "cvr"
LOGIT_OUTPUT = "logit"
PROBABILITIES_OUTPUT = "probabilities"

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


class ServingModule(tf.Module):
  """The exported selector over a restored network (see the module docstring).

  Attributes:
    assets: `tf.saved_model.Asset`s copied into the export's `assets/`.
  """

  def __init__(
    self, model: trained_model_lib.TrainedModel, asset_paths=(), name: str = "kaml_serving"
  ):
    """Wraps a restored model.

    Args:
      model: The network with its schema (`kaml_tf.training.trained_model.load`).
      asset_paths: Files to ship in `assets/` (e.g. `schema.json`), by path.
      name: Module name.

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
    self._model = _Hidden(model)
    self._state = _checkpointed_state(model.network)
    self.assets = [tf.saved_model.Asset(p) for p in asset_paths]

    features = schema.feature_signature()
    with_target = dict(features)
    with_target[TARGET_INPUT] = tf.TensorSpec([None], tf.int64, name=TARGET_INPUT)
    examples = tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)
    # AutoGraph is off: the bodies have no data-dependent Python control flow, and converting
    # tf-keras' layer calls costs seconds per trace. The network is traced once, in
    # `_logits_all`, which the three signatures call. The functions are hidden from
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
      }
    )

  @property
  def schema(self) -> schema_lib.Schema:
    return self._model.value.schema

  def signatures(self) -> Dict[str, tf.types.experimental.ConcreteFunction]:
    """The concrete functions to export, keyed by signature name.

    Each takes one dict of its named inputs (`{name: (batch,) tensor}`, or the examples
    tensor for `serve_examples`) and returns the dict of its named outputs.
    """
    return {k: f.get_concrete_function() for k, f in self._functions.value.items()}

  def _logits_all(self, features: Dict[str, tf.Tensor]) -> tf.Tensor:
    """Logits (batch, N) of the served probabilities (calibrated if the model is), each
    action scored as the target."""
    model = self._model.value
    return model.calibrated_logits(model.logits_all(features))

  def _checked_features(self, inputs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """`inputs` after checking that every input has one value per row."""
    names = sorted(inputs)
    sizes = tf.stack([tf.size(inputs[k]) for k in names])
    check = tf.debugging.assert_equal(
      sizes,
      sizes[0],
      message=f"every input must hold one value per row; sizes of the inputs {names}",
    )
    with tf.control_dependencies([check]):
      return {k: tf.identity(v) for k, v in inputs.items()}

  def _select(self, inputs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """The selector: the logit and probability of each row's target action."""
    inputs = self._checked_features(inputs)
    target = inputs[TARGET_INPUT]
    message = target_range_message(self.schema)
    checks = [
      tf.debugging.assert_greater_equal(target, tf.constant(0, tf.int64), message=message),
      tf.debugging.assert_less(
        target, tf.constant(self.schema.num_actions, tf.int64), message=message
      ),
    ]
    with tf.control_dependencies(checks):
      target = tf.identity(target)
    features = {k: inputs[k] for k in self.schema.feature_names}
    logits = self._logits_all_fn.value(features)
    logit = tf.gather(logits, target, axis=1, batch_dims=1)
    return {CVR_OUTPUT: tf.sigmoid(logit), LOGIT_OUTPUT: logit}

  def _serving_default(self, inputs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    return self._select(inputs)

  def _predict_all(self, features: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    features = self._checked_features(features)
    return {PROBABILITIES_OUTPUT: tf.sigmoid(self._logits_all_fn.value(features))}

  def _serve_examples(self, examples: tf.Tensor) -> Dict[str, tf.Tensor]:
    spec = dict(self.schema.feature_parse_spec())
    spec[TARGET_INPUT] = tf.io.FixedLenFeature([], tf.int64)
    return self._select(tf.io.parse_example(examples, spec))


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
