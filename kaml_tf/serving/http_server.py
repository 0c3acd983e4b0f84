"""A small JSON-over-HTTP/1.1 server with bounded threads and bounded request memory.

`JsonHTTPServer` hands each request to an application function
`app(method, path, body) -> Reply` and writes the reply as JSON. Unlike the standard
library's `ThreadingHTTPServer` (one new thread per connection, HTTP/1.0), it:

* speaks HTTP/1.1 with keep-alive: every response has a `Content-Length`, so a client can send
  its next request on the same connection;
* answers connections from a fixed pool of `workers` threads. A connection occupies a worker
  while it is open, so an idle keep-alive connection, or an upload that stalls, is closed after
  `idle_timeout_seconds` without traffic; a body must arrive within `body_timeout_seconds`.
  Connections beyond `max_connections` (served or waiting for a worker) get a 503 at once;
* bounds memory: a body over `max_body_bytes` gets a 413 without being read, and a body that
  would bring the bytes of the bodies held at once over `max_inflight_body_bytes` gets a 503;
  after a large request the freed heap is handed back to the operating system (glibc's
  `malloc_trim`), since the allocator otherwise keeps it for the process' lifetime;
* answers every error, including the ones the standard library raises itself (malformed
  request line, unknown method), with a JSON body `{"error": "..."}`, never HTML.
"""

import ctypes
import ctypes.util
import concurrent.futures
import dataclasses
import http
import http.server
import json
import socket
import threading
import time
from typing import Any, Callable, Dict, Mapping, NamedTuple, Optional

from absl import logging

# Body sizes from which the heap is trimmed after the request: below, the allocator's reuse
# is what keeps small requests fast.
_TRIM_FROM_BYTES = 1 << 20
_READ_CHUNK_BYTES = 1 << 16
# How long the input of a connection closed before its body was read is drained (`_drain`).
_DRAIN_SECONDS = 1.0


class Reply(NamedTuple):
  """An answer: HTTP status, JSON payload, and extra headers (e.g. `Allow`)."""

  status: int
  payload: Dict[str, Any]
  headers: Mapping[str, str] = {}


App = Callable[[str, str, bytes], Reply]


@dataclasses.dataclass(frozen=True)
class Limits:
  """Bounds of the server (see the module docstring); errors name the field."""

  workers: int = 8
  max_connections: int = 64
  idle_timeout_seconds: float = 30.0
  body_timeout_seconds: float = 120.0
  max_body_bytes: int = 64 << 20
  max_inflight_body_bytes: int = 128 << 20

  def __post_init__(self):
    for name in ("workers", "max_connections", "max_body_bytes", "max_inflight_body_bytes"):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: must be an integer >= 1, got {value!r}")
    for name in ("idle_timeout_seconds", "body_timeout_seconds"):
      if not getattr(self, name) > 0:
        raise ValueError(f"{name}: must be > 0, got {getattr(self, name)!r}")
    if self.max_connections < self.workers:
      raise ValueError(
        f"max_connections: must be >= workers ({self.workers}), got {self.max_connections}"
      )
    if self.max_inflight_body_bytes < self.max_body_bytes:
      raise ValueError(
        f"max_inflight_body_bytes: must be >= max_body_bytes ({self.max_body_bytes}), "
        f"got {self.max_inflight_body_bytes}"
      )


class ByteBudget:
  """A count of bytes in use that refuses to go over its limit (thread-safe)."""

  def __init__(self, limit: int):
    self.limit = limit
    self._used = 0
    self._lock = threading.Lock()

  @property
  def used(self) -> int:
    with self._lock:
      return self._used

  def try_take(self, n: int) -> bool:
    """Takes `n` bytes if they fit under the limit; False (nothing taken) otherwise."""
    with self._lock:
      if self._used + n > self.limit:
        return False
      self._used += n
      return True

  def give_back(self, n: int) -> None:
    with self._lock:
      self._used -= n


