"""The JSON HTTP/1.1 layer with a stand-in application, over real sockets on 127.0.0.1."""

import http.client
import json
import re
import socket
import threading
import time

import pytest

from kaml_tf.serving import http_server

_TIMEOUT = 30


class EchoApp:
  """Answers `{"method", "path", "bytes"}`; a path of `/block` waits for `release`."""

  def __init__(self):
    self.release = threading.Event()
    self.entered = threading.Semaphore(0)

  def __call__(self, method, path, body):
    if path == "/block":
      self.entered.release()
      self.release.wait(_TIMEOUT)
    return http_server.Reply(200, {"method": method, "path": path, "bytes": len(body)})


@pytest.fixture
def serve():
  """Starts a server with the given limits; stops it after the test."""
  servers = []

  def start(app=None, **limits):
    server = http_server.JsonHTTPServer(
      ("127.0.0.1", 0), app or EchoApp(), http_server.Limits(**limits)
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    servers.append((server, thread))
    return server

  yield start
  for server, thread in servers:
    server.shutdown()
    server.server_close()
    thread.join(_TIMEOUT)


def _connect(server):
  return http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=_TIMEOUT)


def _request(connection, method, path, body=None, headers=None):
  connection.request(method, path, body=body, headers=headers or {})
  response = connection.getresponse()
  data = response.read()
  return response, json.loads(data) if data else None


def _raw(server, data: bytes) -> bytes:
  """Sends raw bytes, returns everything the server answers until it closes."""
  with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=_TIMEOUT) as s:
    s.sendall(data)
    chunks = []
    while True:
      chunk = s.recv(65536)
      if not chunk:
        return b"".join(chunks)
      chunks.append(chunk)


def test_keep_alive_over_http_1_1(serve):
  server = serve()
  connection = _connect(server)
  try:
    response, body = _request(connection, "POST", "/a", b"12345")
    first_socket = connection.sock
    assert response.version == 11 and response.status == 200
    assert response.getheader("Content-Length") == str(len(json.dumps(body)))
    assert response.getheader("Content-Type") == "application/json"
    assert body == {"method": "POST", "path": "/a", "bytes": 5}
    response, body = _request(connection, "GET", "/b")
    assert connection.sock is first_socket  # The same connection carried both requests.
    assert body == {"method": "GET", "path": "/b", "bytes": 0}
  finally:
    connection.close()


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
def test_every_method_reaches_the_app(serve, method):
  connection = _connect(serve())
  try:
    response, body = _request(connection, method, "/x", b"{}")
    assert response.status == 200 and body["method"] == method
  finally:
    connection.close()


def test_head_has_no_body(serve):
  connection = _connect(serve())
  try:
    response, body = _request(connection, "HEAD", "/x")
    assert response.status == 200 and body is None
  finally:
    connection.close()


