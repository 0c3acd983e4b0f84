"""TF Serving's REST JSON: predict requests to input columns, outputs and metadata to JSON.

The formats are those of TF Serving's REST API (`https://www.tensorflow.org/tfx/serving/api_rest`):

* a predict request holds an optional `"signature_name"` and either `"instances"` (the row
  format: one object `{input: value}` per row, or a bare value per row for a one-input
  signature) or `"inputs"` (the columnar format: `{input: [value per row]}`, or a bare list for
  a one-input signature). String inputs take plain text or `{"b64": "<base64>"}`;
* the answer is `{"predictions": [...]}` for rows (one object `{output: value}` per row, or the
  bare value for a one-output signature) and `{"outputs": {output: [...]}}` for columns (or
  the bare list); every output of the signature is passed through, whatever its name;
* the metadata is the `SignatureDef` map of the SavedModel, as TF Serving prints it.

Stricter than TF Serving on purpose: NaN, Infinity and numbers that overflow the input's
float type are refused with a message naming the input and the row, since the model would
score them silently; and errors never quote graph internals (node and tensor names).

Multi-valued features: more lenient than TF Serving, which needs every input of a request to
have one shape (so its clients send the padded `(rows, max_values)` form, which is accepted
here too: pad values at the end of a list are dropped). Here each row may carry its list of
ids as it is, `"tags": ["a", "b"]` (an empty list is fine), in the row and in the columnar
format (`"inputs": {"tags": [["a", "b"], []]}`), and is padded to `max_values` before the
signature runs (`client.padded_lists`). A 400 names the input and the row
(`instances[1].tags`, `inputs.tags[1]`) for a list longer than `max_values`, an id of the
wrong type, the feature's pad value (-1, or "" for strings) before a real id (it would be
dropped silently), and a value that is not a list. A lone id is refused too rather than taken as a
one-element list: a client that sends one most likely believes the feature single-valued (a
schema older than the model), and the padded form it would send to TF Serving is a list
anyway.
"""

import base64
import binascii
import json
import os
import re
from typing import Any, Callable, Dict, List, Mapping, Sequence

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import saved_model_pb2

from kaml_tf import schema as schema_lib
from kaml_tf.serving import client
from kaml_tf.serving import module as module_lib


_PREAMBLES = ("Graph execution error:", "Detected at node", "<stack traces unavailable>")


class RequestError(Exception):
  """A request the server answers with an HTTP error and TF Serving's `{"error": ...}`."""

  def __init__(self, status: int, message: str):
    super().__init__(message)
    self.status = status
    self.message = message


def predict(model: client.ExportedModel, body: bytes) -> Dict[str, Any]:
  """Runs a predict request (row or columnar format) and returns the JSON answer.

  Raises:
    RequestError: for a malformed request or values that are not valid inputs.
    client.InputError: for inputs that do not fit the signature.
  """
  request = _parse(body)
  signature = request.get("signature_name", module_lib.SERVING_DEFAULT)
  if not isinstance(signature, str):
    raise RequestError(400, f"'signature_name' must be a string, got {signature!r}")
  if ("instances" in request) == ("inputs" in request):
    raise RequestError(
      400,
      "Missing 'inputs' or 'instances' key"
      if "inputs" not in request
      else "Not both 'inputs' and 'instances' can be set",
    )
  specs = model.input_specs(signature)
  outputs = model.output_names(signature)
  lists = {f.name: f for f in model.schema.multivalued_features if f.name in specs}
  if "instances" in request:
    columns = _columns_from_instances(request["instances"], specs, lists)
  else:
    columns = _columns_from_inputs(request["inputs"], specs, lists)
  check_columns(columns, specs)
  try:
    result = model.run(signature, columns, allow_extra=False)
  except tf.errors.OpError as e:
    raise RequestError(400, op_error_message(e, signature, sorted(specs))) from None
  if "instances" in request:
    if len(outputs) == 1:
      return {"predictions": _to_json(result[outputs[0]])}
    rows = {k: _to_json(result[k]) for k in outputs}
    return {"predictions": [{k: rows[k][i] for k in outputs} for i in range(len(rows[outputs[0]]))]}
  if len(outputs) == 1:
    return {"outputs": _to_json(result[outputs[0]])}
  return {"outputs": {k: _to_json(result[k]) for k in outputs}}


def _parse(body: bytes) -> Dict[str, Any]:
  try:
    # NaN and +-Infinity literals become floats here and are refused per input, with its name.
    request = json.loads(body, parse_constant=float)
  except (UnicodeDecodeError, json.JSONDecodeError) as e:
    raise RequestError(400, f"JSON Parse error: {e}") from None
  if not isinstance(request, dict):
    raise RequestError(400, "JSON Value: the request body must be a JSON object")
  return request


