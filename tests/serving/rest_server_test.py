"""The local REST server, over real HTTP on 127.0.0.1, in TF Serving's formats."""

import base64
import dataclasses
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
import tensorflow as tf

from kaml_tf.logs import records
from kaml_tf.serving import client
from kaml_tf.serving import exporter
from kaml_tf.serving import http_server
from kaml_tf.serving import module as module_lib
from kaml_tf.serving import rest_json
from kaml_tf.serving import rest_server

_TIMEOUT = 30
SIGNATURE = "serving_default"


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
  # Every output of the signature is passed through, whatever the export has.
  assert [sorted(p) for p in body["predictions"]] == [server.model.output_names(SIGNATURE)] * 4
  np.testing.assert_allclose([p["cvr"] for p in body["predictions"]], expected[0]["cvr"], atol=1e-6)
  np.testing.assert_allclose(
    [p["logit"] for p in body["predictions"]], expected[0]["logit"], atol=1e-6
  )


def test_a_mixed_batch_scores_the_valid_rows_and_marks_the_others(server, rows, expected):
  # Row 1 targets "Other" (-1) and row 3 an action the model does not have: both come back
  # invalid with the fill value, in a 200 response; the valid rows score as before.
  num_actions = len(expected[1][0])
  mixed = [dict(r) for r in rows]
  mixed[1]["target_action"] = -1
  mixed[3]["target_action"] = num_actions
  status, body = _call(server.url + "/v1/models/kaml:predict", {"instances": mixed})
  assert status == 200
  assert [p["valid"] for p in body["predictions"]] == [True, False, True, False]
  cvr = [p["cvr"] for p in body["predictions"]]
  assert cvr[1] == cvr[3] == module_lib.FILL_CVR
  np.testing.assert_allclose([cvr[0], cvr[2]], expected[0]["cvr"][[0, 2]], atol=1e-6)


def test_columnar_format_serving_default(server, rows, expected):
  inputs = {k: [r[k] for r in rows] for k in rows[0]}
  status, body = _call(
    server.url + "/v1/models/kaml:predict", {"signature_name": "serving_default", "inputs": inputs}
  )
  assert status == 200
  assert sorted(body["outputs"]) == server.model.output_names(SIGNATURE)
  np.testing.assert_allclose(body["outputs"]["cvr"], expected[0]["cvr"], atol=1e-6)


def test_predict_all_rows_carry_probabilities_and_validity(server, rows, expected):
  features = [{k: v for k, v in r.items() if k != "target_action"} for r in rows]
  status, body = _call(
    server.url + "/v1/models/kaml:predict", {"signature_name": "predict_all", "instances": features}
  )
  assert status == 200
  np.testing.assert_allclose(
    [p["probabilities"] for p in body["predictions"]], expected[1], atol=1e-6
  )
  assert [p["valid"] for p in body["predictions"]] == [True] * len(features)
  columns = {k: [f[k] for f in features] for k in features[0]}
  status, body = _call(
    server.url + "/v1/models/kaml:predict", {"signature_name": "predict_all", "inputs": columns}
  )
  assert status == 200
  np.testing.assert_allclose(body["outputs"]["probabilities"], expected[1], atol=1e-6)
  assert body["outputs"]["valid"] == [True] * len(features)


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
    ("nan_bid", 400, r"input 'bid': NaN, Infinity .* not valid values \(row 1; 1 row"),
    ("inf_bid_columns", 400, r"input 'bid': NaN, Infinity .* not valid values \(row 0; 3 row"),
    ("huge_bid", 400, r"input 'bid': .*beyond float32 .*\(row 3;"),
    ("nan_user_id", 400, r"input 'user_id': NaN and Infinity are not valid values \(row 2;"),
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
    ("ragged_columns", 400, r"every input must hold one value per row; got row counts \{'ad"),
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
  if body == "nan_bid":
    body = json.dumps(
      {"instances": [dict(r, bid=float("nan") if i == 1 else 1.0) for i, r in enumerate(rows)]}
    ).encode()
    assert b"NaN" in body
  elif body == "inf_bid_columns":
    inputs = {k: [r[k] for r in rows] for k in rows[0]}
    inputs["bid"] = [float("inf"), float("-inf"), float("inf"), 1.0]
    body = json.dumps({"inputs": inputs}).encode()
  elif body == "huge_bid":
    body = {"instances": [dict(r, bid=1e39 if i == 3 else 1.0) for i, r in enumerate(rows)]}
  elif body == "nan_user_id":
    body = json.dumps(
      {"instances": [dict(r, user_id=float("nan") if i == 2 else 1) for i, r in enumerate(rows)]}
    ).encode()
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
    ("GET", "/v1/models/kaml/versions/2/metadata", 404, r"Specific\(kaml, 2\)"),
    ("POST", "/v1/models/kaml/versions/2:predict", 404, r"Specific\(kaml, 2\)"),
    ("POST", "/v1/models/kaml:classify", 404, "Malformed request: POST"),
    ("POST", "/v1/models/kaml/metadata:predict", 404, "Malformed request: POST"),
    ("GET", "/v2/whatever", 404, "Malformed request: GET /v2/whatever"),
    ("GET", "/v1/models/kaml:predict", 404, "Malformed request"),
    ("PUT", "/v1/models/kaml", 405, "Method PUT is not allowed; this server answers GET and POST"),
    ("DELETE", "/v1/models/kaml", 405, "Method DELETE is not allowed"),
    ("PATCH", "/v2/whatever", 405, "Method PATCH is not allowed"),
  ],
)
def test_unknown_models_paths_and_methods(server, method, path, status, match):
  code, answer = _call(server.url + path, b"{}" if method != "GET" else None, method)
  assert code == status
  assert list(answer) == ["error"]
  assert re.search(match, answer["error"]), answer["error"]