class JsonHTTPServer(http.server.HTTPServer):
  """Serves `app` on `address` with the bounds of `limits` (see the module docstring).

  Use `serve_forever()` in some thread, then `shutdown()` and `server_close()`.
  """

  def __init__(self, address, app: App, limits: Limits):
    self.app = app
    self.limits = limits
    self.body_budget = ByteBudget(limits.max_inflight_body_bytes)
    self._slots = threading.BoundedSemaphore(limits.max_connections)
    self._pool = concurrent.futures.ThreadPoolExecutor(
      max_workers=limits.workers, thread_name_prefix="http-worker"
    )
    self._open = set()
    self._open_lock = threading.Lock()
    super().__init__(address, _Handler)

  def process_request(self, request, client_address):
    """Queues the connection for a worker, or answers 503 at once when too many are open."""
    if not self._slots.acquire(blocking=False):
      _refuse(request, self.limits.max_connections)
      self.shutdown_request(request)
      return
    with self._open_lock:
      self._open.add(request)
    self._pool.submit(self._work, request, client_address)

  def _work(self, request, client_address) -> None:
    try:
      self.finish_request(request, client_address)
    except Exception:  # pylint: disable=broad-except
      self.handle_error(request, client_address)
    finally:
      with self._open_lock:
        self._open.discard(request)
      self.shutdown_request(request)
      self._slots.release()

  def handle_error(self, request, client_address):
    logging.exception("error on the connection from %s", client_address)

  def server_close(self):
    """Closes the socket, ends the open connections and waits for the workers."""
    super().server_close()
    with self._open_lock:
      for request in self._open:
        try:  # Wakes a worker blocked reading an idle keep-alive connection.
          request.shutdown(socket.SHUT_RDWR)
        except OSError:
          pass
    # Queued connections still run: they find their socket shut down and end at once.
    self._pool.shutdown(wait=True)


def _refuse(request: socket.socket, max_connections: int) -> None:
  data = _json_bytes({"error": f"Too many connections (more than {max_connections}); retry"})
  head = (
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
  ).encode("latin-1")
  try:
    request.settimeout(1.0)
    request.sendall(head + data)
  except OSError:
    pass


def _json_bytes(payload: Dict[str, Any]) -> bytes:
  return json.dumps(payload).encode("utf-8")