def _is_b64(value: Any) -> bool:
  return isinstance(value, dict) and set(value) == {"b64"}


def _decode(value: Any, where: str) -> Any:
  """JSON value -> numpy-ready value: `{"b64": ...}` becomes bytes, lists recurse."""
  if _is_b64(value):
    try:
      return base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, TypeError, ValueError) as e:
      raise RequestError(400, f"{where}: invalid base64 value: {e}") from None
  if isinstance(value, list):
    return [_decode(v, where) for v in value]
  if isinstance(value, dict):
    raise RequestError(400, f"{where}: unexpected JSON object {value!r}")
  if value is None:
    raise RequestError(400, f"{where}: null is not a valid value")
  return value


def _column(values: List[Any], name: str) -> np.ndarray:
  """A batch of decoded values as an array; booleans are refused (TF Serving has no cast)."""
  flat = np.asarray(values, dtype=object).reshape(-1)
  if any(isinstance(v, bool) for v in flat):
    raise RequestError(400, f"input {name!r}: booleans are not a valid value")
  if flat.size and all(isinstance(v, (str, bytes)) for v in flat):
    return np.asarray(values, dtype=object)
  try:
    return np.asarray(values)
  except ValueError as e:
    raise RequestError(400, f"input {name!r}: ragged or mixed values: {e}") from None


def _columns_from_instances(
  instances: Any,
  specs: Mapping[str, tf.TensorSpec],
  lists: Mapping[str, schema_lib.SparseFeature],
) -> Dict[str, np.ndarray]:
  if not isinstance(instances, list) or not instances:
    raise RequestError(400, "'instances' must be a non-empty list (one element per row)")
  names = sorted(specs)
  rows: Dict[str, List[Any]] = {k: [] for k in names}
  for i, instance in enumerate(instances):
    where = f"instances[{i}]"
    if isinstance(instance, dict) and not _is_b64(instance):
      missing = [k for k in names if k not in instance]
      if missing:
        raise RequestError(400, f"{where}: JSON object does not have named input(s) {missing}")
      extra = sorted(set(instance) - set(names))
      if extra:
        raise RequestError(400, f"{where}: unknown input(s) {extra}; the signature takes {names}")
      for k in names:
        rows[k].append(_decode(instance[k], f"{where}.{k}"))
    elif len(names) == 1:
      rows[names[0]].append(_decode(instance, where))
    else:
      raise RequestError(400, f"{where}: expected a JSON object with the named inputs {names}")
  return {
    k: _padded(v, lists[k], lambda i, k=k: f"instances[{i}].{k}") if k in lists else _column(v, k)
    for k, v in rows.items()
  }


def _padded(
  values: List[Any], feature: schema_lib.SparseFeature, where: Callable[[int], str]
) -> np.ndarray:
  """A multi-valued input's lists, one per row, padded (or a 400 naming the row)."""
  try:
    return client.padded_lists(values, feature, where)
  except client.InputError as e:
    raise RequestError(400, str(e)) from None


def _columns_from_inputs(
  inputs: Any,
  specs: Mapping[str, tf.TensorSpec],
  lists: Mapping[str, schema_lib.SparseFeature],
) -> Dict[str, np.ndarray]:
  names = sorted(specs)
  if isinstance(inputs, dict) and not _is_b64(inputs):
    return {k: _input_column(k, v, lists) for k, v in inputs.items()}
  if len(names) == 1:
    return {names[0]: _column(_decode(inputs, "inputs"), names[0])}
  raise RequestError(400, f"'inputs' must be a JSON object with the named inputs {names}")


def _input_column(
  name: str, values: Any, lists: Mapping[str, schema_lib.SparseFeature]
) -> np.ndarray:
  """One input of the columnar format as an array."""
  values = _decode(values, f"inputs.{name}")
  if name not in lists:
    return _column(values, name)
  if not isinstance(values, list):
    raise RequestError(400, f"inputs.{name}: expected one list of ids per row, got {values!r}")
  return _padded(values, lists[name], lambda i: f"inputs.{name}[{i}]")


