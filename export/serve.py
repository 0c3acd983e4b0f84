r"""A LOCAL development server speaking a subset of TF Serving's REST API.

  python -m export.serve --export_base=/tmp/kaml-serving --port=8501 [--model_name=kaml]
  curl localhost:8501/v1/models/kaml
  curl -d '{"instances": [{"target_action": 0, "user_id": 7, ...}]}' \
      localhost:8501/v1/models/kaml:predict

It serves the newest version under `--export_base` and switches to a newer one when it
appears (checked every `--poll_seconds`; a version that does not load yet is retried with a
back-off, a deleted one is unloaded). `GET /v1/models/kaml/metadata` shows the signatures. It is a stand-in for development and tests, since
the TF Serving binary cannot be installed here; production runs TF Serving on the same folder:

  tensorflow_model_server --rest_api_port=8501 --model_name=kaml \
      --model_base_path=/tmp/kaml-serving

See `kaml_tf/serving/rest_server.py` for the requests and responses it supports.
"""

import dataclasses

from absl import app
from absl import flags
from absl import logging

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
from kaml_tf.serving import rest_server
from pipelines import common

_EXPORT_BASE = flags.DEFINE_string(
  "export_base", None, "Folder of the numeric version folders.", allow_override=True
)
_PORT = flags.DEFINE_integer("port", rest_server.DEFAULT_PORT, "TCP port (0: a free one).")
_HOST = flags.DEFINE_string("host", "127.0.0.1", "Address to bind (127.0.0.1: this machine only).")
_MODEL_NAME = flags.DEFINE_string(
  "model_name", rest_server.DEFAULT_MODEL_NAME, "The model name in the URLs.", allow_override=True
)
_POLL_SECONDS = flags.DEFINE_float("poll_seconds", 2.0, "Seconds between checks for a new version.")
# The server's version retries and HTTP bounds: default and help from `ServerConfig`'s fields.
_FIELDS = {f.name: f for f in dataclasses.fields(rest_server.ServerConfig)}
_BOUNDS = {
  name: define(name, _FIELDS[name].default, _FIELDS[name].metadata["help"])
  for name, define in (
    ("load_retry_seconds", flags.DEFINE_float),
    ("load_retry_max_seconds", flags.DEFINE_float),
    ("workers", flags.DEFINE_integer),
    ("max_connections", flags.DEFINE_integer),
    ("idle_timeout_seconds", flags.DEFINE_float),
    ("body_timeout_seconds", flags.DEFINE_float),
    ("max_body_bytes", flags.DEFINE_integer),
    ("max_inflight_body_bytes", flags.DEFINE_integer),
  )
}


def config_from_flags() -> rest_server.ServerConfig:
  """The typed server config; a usage error naming the flag otherwise."""
  if not _EXPORT_BASE.value:
    raise app.UsageError("--export_base is required")
  try:
    return rest_server.ServerConfig(
      export_base=_EXPORT_BASE.value,
      port=_PORT.value,
      host=_HOST.value,
      model_name=_MODEL_NAME.value,
      poll_seconds=_POLL_SECONDS.value,
      **{name: holder.value for name, holder in _BOUNDS.items()},
    )
  except ValueError as e:
    raise app.UsageError(f"--{e}") from None


def server_from_flags() -> rest_server.ModelServer:
  """Builds (binds, loads the newest version) but does not start the server."""
  config = config_from_flags()
  try:
    return rest_server.ModelServer(config)
  except FileNotFoundError as e:
    raise app.UsageError(f"--export_base: {e}") from None


def main(argv) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  common.setup_logging()
  server = server_from_flags()
  if server.model is None:
    logging.warning(
      "no version under %s yet; answering 404 until one appears", server.config.export_base
    )
  try:
    server.serve_forever()
  except KeyboardInterrupt:
    logging.info("interrupted; shutting down")
  finally:
    server.shutdown()


if __name__ == "__main__":
  app.run(main)
