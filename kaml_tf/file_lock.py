"""An exclusive, non-blocking `flock` on a file, released when its process dies.

The one lock behind the trainer's model-directory lock (`training.model_dir.DirectoryLock`)
and the daily loop's day lock (`daily.lock.DayLock`): a second job on the same folder refuses
at once instead of racing the first, and a killed job leaves nothing to clean up (the kernel
drops its lock with its file descriptors).
"""

import errno
import fcntl
import os
from typing import Callable, Optional


class FileLock:
  """Holds `path` locked while the `with` block runs.

  Args:
    path: The lock file, created (with its folder) if missing.
    held: Makes the error raised when another process holds the lock; called with what the
      holder wrote in the file (empty when nothing).
    write_pid: Write "pid N" into the file once locked, for the next one's error. Off, the
      file is never written, so locking changes no file (a rerun that must change nothing).
  """

  def __init__(self, path: str, held: Callable[[str], Exception], write_pid: bool = False):
    self._path = path
    self._held = held
    self._write_pid = write_pid
    self._fd: Optional[int] = None

  @property
  def path(self) -> str:
    return self._path

  def __enter__(self) -> "FileLock":
    os.makedirs(os.path.dirname(self._path) or ".", exist_ok=True)
    mode = os.O_RDWR if self._write_pid else os.O_RDONLY
    fd = os.open(self._path, mode | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      os.close(fd)
      if e.errno in (errno.EAGAIN, errno.EACCES):
        with open(self._path, encoding="utf-8") as f:
          raise self._held(f.read().strip()) from None
      raise
    if self._write_pid:
      os.ftruncate(fd, 0)
      os.write(fd, f"pid {os.getpid()}".encode())
    self._fd = fd
    return self

  def __exit__(self, *exc) -> None:
    if self._fd is not None:
      fcntl.flock(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None
