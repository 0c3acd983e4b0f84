"""The run day's lock: a second loop for the same day refuses instead of racing the first."""

import errno
import fcntl
import os
from typing import Optional


class DayLockedError(RuntimeError):
  """Another loop holds the day's lock."""


class DayLock:
  """An exclusive, non-blocking `flock` on a file, released when the process dies.

  The file is created once and never written, so taking the lock on a rerun of a finished
  day changes no file (as `kaml_tf.training.model_dir.DirectoryLock`, but without the pid:
  the trainer's own lock on the model directory is a separate file).
  """

  def __init__(self, path: str):
    self._path = path
    self._fd: Optional[int] = None

  def __enter__(self) -> "DayLock":
    os.makedirs(os.path.dirname(self._path), exist_ok=True)
    fd = os.open(self._path, os.O_RDONLY | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      os.close(fd)
      if e.errno in (errno.EAGAIN, errno.EACCES):
        raise DayLockedError(
          f"{self._path} is held by another daily loop for the same day; refusing to run a "
          "second one (wait for it to finish)"
        ) from None
      raise
    self._fd = fd
    return self

  def __exit__(self, *exc) -> None:
    if self._fd is not None:
      fcntl.flock(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None
