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

from absl import app
from absl import logging

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
from kaml_tf.serving import rest_server
from pipelines import common
from pipelines import dataclass_flags

_SERVER = dataclass_flags.define(rest_server.ServerConfig)


def config_from_flags() -> rest_server.ServerConfig:
  """The typed server config; a usage error naming the flag otherwise."""
  return dataclass_flags.build(rest_server.ServerConfig)


def server_from_flags() -> rest_server.ModelServer:
  """Builds (binds, loads the newest version) but does not start the server."""
  config = config_from_flags()
  try:
    return rest_server.ModelServer(config)
  except FileNotFoundError as e:
    raise app.UsageError(f"--export_base: {e}") from None


@common.job
def main(argv) -> None:
  del argv
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
  common.run(main)