@pytest.mark.parametrize(
  "raw, status, match",
  [
    (b"FOO /x HTTP/1.1\r\nHost: a\r\n\r\n", 501, "Method FOO is not supported; use GET or POST"),
    (b"GET /x HTTP/9\r\n\r\n", 400, "Bad request version"),
    (
      b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      411,
      "send a Content-Length",
    ),
    (b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n", 400, r"\[0, 100\]"),
    (b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: zz\r\n\r\n", 400, r"\[0, 100\]"),
    (
      b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n",
      413,
      "Request body of 101 bytes is over the limit of 100",
    ),
    (
      b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\nExpect: 100-continue\r\n\r\n",
      413,
      "over the limit of 100",
    ),
  ],
)
def test_errors_are_json(serve, raw, status, match):
  server = serve(max_body_bytes=100, max_inflight_body_bytes=100)
  answer = _raw(server, raw).decode()
  head, _, body = answer.partition("\r\n\r\n")
  assert head.startswith(f"HTTP/1.1 {status} ") or head.startswith(f"HTTP/1.0 {status} "), head
  assert "Content-Type: application/json" in head and "Connection: close" in head
  assert list(json.loads(body)) == ["error"]
  assert re.search(match, json.loads(body)["error"])


def test_body_bytes_in_flight_are_bounded(serve):
  app = EchoApp()
  server = serve(app, max_body_bytes=100, max_inflight_body_bytes=150)
  blocked = threading.Thread(
    target=lambda: _request(_connect(server), "POST", "/block", b"x" * 100)
  )
  blocked.start()
  assert app.entered.acquire(timeout=_TIMEOUT)
  assert server.body_budget.used == 100
  connection = _connect(server)
  try:
    response, body = _request(connection, "POST", "/x", b"y" * 60)  # 100 + 60 > 150
    assert response.status == 503 and response.getheader("Retry-After") == "1"
    assert body == {"error": "The server is busy with other large requests; retry later"}
  finally:
    connection.close()
  connection = _connect(server)
  try:
    assert _request(connection, "POST", "/x", b"y" * 50)[0].status == 200  # 100 + 50 fits.
  finally:
    connection.close()
  app.release.set()
  blocked.join(_TIMEOUT)
  assert server.body_budget.used == 0


def test_stalled_uploads_use_a_bounded_number_of_threads(serve):
  before = threading.active_count()
  server = serve(workers=2, max_connections=3, idle_timeout_seconds=1.0)
  stalled = []
  for _ in range(3):  # Two take the workers, one waits for a worker.
    s = socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=_TIMEOUT)
    s.sendall(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
    stalled.append(s)
  time.sleep(0.3)
  assert threading.active_count() <= before + 1 + 2  # serve_forever + the two workers.
  refused = _raw(server, b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n").decode()
  assert refused.startswith("HTTP/1.1 503 ") and "Too many connections (more than 3)" in refused
  for s in stalled:  # Each stalled upload is dropped after the idle timeout.
    assert s.recv(100) == b""
    s.close()
  connection = _connect(server)
  try:
    assert _request(connection, "GET", "/x")[0].status == 200
  finally:
    connection.close()


def test_idle_keep_alive_connections_are_closed(serve):
  server = serve(idle_timeout_seconds=0.5)
  with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=_TIMEOUT) as s:
    s.sendall(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
    start = time.monotonic()
    data = b""
    while True:
      chunk = s.recv(65536)
      if not chunk:
        break
      data += chunk
    assert data.startswith(b"HTTP/1.1 200 ")
    assert 0.4 < time.monotonic() - start < 10


def test_a_body_that_is_too_slow_gets_408(serve):
  server = serve(body_timeout_seconds=0.3, idle_timeout_seconds=5.0)
  with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=_TIMEOUT) as s:
    s.sendall(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n")
    for _ in range(8):  # A trickle that never stalls for the idle timeout.
      s.sendall(b"x" * 10)
      time.sleep(0.1)
    answer = s.recv(65536)
  assert answer.startswith(b"HTTP/1.1 408 ") and b"did not arrive in time" in answer


@pytest.mark.parametrize(
  "limits, match",
  [
    ({"workers": 0}, "workers: must be an integer >= 1, got 0"),
    ({"workers": True}, "workers: must be an integer >= 1"),
    ({"max_connections": 2, "workers": 3}, r"max_connections: must be >= workers \(3\)"),
    ({"idle_timeout_seconds": 0}, "idle_timeout_seconds: must be > 0"),
    ({"body_timeout_seconds": -1.0}, "body_timeout_seconds: must be > 0"),
    ({"max_body_bytes": 10, "max_inflight_body_bytes": 5}, "max_inflight_body_bytes: must be >="),
  ],
)
def test_bad_limits(limits, match):
  with pytest.raises(ValueError, match=match):
    http_server.Limits(**limits)


def test_byte_budget():
  budget = http_server.ByteBudget(10)
  assert budget.try_take(6) and not budget.try_take(5) and budget.try_take(4)
  assert budget.used == 10
  budget.give_back(6)
  assert budget.used == 4 and budget.try_take(6)


def _rss_mb():
  with open("/proc/self/status") as f:
    return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def test_memory_of_a_large_body_is_given_back(serve):
  def parse(method, path, body):
    rows = json.loads(body)  # About 10 x the body in Python objects.
    return http_server.Reply(200, {"rows": len(rows)})

  server = serve(parse, max_body_bytes=64 << 20, max_inflight_body_bytes=64 << 20)
  body = json.dumps([{"user_id": i, "bid": 0.5, "city": "paris"} for i in range(600_000)]).encode()
  connection = _connect(server)
  try:
    assert _request(connection, "POST", "/x", b"[]")[1] == {"rows": 0}
    before = _rss_mb()
    assert _request(connection, "POST", "/x", body)[1] == {"rows": 600_000}
    after = _rss_mb()
  finally:
    connection.close()
  # The parsed rows took hundreds of MB; what is left is allocator noise.
  assert after - before < 0.5 * len(body) / 2**20, (before, after, len(body) / 2**20)