def test_405_says_what_is_allowed_and_unknown_methods_get_json(server):
  connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=_TIMEOUT)
  try:
    connection.request("DELETE", "/v1/models/kaml")
    response = connection.getresponse()
    assert (response.status, response.getheader("Allow")) == (405, "GET, POST")
    response.read()
    connection.request("BREW", "/v1/models/kaml")
    response = connection.getresponse()
    assert response.status == 501
    assert response.getheader("Content-Type") == "application/json"
    assert json.loads(response.read()) == {"error": "Method BREW is not supported; use GET or POST"}
  finally:
    connection.close()


def test_requests_share_one_keep_alive_connection(server, rows):
  connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=_TIMEOUT)
  try:
    sockets = []
    for path, body in [
      ("/v1/models/kaml", None),
      ("/v1/models/kaml:predict", json.dumps({"instances": rows})),
      ("/v1/models/kaml/metadata", None),
      ("/v1/models/other", None),  # An error keeps the connection too.
    ]:
      connection.request("POST" if body else "GET", path, body=body)
      response = connection.getresponse()
      data = response.read()
      assert response.version == 11
      assert int(response.getheader("Content-Length")) == len(data)
      assert response.getheader("Connection") is None
      sockets.append(connection.sock)
    assert all(s is sockets[0] for s in sockets)
  finally:
    connection.close()


def test_metadata(server, exported):
  status, body = _call(server.url + "/v1/models/kaml/metadata")
  assert status == 200
  assert body == {
    "model_spec": {"name": "kaml", "signature_name": "", "version": "1"},
    "metadata": {"signature_def": {"signature_def": rest_json.signature_defs(exported.path)}},
  }
  assert _call(server.url + "/v1/models/kaml/versions/1/metadata") == (status, body)
  serving = body["metadata"]["signature_def"]["signature_def"][SIGNATURE]
  assert sorted(serving["outputs"]) == server.model.output_names(SIGNATURE)
  assert serving["inputs"]["target_action"]["dtype"] == "DT_INT64"


def test_model_refusals_are_400_without_graph_internals(server, rows, monkeypatch, kit):
  """A refusal in the graph (as an out-of-range `target_action` was) reads cleanly."""
  message = module_lib.target_range_message(kit.schema)

  @tf.function(autograph=False)
  def refuse(target):
    check = tf.debugging.assert_greater_equal(target, tf.constant(0, tf.int64), message=message)
    with tf.control_dependencies([check]):
      return tf.identity(target)

  def run(signature, columns, allow_extra=True):
    refuse(tf.constant([0, -1], tf.int64))

  monkeypatch.setattr(server.model, "run", run)
  code, answer = _call(server.url + "/v1/models/kaml:predict", {"instances": rows})
  assert (code, answer) == (400, {"error": message})


