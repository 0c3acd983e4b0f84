"""The local REST server, over real HTTP on 127.0.0.1, in TF Serving's formats."""

import base64
import http.client
import json
import os
import re
import shutil
import time
import urllib.error
import urllib.request

import kaml_tf  # noqa: F401
import numpy as np
import pytest

from kaml_tf.logs import records
from kaml_tf.serving import client
from kaml_tf.serving import exporter
from kaml_tf.serving import rest_server

_TIMEOUT = 30


def _call(url, body=None, method=None):
  """(HTTP status, decoded JSON body); `body` is sent as is when bytes, else as JSON."""
  data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
  request = urllib.request.Request(url, data=data, method=method)
  try:
    with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
      return response.status, json.loads(response.read())
  except urllib.error.HTTPError as e:
    return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def server(exported):
  config = rest_server.ServerConfig(export_base=exported.export_base, port=0, poll_seconds=60)
  with rest_server.ModelServer(config) as running:
    yield running


@pytest.fixture(scope="module")
def rows(log_files):
  """The first 4 log records as JSON-ready instances (features and target only)."""
  _, columns = log_files
  names = ("user_id", "city", "ad_task_id", "bid", "target_action")
  out = []
  for i in range(4):
    row = {}
    for k in names:
      value = columns[k][i]
      row[k] = value.decode() if isinstance(value, bytes) else value.item()
    out.append(row)
  return out


@pytest.fixture(scope="module")
def expected(exported, rows):
  model = client.ExportedModel(exported.path)
  columns = {k: [r[k] for r in rows] for k in rows[0]}
  return model.score(columns), model.predict_all(columns)


