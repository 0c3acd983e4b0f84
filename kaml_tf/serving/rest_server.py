"""A local stand-in for TF Serving's REST API, for development and tests only.

The TF Serving binary is on neither PyPI nor Debian, so this server lets a developer query an
export folder the way production does. Production runs TF Serving on the same
`EXPORT_BASE` (`tensorflow_model_server --rest_api_port=8501 --model_name=kaml
--model_base_path=EXPORT_BASE`); this server is not meant to replace it (no batching, no
gRPC, one model, one version at a time).

The subset of the API it speaks, with TF Serving's request and response formats:

* `GET /v1/models/<name>` (or `/v1/models/<name>/versions/<v>`): the model status,
  `{"model_version_status": [{"version": "<v>", "state": "AVAILABLE", "status":
  {"error_code": "OK", "error_message": ""}}]}`;
* `POST /v1/models/<name>[/versions/<v>]:predict` with a JSON body holding an optional
  `"signature_name"` (default `serving_default`) and either
  - `"instances"`: the row format, a list with one object `{input: value}` per row (a bare
    value per row for a one-input signature), answered `{"predictions": [...]}` (one object
    `{output: value}` per row, or the bare value for a one-output signature); or
  - `"inputs"`: the columnar format, `{input: [value per row]}` (or a bare list for a
    one-input signature), answered `{"outputs": {output: [...]}}` (or a bare list).
  String inputs take plain text or `{"b64": "<base64>"}` (how serialized Examples travel).

Errors answer `{"error": "<message>"}`: 400 for malformed JSON, an unknown signature, inputs
that do not fit the signature and inputs the model rejects (e.g. a `target_action` outside
[0, N)); 404 for an unknown model, version or path; 500 for anything else.

The server serves the newest version (highest numeric folder) under the export base and polls
the folder every `poll_seconds`: when the newest version changes it loads it and switches to
it; requests in flight finish on the version they started with. A version that fails to load
is logged and retried at the next polls (at most `MAX_LOAD_ATTEMPTS` times); the previous one
keeps serving meanwhile.
"""

import base64
import binascii
import dataclasses
import http.server
import json
import os
import re
import threading
from typing import Any, Dict, List, Mapping, Optional, Tuple

from absl import logging
import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import numpy as np
import tensorflow as tf

from kaml_tf.serving import client
from kaml_tf.serving import module as module_lib

DEFAULT_PORT = 8501
DEFAULT_MODEL_NAME = "kaml"
_PATH = re.compile(
  r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?"
  r"(?::(?P<method>[a-zA-Z]+))?$"
)
_MAX_BODY_BYTES = 64 << 20
MAX_LOAD_ATTEMPTS = 5


@dataclasses.dataclass(frozen=True)
class ServerConfig:
  """Settings of the local REST server.

  Attributes:
    export_base: The folder holding numeric version folders.
    port: TCP port; 0 picks a free one (see `ModelServer.port`).
    host: Address to bind; the default accepts local connections only.
    model_name: The `<name>` in the URLs.
    poll_seconds: How often the export base is checked for a new version.
  """

  export_base: str
  port: int = DEFAULT_PORT
  host: str = "127.0.0.1"
  model_name: str = DEFAULT_MODEL_NAME
  poll_seconds: float = 2.0

  def __post_init__(self):
    if not self.export_base:
      raise ValueError("export_base: required")
    if (
      isinstance(self.port, bool) or not isinstance(self.port, int) or not (0 <= self.port <= 65535)
    ):
      raise ValueError(f"port: must be an integer in [0, 65535], got {self.port!r}")
    if not self.model_name or not re.fullmatch(r"[A-Za-z0-9_.-]+", self.model_name):
      raise ValueError(
        f"model_name: letters, digits, '_', '.' and '-' only, got {self.model_name!r}"
      )
    if not self.poll_seconds > 0:
      raise ValueError(f"poll_seconds: must be > 0, got {self.poll_seconds!r}")


class RequestError(Exception):
  """A request the server answers with an HTTP error and TF Serving's `{"error": ...}`."""

  def __init__(self, status: int, message: str):
    super().__init__(message)
    self.status = status
    self.message = message