class _Handler(http.server.BaseHTTPRequestHandler):
  """Reads one request at a time off a connection; `JsonHTTPServer.app` answers it."""

  protocol_version = "HTTP/1.1"
  disable_nagle_algorithm = True  # Headers and body are two writes; no delayed-ACK stall.
  server: JsonHTTPServer

  def setup(self):
    self.timeout = self.server.limits.idle_timeout_seconds
    self._unread_body = False  # Set when an answer leaves (part of) the body unread.
    super().setup()

  def do_GET(self):  # pylint: disable=invalid-name
    self._dispatch()

  do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

  def handle_expect_100(self):
    """Refuses a too large body before the client sends it (`Expect: 100-continue`)."""
    length = self._content_length()
    if length is not None and length > self.server.limits.max_body_bytes:
      self._write(_too_large(length, self.server.limits.max_body_bytes), close=True)
      return False
    return super().handle_expect_100()

  def _dispatch(self) -> None:
    if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
      self._write(
        Reply(411, {"error": "Chunked bodies are not accepted; send a Content-Length"}), close=True
      )
      return
    length = self._content_length()
    limits = self.server.limits
    if length is None:
      self._write(
        Reply(400, {"error": f"Content-Length must be in [0, {limits.max_body_bytes}]"}),
        close=True,
      )
      return
    if length > limits.max_body_bytes:
      self._write(_too_large(length, limits.max_body_bytes), close=True)
      return
    if not self.server.body_budget.try_take(length):
      # The body is left unread, so the connection cannot carry another request.
      self._write(
        Reply(
          503,
          {"error": "The server is busy with other large requests; retry later"},
          {"Retry-After": "1"},
        ),
        close=True,
      )
      return
    try:
      body = self._read_body(length)
      if body is None:
        return
      reply = self.server.app(self.command, self.path, body)
      del body
    finally:
      # Given back before the reply goes out, so a client that has its answer sees the budget free.
      self.server.body_budget.give_back(length)
      if length >= _TRIM_FROM_BYTES:
        release_freed_memory()
    self._write(reply)

  def _content_length(self) -> Optional[int]:
    """The declared body size (0 if none); None if it is not a non-negative integer."""
    text = self.headers.get("Content-Length", "0")
    try:
      length = int(text)
    except ValueError:
      return None
    return length if length >= 0 else None

  def _read_body(self, length: int) -> Optional[bytearray]:
    """The body, or None (connection closed) if it does not arrive in time."""
    body = bytearray(length)
    view = memoryview(body)
    deadline = time.monotonic() + self.server.limits.body_timeout_seconds
    got = 0
    while got < length:
      if time.monotonic() > deadline:
        self._write(Reply(408, {"error": "The request body did not arrive in time"}), close=True)
        return None
      n = self.rfile.readinto1(view[got : got + _READ_CHUNK_BYTES])  # Returns what has come.
      if not n:  # The client closed the connection mid-body.
        self.close_connection = True
        return None
      got += n
    view.release()
    return body

  def finish(self):
    super().finish()
    if self._unread_body:
      _drain(self.connection)

  def _write(self, reply: Reply, close: bool = False) -> None:
    data = _json_bytes(reply.payload)
    self.send_response(reply.status)
    self.send_header("Content-Type", "application/json")
    self.send_header("Content-Length", str(len(data)))
    for key, value in reply.headers.items():
      self.send_header(key, value)
    if close:
      self.send_header("Connection", "close")  # Also sets `close_connection`.
      self._unread_body = True
    self.end_headers()
    if self.command != "HEAD":
      self.wfile.write(data)

  def send_error(self, code, message=None, explain=None):
    """The standard library's own errors (bad request line, unknown method), as JSON."""
    status = http.HTTPStatus(code)
    text = message or status.phrase
    if code == http.HTTPStatus.NOT_IMPLEMENTED and self.command:
      text = f"Method {self.command} is not supported; use GET or POST"
    if self.request_version == "HTTP/0.9":  # A request line too broken to parse: no status
      self.request_version = "HTTP/1.0"  # line would be sent, and JSON clients need one.
    self.log_error("code %d, message %s", code, text)
    self._write(Reply(code, {"error": text}), close=True)

  def log_message(self, format, *args):  # pylint: disable=redefined-builtin
    logging.debug("%s - %s", self.address_string(), format % args)


def _drain(connection: socket.socket) -> None:
  """Reads and drops what the client still sends, for a moment, before the socket closes.

  Closing a socket with unread input makes the kernel reset the connection, and the client
  may then lose the answer (e.g. a 413) it has not read yet.
  """
  deadline = time.monotonic() + _DRAIN_SECONDS
  try:
    connection.shutdown(socket.SHUT_WR)
    while time.monotonic() < deadline:
      connection.settimeout(max(deadline - time.monotonic(), 0.01))
      if not connection.recv(_READ_CHUNK_BYTES):
        return
  except OSError:
    pass


def _too_large(length: int, limit: int) -> Reply:
  return Reply(413, {"error": f"Request body of {length} bytes is over the limit of {limit}"})


def _load_malloc_trim() -> Optional[Callable[[int], int]]:
  name = ctypes.util.find_library("c")
  libc = ctypes.CDLL(name) if name else None
  # glibc has it; other C libraries (musl, macOS) return freed memory on their own or not at all.
  return getattr(libc, "malloc_trim", None)


_MALLOC_TRIM = _load_malloc_trim()


def release_freed_memory() -> None:
  """Returns the heap's free pages to the operating system where the C library allows it."""
  if _MALLOC_TRIM is not None:
    _MALLOC_TRIM(0)