def test_model_status(server):
  status, body = _call(server.url + "/v1/models/kaml")
  assert status == 200
  assert body == {
    "model_version_status": [
      {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    ]
  }
  assert _call(server.url + "/v1/models/kaml/versions/1")[1] == body


def test_row_format_serving_default(server, rows, expected):
  status, body = _call(server.url + "/v1/models/kaml:predict", {"instances": rows})
  assert status == 200
  assert [sorted(p) for p in body["predictions"]] == [["cvr", "logit"]] * 4
  np.testing.assert_allclose([p["cvr"] for p in body["predictions"]], expected[0]["cvr"], atol=1e-6)
  np.testing.assert_allclose(
    [p["logit"] for p in body["predictions"]], expected[0]["logit"], atol=1e-6
  )


def test_columnar_format_serving_default(server, rows, expected):
  inputs = {k: [r[k] for r in rows] for k in rows[0]}
  status, body = _call(
    server.url + "/v1/models/kaml:predict", {"signature_name": "serving_default", "inputs": inputs}
  )
  assert status == 200
  assert sorted(body["outputs"]) == ["cvr", "logit"]
  np.testing.assert_allclose(body["outputs"]["cvr"], expected[0]["cvr"], atol=1e-6)


def test_predict_all_single_output_is_unnamed(server, rows, expected):
  features = [{k: v for k, v in r.items() if k != "target_action"} for r in rows]
  status, body = _call(
    server.url + "/v1/models/kaml:predict", {"signature_name": "predict_all", "instances": features}
  )
  assert status == 200
  np.testing.assert_allclose(body["predictions"], expected[1], atol=1e-6)
  columns = {k: [f[k] for f in features] for k in features[0]}
  status, body = _call(
    server.url + "/v1/models/kaml:predict", {"signature_name": "predict_all", "inputs": columns}
  )
  assert status == 200
  np.testing.assert_allclose(body["outputs"], expected[1], atol=1e-6)


def test_serve_examples_with_base64(server, exported, log_files, expected):
  _, columns = log_files
  schema = client.ExportedModel(exported.path).schema
  examples = records.encode_examples({k: v[:4] for k, v in columns.items()}, schema.record_dtypes())
  b64 = [{"b64": base64.b64encode(e).decode()} for e in examples]
  for body in (
    {"signature_name": "serve_examples", "instances": b64},
    {"signature_name": "serve_examples", "instances": [{"examples": b} for b in b64]},
    {"signature_name": "serve_examples", "inputs": b64},
    {"signature_name": "serve_examples", "inputs": {"examples": b64}},
  ):
    status, answer = _call(server.url + "/v1/models/kaml:predict", body)
    assert status == 200, answer
    cvr = (
      [p["cvr"] for p in answer["predictions"]]
      if "predictions" in answer
      else answer["outputs"]["cvr"]
    )
    np.testing.assert_allclose(cvr, expected[0]["cvr"], atol=1e-6)


def _bad_target(rows):
  bad = [dict(r) for r in rows]
  bad[1]["target_action"] = -1
  return {"instances": bad}


@pytest.mark.parametrize(
  "body, status, match",
  [
    (b"{not json", 400, "JSON Parse error"),
    (b"[1, 2]", 400, "must be a JSON object"),
    (
      {"signature_name": "nope", "instances": [{}]},
      400,
      'Serving signature name: "nope" not found in signature def',
    ),
    ({"signature_name": 7, "instances": [{}]}, 400, "'signature_name' must be a string"),
    ({"rows": []}, 400, "Missing 'inputs' or 'instances' key"),
    ({"instances": [], "inputs": {}}, 400, "Not both 'inputs' and 'instances' can be set"),
    ({"instances": []}, 400, "'instances' must be a non-empty list"),
    ("bad_target", 400, r"target_action must be in \[0, 3\)"),
    (
      "missing_input",
      400,
      r"instances\[0\]: JSON object does not have named input\(s\) "
      r"\['bid'\]",
    ),
    ("extra_input", 400, r"instances\[0\]: unknown input\(s\) \['day'\]"),
    ("float_id", 400, "input 'user_id': expected integers"),
    ("bool_id", 400, "input 'user_id': booleans are not a valid value"),
    ("bad_b64", 400, "invalid base64"),
    ("ragged_columns", 400, r"every input must hold one value per row"),
    (
      {"instances": [1, 2]},
      400,
      r"instances\[0\]: expected a JSON object with the named "
      r"inputs \['ad_task_id', 'bid', 'city', 'target_action', "
      r"'user_id'\]",
    ),
    ({"inputs": [1, 2]}, 400, "'inputs' must be a JSON object with the named inputs"),
    ("null_value", 400, r"instances\[0\]\.bid: null is not a valid value"),
    ("object_value", 400, r"instances\[0\]\.bid: unexpected JSON object"),
    ("ragged_value", 400, "input 'user_id': ragged or mixed values"),
  ],
)
def test_bad_requests_get_tf_servings_error_body(server, rows, body, status, match):
  if body == "bad_target":
    body = _bad_target(rows)
  elif body == "missing_input":
    body = {"instances": [{k: v for k, v in r.items() if k != "bid"} for r in rows]}
  elif body == "extra_input":
    body = {"instances": [dict(r, day=3) for r in rows]}
  elif body == "float_id":
    body = {"instances": [dict(r, user_id=1.5) for r in rows]}
  elif body == "bool_id":
    body = {"instances": [dict(r, user_id=True) for r in rows]}
  elif body == "bad_b64":
    body = {"signature_name": "serve_examples", "instances": [{"b64": "***"}]}
  elif body == "null_value":
    body = {"instances": [dict(r, bid=None) for r in rows]}
  elif body == "object_value":
    body = {"instances": [dict(r, bid={"x": 1}) for r in rows]}
  elif body == "ragged_value":
    body = {"inputs": {k: [r[k] for r in rows] for k in rows[0]}}
    body["inputs"]["user_id"] = [1, [2, 3], 4, 5]
  elif body == "ragged_columns":
    inputs = {k: [r[k] for r in rows] for k in rows[0]}
    inputs["bid"] = inputs["bid"][:2]
    body = {"inputs": inputs}
  code, answer = _call(server.url + "/v1/models/kaml:predict", body)
  assert code == status
  assert list(answer) == ["error"]
  assert re.search(match, answer["error"]), answer["error"]


def test_bad_content_length(server):
  connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=_TIMEOUT)
  try:
    connection.putrequest("POST", "/v1/models/kaml:predict")
    connection.putheader("Content-Length", "-5")
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 400
    assert json.loads(response.read()) == {"error": "Content-Length must be in [0, 67108864]"}
  finally:
    connection.close()


@pytest.mark.parametrize(
  "method, path, status, match",
  [
    ("GET", "/v1/models/other", 404, r"Servable not found for request: Latest\(other\)"),
    ("POST", "/v1/models/other:predict", 404, "Servable not found"),
    ("GET", "/v1/models/kaml/versions/2", 404, r"Specific\(kaml, 2\)"),
    ("POST", "/v1/models/kaml:classify", 404, "Malformed request: POST"),
    ("GET", "/v2/whatever", 404, "Malformed request: GET /v2/whatever"),
    ("GET", "/v1/models/kaml:predict", 404, "Malformed request"),
  ],
)
def test_unknown_models_and_paths(server, method, path, status, match):
  code, answer = _call(server.url + path, b"{}" if method == "POST" else None, method)
  assert code == status
  assert re.search(match, answer["error"]), answer["error"]