class ModelServer:
  """Serves the newest export under `config.export_base` over HTTP (see module docstring).

  Usage:
    with ModelServer(ServerConfig(export_base=BASE, port=0)) as server:  # started
      urllib.request.urlopen(server.url + "/v1/models/kaml")
  or `ModelServer(config).serve_forever()` to block (the `export.serve` job).
  """

  def __init__(self, config: ServerConfig):
    """Loads the newest version (if any) and binds the port.

    Raises:
      FileNotFoundError: if the export base does not exist.
      OSError: if the port cannot be bound.
    """
    if not os.path.isdir(config.export_base):
      raise FileNotFoundError(
        f"{config.export_base}: export base folder not found; export a "
        "model first with `python -m export.export_model`"
      )
    self.config = config
    self._lock = threading.Lock()
    self._model: Optional[client.ExportedModel] = None
    self._failed: Dict[int, Tuple[int, str]] = {}  # version -> (attempts, last error)
    self._stop = threading.Event()
    self._threads: List[threading.Thread] = []
    self._serving = False
    self.poll_once()
    self._httpd = _HTTPServer((config.host, config.port), _Handler, self)

  @property
  def port(self) -> int:
    return self._httpd.server_address[1]

  @property
  def url(self) -> str:
    return f"http://{self.config.host}:{self.port}"

  @property
  def model(self) -> Optional[client.ExportedModel]:
    """The version being served, or None before the first one appears."""
    with self._lock:
      return self._model

  def poll_once(self) -> Optional[int]:
    """Loads the newest version if it is not the one served; returns it, or None.

    A version that fails to load is logged and the previous one keeps serving; it is tried
    again at the next polls (a folder copied in place may still be incomplete), at most
    `MAX_LOAD_ATTEMPTS` times in all, like TF Serving's load retries.
    """
    newest = client.latest_version(self.config.export_base)
    current = self.model
    if newest is None or (current is not None and current.version == newest):
      return None
    attempts, _ = self._failed.get(newest, (0, ""))
    if attempts >= MAX_LOAD_ATTEMPTS:
      return None
    path = os.path.join(self.config.export_base, str(newest))
    try:
      model = client.ExportedModel(path)
    except Exception as e:  # pylint: disable=broad-except
      # Whatever a broken folder raises, the server must keep answering with the old version.
      self._failed[newest] = (attempts + 1, str(e))
      logging.error(
        "version %d at %s failed to load (attempt %d of %d), still serving %s: %s",
        newest,
        path,
        attempts + 1,
        MAX_LOAD_ATTEMPTS,
        current.version if current else "nothing",
        e,
      )
      return None
    with self._lock:
      self._model = model
    logging.info("serving version %d of %r from %s", newest, self.config.model_name, path)
    return newest

  def _poll_loop(self) -> None:
    while not self._stop.wait(self.config.poll_seconds):
      try:
        self.poll_once()
      except OSError as e:  # E.g. the export base removed: keep serving, keep polling.
        logging.error("cannot list %s: %s", self.config.export_base, e)

  def start(self) -> "ModelServer":
    """Serves and polls in background threads; returns at once."""
    self._serving = True
    self._spawn(self._poll_loop, "version-poller")
    self._spawn(self._httpd.serve_forever, "http-server")
    return self

  def serve_forever(self) -> None:
    """Serves in the calling thread (polling in the background) until `shutdown`."""
    self._serving = True
    self._spawn(self._poll_loop, "version-poller")
    logging.info(
      "serving %s/v1/models/%s (export base %s)",
      self.url,
      self.config.model_name,
      self.config.export_base,
    )
    self._httpd.serve_forever()

  def shutdown(self) -> None:
    """Stops serving and polling and closes the socket."""
    self._stop.set()
    if self._serving:  # `shutdown` waits for the serving loop, so only if one ran.
      self._httpd.shutdown()
      self._serving = False
    self._httpd.server_close()
    for t in self._threads:
      if t is not threading.current_thread():
        t.join(timeout=10)
    self._threads = []

  def __enter__(self) -> "ModelServer":
    return self.start()

  def __exit__(self, *exc) -> None:
    self.shutdown()

  def _spawn(self, target, name: str) -> None:
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    self._threads.append(thread)

  # Request handling (called from the handler threads).

  def handle(self, method: str, path: str, body: bytes) -> Tuple[int, Dict[str, Any]]:
    """Answers one request: returns (HTTP status, JSON body)."""
    try:
      return 200, self._route(method, path, body)
    except RequestError as e:
      return e.status, {"error": e.message}
    except client.InputError as e:
      return 400, {"error": str(e)}
    except tf.errors.InvalidArgumentError as e:
      return 400, {"error": _op_error_message(e)}
    except Exception as e:  # pylint: disable=broad-except
      # A bug must not kill the server thread; the client gets TF Serving's error shape.
      logging.exception("error answering %s %s", method, path)
      return 500, {"error": f"{type(e).__name__}: {e}"}

  def _route(self, method: str, path: str, body: bytes) -> Dict[str, Any]:
    match = _PATH.match(path.split("?", 1)[0])
    if not match:
      raise RequestError(404, f"Malformed request: {method} {path}")
    name, version, verb = match.group("name", "version", "method")
    if name != self.config.model_name:
      raise RequestError(404, f"Servable not found for request: Latest({name})")
    model = self.model
    if model is None:
      raise RequestError(404, f"Could not find any versions of model {name}")
    if version is not None and int(version) != model.version:
      raise RequestError(
        404,
        f"Servable not found for request: Specific({name}, {version}); "
        f"this local server serves only version {model.version}",
      )
    if method == "GET" and verb is None:
      return {
        "model_version_status": [
          {
            "version": str(model.version),
            "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""},
          }
        ]
      }
    if method == "POST" and verb == "predict":
      return _predict(model, body)
    raise RequestError(
      404,
      f"Malformed request: {method} {path} (this local server answers "
      "GET /v1/models/<name> and POST /v1/models/<name>:predict)",
    )