def test_bugs_are_500_without_details(server, rows, monkeypatch):
  def run(signature, columns, allow_extra=True):
    raise RuntimeError("node StatefulPartitionedCall/secret failed")

  monkeypatch.setattr(server.model, "run", run)
  code, answer = _call(server.url + "/v1/models/kaml:predict", {"instances": rows})
  assert code == 500
  assert answer == {
    "error": "Internal error answering POST /v1/models/kaml:predict; the server log has details"
  }


def _wait_until(condition, timeout=60.0):
  deadline = time.monotonic() + timeout
  while not condition():
    assert time.monotonic() < deadline, "timed out"
    time.sleep(0.05)


def _statuses(server):
  code, body = _call(server.url + "/v1/models/kaml")
  if code != 200:
    return []
  return [
    (s["version"], s["state"], s["status"]["error_code"]) for s in body["model_version_status"]
  ]


def _wait_for_version(server, version):
  _wait_until(lambda: (version, "AVAILABLE", "OK") in _statuses(server))


def _copy_version(source, base, version):
  """Copies complete under a hidden name, then renames (as the exporter does)."""
  shutil.copytree(source, os.path.join(base, f".{version}.tmp"))
  os.rename(os.path.join(base, f".{version}.tmp"), os.path.join(base, str(version)))


def _cvr(server, rows):
  code, body = _call(server.url + "/v1/models/kaml:predict", {"instances": rows})
  assert code == 200, body
  return [p["cvr"] for p in body["predictions"]]


@pytest.fixture(scope="module")
def second_export(tmp_path_factory, kit):
  """Another model, so that a switch of version shows in the scores."""
  model_dir = str(tmp_path_factory.mktemp("model2"))
  kit.make_model_dir(model_dir, "shared_bottom", hke=False, seed=5)
  return exporter.export_model(model_dir, str(tmp_path_factory.mktemp("serving2")), version=1)


def _fast_server(base):
  return rest_server.ModelServer(
    rest_server.ServerConfig(
      export_base=base,
      port=0,
      poll_seconds=0.05,
      load_retry_seconds=0.05,
      load_retry_max_seconds=0.2,
    )
  )


def test_a_failing_version_shows_its_error_and_a_newer_one_replaces_it(
  tmp_path, exported, second_export, rows
):
  base = str(tmp_path / "serving")
  os.makedirs(base)
  with _fast_server(base) as server:
    assert _call(server.url + "/v1/models/kaml") == (
      404,
      {"error": "Could not find any versions of model kaml"},
    )
    _copy_version(exported.path, base, 3)
    _wait_for_version(server, "3")
    first = _cvr(server, rows)
    os.makedirs(os.path.join(base, "4"))  # Not a SavedModel: retried, reported, 3 serves.
    _wait_until(lambda: server.versions.status(4) and server.versions.status(4).attempts >= 3)
    code, body = _call(server.url + "/v1/models/kaml")
    assert code == 200
    failing, serving = body["model_version_status"]
    assert (failing["version"], failing["state"]) == ("4", "LOADING")
    assert failing["status"]["error_code"] == "NOT_FOUND"
    assert "no SavedModel here" in failing["status"]["error_message"]
    assert serving == {
      "version": "3",
      "state": "AVAILABLE",
      "status": {"error_code": "OK", "error_message": ""},
    }
    assert _call(server.url + "/v1/models/kaml/versions/4")[1]["model_version_status"] == [failing]
    assert _cvr(server, rows) == first
    _copy_version(second_export, base, 5)
    _wait_for_version(server, "5")
    assert _statuses(server) == [
      ("5", "AVAILABLE", "OK"),
      ("4", "END", "NOT_FOUND"),  # Given up for a newer version, with its last error.
      ("3", "END", "OK"),
    ]
    second = _cvr(server, rows)
  expected = client.ExportedModel(second_export).score({k: [r[k] for r in rows] for k in rows[0]})
  np.testing.assert_allclose(second, expected["cvr"], atol=1e-6)
  assert np.abs(np.subtract(first, second)).max() > 1e-4


