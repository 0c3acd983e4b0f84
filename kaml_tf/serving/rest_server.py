"""A local stand-in for TF Serving's REST API, for development and tests only.

The TF Serving binary is on neither PyPI nor Debian, so this server lets a developer query an
export folder the way production does. Production runs TF Serving on the same
`EXPORT_BASE` (`tensorflow_model_server --rest_api_port=8501 --model_name=kaml
--model_base_path=EXPORT_BASE`); this server is not meant to replace it (no batching, no
gRPC, one model, one version served at a time).

The subset of the API it speaks, with TF Serving's request and response formats:

* `GET /v1/models/<name>[/versions/<v>]`: the status of every version seen (or of one),
  newest first, `{"model_version_status": [{"version": "<v>", "state": "AVAILABLE", "status":
  {"error_code": "OK", "error_message": ""}}]}`. States are TF Serving's: `LOADING` (also
  while a failed load waits for its retry, with the last error in `status`), `AVAILABLE`,
  `END` (unloaded: superseded, deleted, or given up for a newer version; a failed one keeps
  its error);
* `GET /v1/models/<name>[/versions/<v>]/metadata`: `{"model_spec": {"name", "signature_name",
  "version"}, "metadata": {"signature_def": {"signature_def": {<name>: {"inputs", "outputs",
  "method_name"}}}}}` of the version served;
* `POST /v1/models/<name>[/versions/<v>]:predict`: the row (`"instances"`) and columnar
  (`"inputs"`) formats, with `"signature_name"` (default `serving_default`), answering every
  output of the signature; a multi-valued feature comes as one list of ids per instance,
  padded here (see `kaml_tf.serving.rest_json`).

Errors answer `{"error": "<message>"}`, never HTML and never graph internals: 400 for
malformed JSON, an unknown signature, inputs that do not fit the signature, NaN or Infinity
in a numeric input, and inputs the model refuses; 404 for an unknown model, version or path;
405 for a method other than GET and POST; 408, 411, 413 and 503 from the HTTP layer (a slow
body, no `Content-Length`, a body over `max_body_bytes`, too many connections or body bytes
at once: see `kaml_tf.serving.http_server`); 500 for a bug (details in the server log).

Versions follow TF Serving's latest-version policy, polled every `poll_seconds` (see
`kaml_tf.serving.versions`): the newest folder is loaded and then served, requests in flight
finish on the version they started with; a folder that does not load yet (still being copied)
is retried with a back-off from `load_retry_seconds` doubling up to `load_retry_max_seconds`;
a deleted version is unloaded and the newest remaining one loaded.
"""

import dataclasses
import re
import threading
from typing import Any, Dict, List, NamedTuple, Optional

from absl import logging
import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf import configs
from kaml_tf.serving import client
from kaml_tf.serving import http_server
from kaml_tf.serving import rest_json
from kaml_tf.serving import versions as versions_lib

DEFAULT_PORT = 8501
DEFAULT_MODEL_NAME = "kaml"
_PATH = re.compile(
  r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?(?P<metadata>/metadata)?"
  r"(?::(?P<verb>[a-zA-Z]+))?$"
)
_METHODS = ("GET", "POST")
_LIMITS = http_server.Limits


@dataclasses.dataclass(frozen=True)
class ServerConfig:
  """Settings of the local REST server; each field's help says what it does."""

  export_base: str = configs.field(help="Folder of the numeric version folders TF Serving watches.")
  port: int = configs.field(DEFAULT_PORT, "TCP port (0: a free one).")
  host: str = configs.field("127.0.0.1", "Address to bind (127.0.0.1: this machine only).")
  model_name: str = configs.field(DEFAULT_MODEL_NAME, "The model name in the URLs.")
  poll_seconds: float = configs.field(2.0, "Seconds between checks for a new or deleted version.")
  load_retry_seconds: float = configs.field(
    1.0, "Seconds before retrying a version that failed to load; doubles per failure."
  )
  load_retry_max_seconds: float = configs.field(60.0, "Cap of the wait between load retries.")
  workers: int = configs.field(_LIMITS.workers, "Threads answering connections.")
  max_connections: int = configs.field(
    _LIMITS.max_connections, "Connections open or waiting for a thread at once; more get 503."
  )
  idle_timeout_seconds: float = configs.field(
    _LIMITS.idle_timeout_seconds,
    "Seconds without traffic after which a connection (idle or stalled) is closed.",
  )
  body_timeout_seconds: float = configs.field(
    _LIMITS.body_timeout_seconds, "Seconds a request body may take to arrive; then 408."
  )
  max_body_bytes: int = configs.field(
    _LIMITS.max_body_bytes, "Largest request body; larger get 413."
  )
  max_inflight_body_bytes: int = configs.field(
    _LIMITS.max_inflight_body_bytes,
    "Bytes of the request bodies held at once; a body that does not fit gets 503.",
  )

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
    if not self.load_retry_seconds > 0:
      raise ValueError(f"load_retry_seconds: must be > 0, got {self.load_retry_seconds!r}")
    if not self.load_retry_max_seconds >= self.load_retry_seconds:
      raise ValueError(
        f"load_retry_max_seconds: must be >= load_retry_seconds ({self.load_retry_seconds!r}), "
        f"got {self.load_retry_max_seconds!r}"
      )
    self.limits()  # Validates the HTTP bounds, naming the field.

  def limits(self) -> http_server.Limits:
    """The HTTP layer's bounds."""
    names = [f.name for f in dataclasses.fields(http_server.Limits)]
    return http_server.Limits(**{k: getattr(self, k) for k in names})


class Servable(NamedTuple):
  """A loaded version: the model and its signature defs as the metadata shows them."""

  model: client.ExportedModel
  signature_defs: Dict[str, Any]


