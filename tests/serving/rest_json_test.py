"""TF Serving's REST JSON formats, without HTTP: input checks, clean errors, metadata."""

import re

import kaml_tf  # noqa: F401
import numpy as np
import pytest
import tensorflow as tf

from kaml_tf.serving import client
from kaml_tf.serving import module as module_lib
from kaml_tf.serving import rest_json

SPECS = {
  "bid": tf.TensorSpec([None], tf.float32),
  "user_id": tf.TensorSpec([None], tf.int64),
  "city": tf.TensorSpec([None], tf.string),
}


def columns(**changes):
  base = {
    "bid": np.array([0.5, 1.5, 2.5]),
    "user_id": np.array([1, 2, 3]),
    "city": np.array(["a", "b", "c"], dtype=object),
  }
  base.update({k: np.asarray(v) for k, v in changes.items()})
  return base


def test_check_columns_accepts_finite_values():
  rest_json.check_columns(columns(bid=[3.4e38, -1e-45, 0.0]), SPECS)
  rest_json.check_columns(columns(), dict(SPECS, extra=tf.TensorSpec([None], tf.float32)))


@pytest.mark.parametrize(
  "changes, match",
  [
    (
      {"bid": [0.5, float("nan"), float("inf")]},
      r"input 'bid': NaN, Infinity and numbers beyond float32 are not valid values "
      r"\(row 1; 2 row\(s\) in all\)",
    ),
    ({"bid": [float("-inf"), 1.0, 1.0]}, r"input 'bid': .* \(row 0; 1 row\(s\) in all\)"),
    ({"bid": [1.0, 1.0, 1e39]}, r"input 'bid': .*beyond float32.* \(row 2;"),
    (
      {"user_id": [1.0, float("nan"), 3.0]},
      r"input 'user_id': NaN and Infinity are not valid values \(row 1;",
    ),
    (
      {"bid": [1.0, 2.0]},
      r"every input must hold one value per row; got row counts "
      r"\{'bid': 2, 'city': 3, 'user_id': 3\}",
    ),
  ],
)
def test_check_columns_refuses(changes, match):
  with pytest.raises(rest_json.RequestError, match=match) as raised:
    rest_json.check_columns(columns(**changes), SPECS)
  assert raised.value.status == 400


def test_json_nan_literals_reach_the_check_as_floats():
  request = rest_json._parse(b'{"inputs": {"bid": [NaN, Infinity, -Infinity]}}')
  values = np.asarray(request["inputs"]["bid"])
  assert np.isnan(values[0]) and values[1] == np.inf and values[2] == -np.inf


def _op_error(fn, *args):
  with pytest.raises(tf.errors.OpError) as raised:
    tf.function(fn, autograph=False)(*args)
  return raised.value


def test_op_error_message_keeps_an_assertions_text_only(kit):
  message = module_lib.target_range_message(kit.schema)

  def check(target):
    with tf.control_dependencies(
      [tf.debugging.assert_greater_equal(target, tf.constant(0, tf.int64), message=message)]
    ):
      return tf.identity(target)

  error = _op_error(check, tf.constant([0, -1, 2], tf.int64))
  assert "Const:0" in error.message and "node" in error.message  # What must not leak.
  text = rest_json.op_error_message(error, "serving_default", ["bid", "target_action"])
  assert text == message


def test_op_error_message_of_a_quoted_assertion():
  def check(x):
    names = ["a", "b"]
    message = f"every input must hold one value per row; sizes of the inputs {names}"
    with tf.control_dependencies([tf.debugging.assert_equal(x, 4, message=message)]):
      return tf.identity(x)

  error = _op_error(check, tf.constant([4, 2]))
  text = rest_json.op_error_message(error, "sig", ["a", "b"])
  assert text == "every input must hold one value per row; sizes of the inputs ['a', 'b']"


def test_op_error_message_of_another_op_error():
  error = _op_error(lambda x: tf.gather(x, [5]), tf.constant([1.0, 2.0]))
  text = rest_json.op_error_message(error, "serving_default", ["bid", "user_id"])
  assert text.startswith("signature 'serving_default' refused its inputs ['bid', 'user_id']: ")
  assert "indices[0] = 5 is not in [0, 2)" in text
  assert not re.search(r"node|Op:|\{\{|GatherV2|:0\)", text), text


def test_outputs_to_json():
  assert rest_json._to_json(np.array([[1.5, 2.0]], np.float32)) == [[1.5, 2.0]]
  assert rest_json._to_json(np.array([True, False])) == [True, False]
  assert rest_json._to_json(np.array([b"ab", b"\xff"], dtype=object)) == ["ab", {"b64": "/w=="}]


def test_signature_defs_as_tf_serving_shows_them(exported):
  defs = rest_json.signature_defs(exported.path)
  model = client.ExportedModel(exported.path)
  assert sorted(defs) == sorted(["__saved_model_init_op", *module_lib.SIGNATURE_NAMES])
  assert defs["__saved_model_init_op"]["method_name"] == ""
  serving = defs[module_lib.SERVING_DEFAULT]
  assert serving["method_name"] == "tensorflow/serving/predict"
  assert sorted(serving["inputs"]) == sorted(model.input_specs(module_lib.SERVING_DEFAULT))
  assert sorted(serving["outputs"]) == model.output_names(module_lib.SERVING_DEFAULT)
  vector = {"dim": [{"size": "-1", "name": ""}], "unknown_rank": False}
  assert serving["inputs"]["user_id"] == {
    "dtype": "DT_INT64",
    "tensor_shape": vector,
    "name": "serving_default_user_id:0",
  }
  assert serving["inputs"]["city"]["dtype"] == "DT_STRING"
  assert serving["inputs"]["bid"]["dtype"] == "DT_FLOAT"
  assert serving["outputs"]["cvr"]["dtype"] == "DT_FLOAT"
  assert serving["outputs"]["cvr"]["tensor_shape"] == vector
  probabilities = defs[module_lib.PREDICT_ALL]["outputs"]["probabilities"]["tensor_shape"]
  assert probabilities["dim"] == [{"size": "-1", "name": ""}, {"size": "3", "name": ""}]
  examples = defs[module_lib.SERVE_EXAMPLES]["inputs"]["examples"]
  assert (examples["dtype"], examples["tensor_shape"]) == ("DT_STRING", vector)