def _op_error_message(error: tf.errors.OpError) -> str:
  """The op's message without the "Graph execution error ... Detected at node" preamble."""
  text = error.message
  marker = "<stack traces unavailable>\n"
  return text.split(marker, 1)[1].strip() if marker in text else text.strip()


def _predict(model: client.ExportedModel, body: bytes) -> Dict[str, Any]:
  """Runs a predict request in the row or the columnar format."""
  try:
    request = json.loads(body.decode("utf-8"))
  except (UnicodeDecodeError, json.JSONDecodeError) as e:
    raise RequestError(400, f"JSON Parse error: {e}") from None
  if not isinstance(request, dict):
    raise RequestError(400, "JSON Value: the request body must be a JSON object")
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
  if "instances" in request:
    columns = _columns_from_instances(request["instances"], specs)
    result = model.run(signature, columns, allow_extra=False)
    if len(outputs) == 1:
      return {"predictions": _to_json(result[outputs[0]])}
    rows = {k: _to_json(v) for k, v in result.items()}
    return {"predictions": [{k: rows[k][i] for k in outputs} for i in range(len(rows[outputs[0]]))]}
  columns = _columns_from_inputs(request["inputs"], specs)
  result = model.run(signature, columns, allow_extra=False)
  if len(outputs) == 1:
    return {"outputs": _to_json(result[outputs[0]])}
  return {"outputs": {k: _to_json(v) for k, v in result.items()}}


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
  instances: Any, specs: Mapping[str, tf.TensorSpec]
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
  return {k: _column(v, k) for k, v in rows.items()}


def _columns_from_inputs(inputs: Any, specs: Mapping[str, tf.TensorSpec]) -> Dict[str, np.ndarray]:
  names = sorted(specs)
  if isinstance(inputs, dict) and not _is_b64(inputs):
    return {k: _column(_decode(v, f"inputs.{k}"), k) for k, v in inputs.items()}
  if len(names) == 1:
    return {names[0]: _column(_decode(inputs, "inputs"), names[0])}
  raise RequestError(400, f"'inputs' must be a JSON object with the named inputs {names}")


def _to_json(array: np.ndarray) -> Any:
  """A numeric output as JSON-ready (nested) lists; the signatures have no string output."""
  return array.tolist()


class _HTTPServer(http.server.ThreadingHTTPServer):
  daemon_threads = True

  def __init__(self, address, handler, model_server: ModelServer):
    self.model_server = model_server
    super().__init__(address, handler)


class _Handler(http.server.BaseHTTPRequestHandler):
  """Reads the request, lets `ModelServer.handle` answer, writes JSON."""

  timeout = 60  # Seconds a connection may stay idle mid-request.
  server: _HTTPServer

  def do_GET(self):  # pylint: disable=invalid-name
    self._answer("GET", b"")

  def do_POST(self):  # pylint: disable=invalid-name
    try:
      length = int(self.headers.get("Content-Length", "0"))
    except ValueError:
      length = -1
    if not 0 <= length <= _MAX_BODY_BYTES:
      self._write(400, {"error": f"Content-Length must be in [0, {_MAX_BODY_BYTES}]"})
      return
    self._answer("POST", self.rfile.read(length))

  def _answer(self, method: str, body: bytes) -> None:
    status, payload = self.server.model_server.handle(method, self.path, body)
    self._write(status, payload)

  def _write(self, status: int, payload: Dict[str, Any]) -> None:
    data = json.dumps(payload).encode("utf-8")
    self.send_response(status)
    self.send_header("Content-Type", "application/json")
    self.send_header("Content-Length", str(len(data)))
    self.end_headers()
    self.wfile.write(data)

  def log_message(self, format, *args):  # pylint: disable=redefined-builtin
    logging.debug("%s - %s", self.address_string(), format % args)