def load_servable(export_dir: str) -> Servable:
  """Loads a version folder (raises whatever a missing or incomplete folder raises)."""
  return Servable(client.ExportedModel(export_dir), rest_json.signature_defs(export_dir))


class ModelServer:
  """Serves the newest export under `config.export_base` over HTTP (see module docstring).

  Usage:
    with ModelServer(ServerConfig(export_base=BASE, port=0)) as server:  # started
      urllib.request.urlopen(server.url + "/v1/models/kaml")
  or `ModelServer(config).serve_forever()` to block (the `export.serve` job).

  Attributes:
    config: The settings.
    versions: The version manager (statuses, the version served).
  """

  def __init__(self, config: ServerConfig):
    """Loads the newest version (if any; one attempt) and binds the port.

    Raises:
      FileNotFoundError: if the export base does not exist.
      OSError: if the port cannot be bound.
    """
    if not tf.io.gfile.isdir(config.export_base):
      raise FileNotFoundError(
        f"{config.export_base}: export base folder not found; export a "
        "model first with `python -m export.export_model`"
      )
    self.config = config
    self.versions = versions_lib.VersionManager(
      config.export_base,
      load_servable,
      retry_seconds=config.load_retry_seconds,
      retry_max_seconds=config.load_retry_max_seconds,
    )
    self._stop = threading.Event()
    self._threads: List[threading.Thread] = []
    self._serving = False
    self.poll_once()
    self._httpd = http_server.JsonHTTPServer(
      (config.host, config.port), self.handle, config.limits()
    )

  @property
  def port(self) -> int:
    return self._httpd.server_address[1]

  @property
  def url(self) -> str:
    return f"http://{self.config.host}:{self.port}"

  @property
  def model(self) -> Optional[client.ExportedModel]:
    """The version being served, or None when none is."""
    served = self.versions.serving()
    return served[1].model if served else None

  def poll_once(self) -> Optional[int]:
    """Brings the served version in line with the export base; returns a newly served one."""
    return self.versions.poll()

  def _poll_loop(self) -> None:
    while not self._stop.wait(self.config.poll_seconds):
      try:
        self.poll_once()
      except OSError as e:  # E.g. the export base removed: keep serving, keep polling.
        logging.error("cannot list %s: %s", self.config.export_base, e)
      except Exception:  # pylint: disable=broad-except
        logging.exception("version poll failed; polling on")

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
    """Stops serving and polling, closes the socket and the open connections."""
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

  # Request handling (called from the HTTP worker threads).

  def handle(self, method: str, path: str, body: bytes) -> http_server.Reply:
    """Answers one request."""
    if method not in _METHODS:
      return http_server.Reply(
        405,
        {"error": f"Method {method} is not allowed; this server answers GET and POST"},
        {"Allow": ", ".join(_METHODS)},
      )
    try:
      return http_server.Reply(200, self._route(method, path, body))
    except rest_json.RequestError as e:
      return http_server.Reply(e.status, {"error": e.message})
    except client.InputError as e:
      return http_server.Reply(400, {"error": str(e)})
    except Exception:  # pylint: disable=broad-except
      # A bug must not kill the worker, nor show the client a stack trace or graph internals.
      logging.exception("error answering %s %s", method, path)
      return http_server.Reply(
        500, {"error": f"Internal error answering {method} {path}; the server log has details"}
      )

  def _route(self, method: str, path: str, body: bytes) -> Dict[str, Any]:
    match = _PATH.match(path.split("?", 1)[0])
    if not match:
      raise rest_json.RequestError(404, f"Malformed request: {method} {path}")
    name, version, metadata, verb = match.group("name", "version", "metadata", "verb")
    if name != self.config.model_name:
      raise rest_json.RequestError(404, f"Servable not found for request: Latest({name})")
    version = None if version is None else int(version)
    if method == "GET" and verb is None:
      if metadata:
        return self._metadata(name, version)
      return self._status(name, version)
    if method == "POST" and verb == "predict" and not metadata:
      return rest_json.predict(self._servable(name, version)[1].model, body)
    raise rest_json.RequestError(
      404,
      f"Malformed request: {method} {path} (this local server answers GET "
      "/v1/models/<name>[/metadata] and POST /v1/models/<name>:predict)",
    )

  def _servable(self, name: str, version: Optional[int]):
    """(version, Servable) served, or a 404 like TF Serving's."""
    served = self.versions.serving()
    if served is None:
      raise rest_json.RequestError(404, f"Could not find any versions of model {name}")
    if version is not None and version != served[0]:
      raise rest_json.RequestError(
        404,
        f"Servable not found for request: Specific({name}, {version}); "
        f"this local server serves only version {served[0]}",
      )
    return served

  def _status(self, name: str, version: Optional[int]) -> Dict[str, Any]:
    if version is None:
      found = self.versions.statuses()
      if not found:
        raise rest_json.RequestError(404, f"Could not find any versions of model {name}")
    else:
      one = self.versions.status(version)
      if one is None:
        raise rest_json.RequestError(
          404, f"Servable not found for request: Specific({name}, {version})"
        )
      found = [one]
    return {
      "model_version_status": [
        {
          "version": str(s.version),
          "state": s.state,
          "status": {"error_code": s.error_code, "error_message": s.error_message},
        }
        for s in found
      ]
    }

  def _metadata(self, name: str, version: Optional[int]) -> Dict[str, Any]:
    served_version, servable = self._servable(name, version)
    return {
      "model_spec": {"name": name, "signature_name": "", "version": str(served_version)},
      "metadata": {"signature_def": {"signature_def": servable.signature_defs}},
    }
