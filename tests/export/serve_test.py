"""The local server job: flags -> config, and `main` answering over HTTP until shut down."""

import json
import threading
import time
import urllib.request

from absl import app
from absl.testing import flagsaver
import kaml_tf  # noqa: F401
import pytest

from export import serve
from kaml_tf.serving import rest_server


def _status(url):
  with urllib.request.urlopen(url + "/v1/models/cvr", timeout=30) as response:
    return json.loads(response.read())


def test_config_from_flags(export_base):
  bounds = dict(
    load_retry_seconds=0.5,
    load_retry_max_seconds=8.0,
    workers=3,
    max_connections=5,
    idle_timeout_seconds=7.0,
    body_timeout_seconds=9.0,
    max_body_bytes=1000,
    max_inflight_body_bytes=3000,
  )
  with flagsaver.flagsaver(
    export_base=export_base, port=0, host="127.0.0.1", model_name="cvr", poll_seconds=0.5, **bounds
  ):
    assert serve.config_from_flags() == rest_server.ServerConfig(
      export_base=export_base,
      port=0,
      host="127.0.0.1",
      model_name="cvr",
      poll_seconds=0.5,
      **bounds,
    )


def test_flag_defaults_are_the_configs(export_base):
  with flagsaver.flagsaver(export_base=export_base):
    assert serve.config_from_flags() == rest_server.ServerConfig(export_base=export_base)


def test_main_serves_the_newest_version_until_shut_down(export_base, monkeypatch):
  servers = []

  def recording_server_from_flags():
    server = rest_server.ModelServer(serve.config_from_flags())
    servers.append(server)
    return server

  monkeypatch.setattr(serve, "server_from_flags", recording_server_from_flags)
  with flagsaver.flagsaver(export_base=export_base, port=0, model_name="cvr"):
    thread = threading.Thread(target=serve.main, args=(["serve"],), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not servers:
      assert time.monotonic() < deadline, "the server did not start"
      time.sleep(0.05)
    server = servers[0]
    assert _status(server.url)["model_version_status"][0]["version"] == "1"
    server.shutdown()
    thread.join(timeout=30)
    assert not thread.is_alive()


@pytest.mark.parametrize(
  "values, match",
  [
    ({"export_base": ""}, "--export_base is required"),
    ({"port": 70000}, "--port: must be an integer in"),
    ({"poll_seconds": 0.0}, "--poll_seconds: must be > 0"),
    ({"model_name": "a:b"}, "--model_name: letters"),
    ({"load_retry_seconds": 0.0}, "--load_retry_seconds: must be > 0"),
    ({"workers": 0}, "--workers: must be an integer >= 1"),
    ({"max_body_bytes": 10 << 30}, "--max_inflight_body_bytes: must be >= max_body_bytes"),
  ],
)
def test_bad_flags(export_base, values, match):
  with flagsaver.flagsaver(**dict({"export_base": export_base}, **values)):
    with pytest.raises(app.UsageError, match=match):
      serve.config_from_flags()


def test_missing_export_base_folder(tmp_path):
  with flagsaver.flagsaver(export_base=str(tmp_path / "none"), port=0):
    with pytest.raises(app.UsageError, match="--export_base: .*export base folder not found"):
      serve.server_from_flags()
    with pytest.raises(app.UsageError, match=r"unexpected arguments: \['x'\]"):
      serve.main(["serve", "x"])