def test_a_version_copied_in_two_steps_loads_once_complete(tmp_path, exported, second_export, rows):
  base = str(tmp_path / "serving")
  os.makedirs(base)
  _copy_version(exported.path, base, 1)
  with _fast_server(base) as server:
    first = _cvr(server, rows)
    # Everything but the variables first (saved_model.pb before variables/), as a plain copy.
    target = os.path.join(base, "2")
    shutil.copytree(second_export, target, ignore=shutil.ignore_patterns("variables"))
    _wait_until(lambda: server.versions.status(2) and server.versions.status(2).attempts >= 3)
    assert _statuses(server) == [("2", "LOADING", "NOT_FOUND"), ("1", "AVAILABLE", "OK")]
    status = _call(server.url + "/v1/models/kaml/versions/2")[1]["model_version_status"][0]
    assert "variables" in status["status"]["error_message"]
    assert _cvr(server, rows) == first
    time.sleep(0.5)  # Several back-offs later, the copy completes.
    shutil.copytree(os.path.join(second_export, "variables"), os.path.join(target, "variables"))
    _wait_for_version(server, "2")
    assert _statuses(server) == [("2", "AVAILABLE", "OK"), ("1", "END", "OK")]
    assert _cvr(server, rows) != first


def test_a_deleted_version_is_unloaded_and_the_older_one_served(
  tmp_path, exported, second_export, rows
):
  base = str(tmp_path / "serving")
  os.makedirs(base)
  _copy_version(exported.path, base, 1)
  _copy_version(second_export, base, 2)
  with _fast_server(base) as server:
    assert server.model.version == 2
    second = _cvr(server, rows)
    shutil.rmtree(os.path.join(base, "2"))
    _wait_for_version(server, "1")
    assert _statuses(server) == [("2", "END", "OK"), ("1", "AVAILABLE", "OK")]
    first = _cvr(server, rows)
    assert _call(server.url + "/v1/models/kaml/versions/2:predict", {"instances": rows})[0] == 404
  expected = client.ExportedModel(exported.path).score({k: [r[k] for r in rows] for k in rows[0]})
  np.testing.assert_allclose(first, expected["cvr"], atol=1e-6)
  assert np.abs(np.subtract(first, second)).max() > 1e-4


def test_server_config_validation(tmp_path):
  with pytest.raises(ValueError, match="export_base: required"):
    rest_server.ServerConfig(export_base="")
  with pytest.raises(ValueError, match="port: must be an integer in"):
    rest_server.ServerConfig(export_base=str(tmp_path), port=70000)
  with pytest.raises(ValueError, match="poll_seconds: must be > 0"):
    rest_server.ServerConfig(export_base=str(tmp_path), poll_seconds=0)
  with pytest.raises(ValueError, match="model_name: letters"):
    rest_server.ServerConfig(export_base=str(tmp_path), model_name="a/b")
  with pytest.raises(ValueError, match="load_retry_seconds: must be > 0"):
    rest_server.ServerConfig(export_base=str(tmp_path), load_retry_seconds=0)
  with pytest.raises(ValueError, match=r"load_retry_max_seconds: must be >= load_retry_seconds"):
    rest_server.ServerConfig(export_base=str(tmp_path), load_retry_max_seconds=0.5)
  with pytest.raises(ValueError, match="workers: must be an integer >= 1"):
    rest_server.ServerConfig(export_base=str(tmp_path), workers=0)
  with pytest.raises(ValueError, match="max_inflight_body_bytes: must be >= max_body_bytes"):
    rest_server.ServerConfig(export_base=str(tmp_path), max_inflight_body_bytes=1)
  config = rest_server.ServerConfig(export_base=str(tmp_path), workers=3, max_body_bytes=10)
  assert config.limits() == http_server.Limits(workers=3, max_body_bytes=10)
  for field in dataclasses.fields(rest_server.ServerConfig):
    assert field.metadata["help"], field.name
  with pytest.raises(FileNotFoundError, match="export base folder not found"):
    rest_server.ModelServer(rest_server.ServerConfig(export_base=str(tmp_path / "none")))