def check_columns(columns: Mapping[str, np.ndarray], specs: Mapping[str, tf.TensorSpec]) -> None:
  """Refuses inputs of different row counts and non-finite numbers, naming the input.

  Args:
    columns: `{input name: array}` as decoded from the request (names not in `specs` are left
      to `ExportedModel.run`, which refuses them).
    specs: The signature's `{input name: TensorSpec}`.

  Raises:
    RequestError: 400 naming the inputs and their row counts, or the input and the first row
      holding NaN, +-Infinity, or a number out of the input's float range.
  """
  sizes = {k: len(v) for k, v in sorted(columns.items()) if np.ndim(v) >= 1}
  if len(set(sizes.values())) > 1:
    raise RequestError(400, f"every input must hold one value per row; got row counts {sizes}")
  for name, values in sorted(columns.items()):
    spec = specs.get(name)
    if values.dtype.kind not in "iuf" or spec is None or spec.dtype == tf.string:
      continue
    invalid = "NaN and Infinity are"
    if spec.dtype.is_floating:
      invalid = f"NaN, Infinity and numbers beyond {spec.dtype.name} are"
      with np.errstate(over="ignore"):
        values = values.astype(spec.dtype.as_numpy_dtype)
    if values.dtype.kind == "f":
      rows = values.reshape(len(values), -1) if values.ndim else values.reshape(1, -1)
      bad = np.flatnonzero(~np.isfinite(rows).all(axis=1))
      if bad.size:
        raise RequestError(
          400,
          f"input {name!r}: {invalid} not valid values (row {int(bad[0])}; "
          f"{bad.size} row(s) in all)",
        )


def op_error_message(error: tf.errors.OpError, signature: str, inputs: Sequence[str]) -> str:
  """A model's refusal as a message without node, tensor or op names.

  The assertion text of an in-graph check (e.g. `every input must hold one value per row`)
  is kept; any other op error keeps its first line, cleaned, after the signature and inputs.
  """
  # The message proper is the first line that is not the preamble ("Graph execution error:",
  # "Detected at node ... defined at", an indented stack trace or its stand-in).
  lines = [
    line
    for line in error.message.split("\n")
    if line.strip() and not line.startswith((" ", "\t")) and not line.startswith(_PREAMBLES)
  ]
  text = lines[0] if lines else ""
  assertion = re.match(r"assertion failed: \[(.*?)\](?: \[|$)", text)
  if assertion:
    text = assertion.group(1).replace("\\'", "'")
  text = re.sub(r"\s*\[\[.*?\]\]", "", text)  # [[{{node ...}}]]
  text = re.sub(r"\s*\{\{.*?\}\}", "", text)  # {{function_node ...}}
  text = re.sub(r"\s*\[Op:[^\]]*\]", "", text)  # [Op:__inference_...]
  text = re.sub(r"\s*\(\w[\w/]*:\d+\)", "", text)  # (Identity_4:0)
  text = text.strip() or type(error).__name__
  if any(re.search(rf"\b{re.escape(k)}\b", text) for k in inputs):
    return text
  return f"signature {signature!r} refused its inputs {list(inputs)}: {text}"


def _to_json(array: np.ndarray) -> Any:
  """An output as JSON-ready (nested) lists; strings as text, or `{"b64"}` if not UTF-8."""
  if array.dtype.kind not in "OS":
    return array.tolist()
  return np.vectorize(_string_to_json, otypes=[object])(array).tolist()


def _string_to_json(value: Any) -> Any:
  if isinstance(value, bytes):
    try:
      return value.decode("utf-8")
    except UnicodeDecodeError:
      return {"b64": base64.b64encode(value).decode("ascii")}
  return value


def signature_defs(export_dir: str) -> Dict[str, Any]:
  """The SavedModel's signature defs as TF Serving's metadata shows them.

  Returns:
    `{signature name: {"inputs": {name: tensor info}, "outputs": {...}, "method_name": ...}}`
    with tensor info `{"dtype": "DT_INT64", "tensor_shape": {"dim": [{"size": "-1", "name":
    ""}], "unknown_rank": false}, "name": "<graph tensor>"}`, including TF 2's
    `__saved_model_init_op` entry, as TF Serving does.
  """
  with tf.io.gfile.GFile(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
    saved_model = saved_model_pb2.SavedModel.FromString(f.read())
  graph = saved_model.meta_graphs[0]
  return {
    name: {
      "inputs": {k: _tensor_info(v) for k, v in sorted(sig.inputs.items())},
      "outputs": {k: _tensor_info(v) for k, v in sorted(sig.outputs.items())},
      "method_name": sig.method_name,
    }
    for name, sig in sorted(graph.signature_def.items())
  }


def _tensor_info(info) -> Dict[str, Any]:
  return {
    "dtype": types_pb2.DataType.Name(info.dtype),
    "tensor_shape": {
      "dim": [{"size": str(d.size), "name": d.name} for d in info.tensor_shape.dim],
      "unknown_rank": info.tensor_shape.unknown_rank,
    },
    "name": info.name,
  }
