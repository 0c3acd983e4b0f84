"""Which version of an export base is served: TF Serving's "latest" version policy, polled.

`VersionManager.poll` lists the numeric version folders under the export base and aims to serve
the newest one:

* a new newest version is loaded (`LOADING`) while the current one keeps serving; once loaded
  it is served (`AVAILABLE`) and the previous one is unloaded (`END`);
* a load that fails (e.g. a folder copied in piece by piece: `saved_model.pb` before
  `variables/`) stays `LOADING` with the error in its status and is retried after a back-off
  that doubles per failure up to a cap, for as long as it is the newest folder: a copy that
  completes later is loaded then. A newer folder supersedes it (`END`, its last error kept);
* a deleted version is unloaded (`END`) and the newest remaining folder is loaded, older or not.

States and error codes are the names of TF Serving's `ModelVersionStatus.State` and of the
canonical error codes, so `statuses` maps directly onto the REST status response.
"""

import dataclasses
import os
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from absl import logging
import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf.serving import client

LOADING = "LOADING"
AVAILABLE = "AVAILABLE"
END = "END"

# A load error's status message is its first line, at most this long (TF's can span pages).
_MAX_ERROR_CHARS = 500
_ERROR_CODES = (
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
)


@dataclasses.dataclass
class VersionStatus:
  """What is known of one version (TF Serving's `ModelVersionStatus`).

  Attributes:
    version: The version number.
    state: `LOADING`, `AVAILABLE` or `END`.
    error_code: `OK`, or the canonical code of the last load error (e.g. `NOT_FOUND`).
    error_message: The last load error, "" if none.
    attempts: Failed load attempts so far (reset when the version is loaded again).
    retry_at: `time.monotonic()` before which no new attempt is made.
  """

  version: int
  state: str
  error_code: str = "OK"
  error_message: str = ""
  attempts: int = 0
  retry_at: float = 0.0


class VersionManager:
  """Loads, serves and unloads the versions of an export base (see the module docstring).

  `poll` is meant to be called from one thread (the poller); `serving`, `status` and
  `statuses` may be called from any thread.
  """

  def __init__(
    self,
    export_base: str,
    load: Callable[[str], Any],
    retry_seconds: float,
    retry_max_seconds: float,
    clock: Callable[[], float] = time.monotonic,
  ):
    """Manages `export_base`; nothing is loaded before the first `poll`.

    Args:
      export_base: The folder of numeric version folders.
      load: Loads a version folder (path) into the object served; raises if it cannot.
      retry_seconds: Wait after a first failed load; doubles after each further failure.
      retry_max_seconds: The cap of that wait.
      clock: Monotonic seconds (injectable for tests).
    """
    if not 0 < retry_seconds <= retry_max_seconds:
      raise ValueError(
        f"retry_seconds: must be > 0 and <= retry_max_seconds ({retry_max_seconds!r}), "
        f"got {retry_seconds!r}"
      )
    self._export_base = export_base
    self._load = load
    self._retry_seconds = retry_seconds
    self._retry_max_seconds = retry_max_seconds
    self._clock = clock
    self._lock = threading.Lock()
    self._statuses: Dict[int, VersionStatus] = {}
    self._served: Optional[Tuple[int, Any]] = None

  def serving(self) -> Optional[Tuple[int, Any]]:
    """(version, loaded object) served now, or None."""
    with self._lock:
      return self._served

  def status(self, version: int) -> Optional[VersionStatus]:
    """A copy of the status of `version`, or None if it was never seen."""
    with self._lock:
      found = self._statuses.get(version)
      return dataclasses.replace(found) if found else None

  def statuses(self) -> List[VersionStatus]:
    """Copies of every version's status, newest first."""
    with self._lock:
      return [dataclasses.replace(self._statuses[v]) for v in sorted(self._statuses, reverse=True)]

  def poll(self) -> Optional[int]:
    """Brings the served version in line with the folder; returns a newly served version.

    Raises:
      OSError: if the export base is missing or cannot be listed (nothing changes then: a
        base folder that vanishes for a moment must not unload what is served).
    """
    if not tf.io.gfile.isdir(self._export_base):
      raise FileNotFoundError(f"{self._export_base}: export base folder not found")
    present = set(client.list_versions(self._export_base))
    with self._lock:
      self._end_missing(present)
      target = max(present) if present else None
      if target is None or (self._served and self._served[0] == target):
        return None
      self._end_superseded(target)
      status = self._statuses.get(target)
      if status is None or status.state == END:
        status = self._statuses[target] = VersionStatus(target, LOADING)
      if self._clock() < status.retry_at:
        return None
    return self._try_load(status)

  def _end_missing(self, present) -> None:
    """Unloads the versions whose folder is gone (caller holds the lock)."""
    for version, status in self._statuses.items():
      if status.state != END and version not in present:
        status.state = END
        if self._served and self._served[0] == version:
          self._served = None
          logging.warning("version %d was deleted from %s; unloaded", version, self._export_base)

  def _end_superseded(self, target: int) -> None:
    """Gives up loading versions other than `target` (caller holds the lock)."""
    for version, status in self._statuses.items():
      if status.state == LOADING and version != target:
        status.state = END

  def _try_load(self, status: VersionStatus) -> Optional[int]:
    version = status.version
    path = os.path.join(self._export_base, str(version))
    try:
      loaded = self._load(path)
    except Exception as e:  # pylint: disable=broad-except
      # Whatever an incomplete or broken folder raises, the current version keeps serving.
      with self._lock:
        status.attempts += 1
        status.error_code = error_code(e)
        status.error_message = _first_line(e)
        wait = min(self._retry_seconds * 2 ** (status.attempts - 1), self._retry_max_seconds)
        status.retry_at = self._clock() + wait
        serving = self._served[0] if self._served else "nothing"
      logging.warning(
        "version %d failed to load (attempt %d; next in %.3g s; serving %s): %s",
        version,
        status.attempts,
        wait,
        serving,
        status.error_message,
      )
      return None
    with self._lock:
      previous = self._served
      self._served = (version, loaded)
      status.state = AVAILABLE
      status.error_code, status.error_message, status.attempts = "OK", "", 0
      if previous is not None:
        self._statuses[previous[0]].state = END
    logging.info("serving version %d from %s", version, path)
    return version


def error_code(error: BaseException) -> str:
  """The canonical error code name of a load error (`UNKNOWN` if it has none)."""
  if isinstance(error, tf.errors.OpError):
    names = {getattr(tf.errors, name): name for name in _ERROR_CODES}
    return names.get(error.error_code, "UNKNOWN")
  if isinstance(error, FileNotFoundError):
    return "NOT_FOUND"
  return "UNKNOWN"


def _first_line(error: BaseException) -> str:
  text = str(error).strip().split("\n", 1)[0]
  return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 3] + "..."