def test_poller_survives_listing_errors(tmp_path, exported, monkeypatch):
  base = str(tmp_path / "serving")
  os.makedirs(base)
  real = client.list_versions
  calls = []

  def flaky_list_versions(export_base):
    calls.append(export_base)
    if 1 < len(calls) <= 3:  # The constructor's poll, then two failing background polls.
      raise OSError("disk hiccup")
    return real(export_base)

  monkeypatch.setattr(client, "list_versions", flaky_list_versions)
  with _fast_server(base) as server:
    _copy_version(exported.path, base, 2)
    _wait_for_version(server, "2")
  assert len(calls) > 3


# Multi-valued features over REST: a list per instance, padded by the server.


@pytest.fixture(scope="module")
def mv_server(mv_exported):
  config = rest_server.ServerConfig(export_base=mv_exported.export_base, port=0, poll_seconds=60)
  with rest_server.ModelServer(config) as running:
    yield running


def _mv_instances(kit):
  columns = kit.mv_log_columns(4)
  out = []
  for i in range(4):
    row = {k: columns[k][i].item() for k in ("user_id", "ad_task_id", "bid", "target_action")}
    row["city"] = str(columns["city"][i])
    row["tags"] = [str(t) for t in columns["tags"][i] if t]
    row["apps"] = [int(a) for a in columns["apps"][i] if a >= 0]
    out.append(row)
  return columns, out


def test_multivalued_lists_round_trip(mv_server, kit):
  columns, instances = _mv_instances(kit)
  assert [len(r["tags"]) for r in instances] == [0, 1, 2, 3]  # the empty list included
  expected = mv_server.model.score(columns)
  status, body = _call(mv_server.url + "/v1/models/kaml:predict", {"instances": instances})
  assert status == 200, body
  np.testing.assert_allclose(
    [p["logit"] for p in body["predictions"]], expected["logit"], atol=1e-6
  )
  assert all(p["valid"] for p in body["predictions"])
  inputs = {k: [r[k] for r in instances] for k in instances[0]}
  status, body = _call(mv_server.url + "/v1/models/kaml:predict", {"inputs": inputs})
  assert status == 200, body
  np.testing.assert_allclose(body["outputs"]["logit"], expected["logit"], atol=1e-6)
  features = [{k: v for k, v in r.items() if k != "target_action"} for r in instances]
  status, body = _call(
    mv_server.url + "/v1/models/kaml:predict",
    {"signature_name": "predict_all", "instances": features},
  )
  assert status == 200, body
  np.testing.assert_allclose(
    [p["probabilities"] for p in body["predictions"]],
    mv_server.model.predict_all(columns),
    atol=1e-6,
  )


@pytest.mark.parametrize(
  "row, field, value, match",
  [
    (2, "tags", ["a", "b", "c", "a"], r"instances\[2\]\.tags: 4 ids, more than max_values=3"),
    (1, "tags", "a", r"instances\[1\]\.tags: expected a list of at most 3 ids"),
    (3, "apps", [1, "2"], r"instances\[3\]\.apps\[1\]: expected an id of type int64"),
    (0, "apps", [1, 2.5], r"instances\[0\]\.apps\[1\]: expected an id of type int64"),
    (1, "tags", ["", "a"], r"instances\[1\]\.tags\[0\]: b'' is the pad value"),
    (0, "apps", [-1, 3], r"instances\[0\]\.apps\[0\]: -1 is the pad value"),
    (2, "tags", ["a", None], r"instances\[2\]\.tags: null is not a valid value"),
  ],
)
def test_multivalued_bad_lists_are_a_400_naming_field_and_instance(
  mv_server, kit, row, field, value, match
):
  _, instances = _mv_instances(kit)
  instances[row][field] = value
  status, body = _call(mv_server.url + "/v1/models/kaml:predict", {"instances": instances})
  assert status == 400
  assert re.search(match, body["error"]), body


def test_multivalued_columnar_errors_name_the_row(mv_server, kit):
  _, instances = _mv_instances(kit)
  inputs = {k: [r[k] for r in instances] for k in instances[0]}
  inputs["apps"][1] = [1, 2, 3]
  status, body = _call(mv_server.url + "/v1/models/kaml:predict", {"inputs": inputs})
  assert status == 400 and re.search(r"inputs\.apps\[1\]: 3 ids, more than", body["error"]), body
  inputs["apps"] = 5
  status, body = _call(mv_server.url + "/v1/models/kaml:predict", {"inputs": inputs})
  assert status == 400 and "inputs.apps: expected one list of ids per row" in body["error"], body