def test_picks_up_a_new_version_and_skips_broken_ones(tmp_path, exported, kit, rows):
  base = str(tmp_path / "serving")
  os.makedirs(base)
  config = rest_server.ServerConfig(export_base=base, port=0, poll_seconds=0.1)
  with rest_server.ModelServer(config) as server:
    assert _call(server.url + "/v1/models/kaml") == (
      404,
      {"error": "Could not find any versions of model kaml"},
    )
    # A version copied in: complete under a hidden name, then renamed (as the exporter does).
    shutil.copytree(exported.path, os.path.join(base, ".3.tmp"))
    os.rename(os.path.join(base, ".3.tmp"), os.path.join(base, "3"))
    _wait_for_version(server, "3")
    first = _call(server.url + "/v1/models/kaml:predict", {"instances": rows})[1]

    other_dir = str(tmp_path / "model2")
    kit.make_model_dir(other_dir, "shared_bottom", hke=False, seed=5)
    os.makedirs(os.path.join(base, "4"))  # Not a SavedModel: logged, retried, given up.
    _wait_until(lambda: server._failed.get(4, (0,))[0] == rest_server.MAX_LOAD_ATTEMPTS)
    assert "no SavedModel here" in server._failed[4][1]
    assert _call(server.url + "/v1/models/kaml")[1]["model_version_status"][0]["version"] == "3"
    exporter.export_model(other_dir, base, version=5)
    _wait_for_version(server, "5")
    second = _call(server.url + "/v1/models/kaml:predict", {"instances": rows})[1]
  cvr_first = [p["cvr"] for p in first["predictions"]]
  cvr_second = [p["cvr"] for p in second["predictions"]]
  expected = client.ExportedModel(os.path.join(base, "5")).score(
    {k: [r[k] for r in rows] for k in rows[0]}
  )
  np.testing.assert_allclose(cvr_second, expected["cvr"], atol=1e-6)
  assert np.abs(np.subtract(cvr_first, cvr_second)).max() > 1e-4


def _wait_until(condition, timeout=30.0):
  deadline = time.monotonic() + timeout
  while not condition():
    assert time.monotonic() < deadline, "timed out"
    time.sleep(0.05)


def _wait_for_version(server, version):
  def serving():
    code, body = _call(server.url + "/v1/models/kaml")
    return code == 200 and body["model_version_status"][0]["version"] == version

  _wait_until(serving)


def test_server_config_validation(tmp_path):
  with pytest.raises(ValueError, match="export_base: required"):
    rest_server.ServerConfig(export_base="")
  with pytest.raises(ValueError, match="port: must be an integer in"):
    rest_server.ServerConfig(export_base=str(tmp_path), port=70000)
  with pytest.raises(ValueError, match="poll_seconds: must be > 0"):
    rest_server.ServerConfig(export_base=str(tmp_path), poll_seconds=0)
  with pytest.raises(ValueError, match="model_name: letters"):
    rest_server.ServerConfig(export_base=str(tmp_path), model_name="a/b")
  with pytest.raises(FileNotFoundError, match="export base folder not found"):
    rest_server.ModelServer(rest_server.ServerConfig(export_base=str(tmp_path / "none")))


def test_poller_survives_listing_errors(tmp_path, exported, monkeypatch):
  base = str(tmp_path / "serving")
  os.makedirs(base)
  real = client.latest_version
  calls = []

  def flaky_latest_version(export_base):
    calls.append(export_base)
    if len(calls) <= 3:  # The constructor's poll, then two failing background polls.
      if len(calls) > 1:
        raise OSError("disk hiccup")
      return None
    return real(export_base)

  monkeypatch.setattr(client, "latest_version", flaky_latest_version)
  config = rest_server.ServerConfig(export_base=base, port=0, poll_seconds=0.05)
  with rest_server.ModelServer(config) as server:
    shutil.copytree(exported.path, os.path.join(base, ".2.tmp"))
    os.rename(os.path.join(base, ".2.tmp"), os.path.join(base, "2"))
    _wait_for_version(server, "2")
  assert len(calls) > 3
