"""Atomic outputs: write to a temporary sibling, then rename, so a killed job leaves no
half-written result at the destination (a rename within one filesystem is atomic)."""

import contextlib
import os
import shutil
import tempfile
from typing import Iterator

_TMP_MARK = ".tmp-"


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask


def _publish_mode(path: str, directory: bool = False) -> None:
  """mkstemp/mkdtemp create owner-only entries; give them the usual umask-based mode."""
  os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def temp_sibling(path: str) -> str:
  """A fresh, hidden temporary path in the same folder as `path` (same filesystem)."""
  folder, base = os.path.split(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=f".{base}{_TMP_MARK}", dir=folder)
  os.close(fd)
  return tmp


def publish(tmp: str, path: str) -> None:
  """Renames a finished temporary file from `temp_sibling` onto `path`."""
  _publish_mode(tmp)
  os.replace(tmp, path)


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
  """Yields a temporary file path; on success renames it onto `path`, else removes it.

  Args:
    path: The final destination file.

  Yields:
    The temporary path to write to (already exists, empty).
  """
  tmp = temp_sibling(path)
  try:
    yield tmp
    publish(tmp, path)
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.remove(tmp)
    raise


@contextlib.contextmanager
def atomic_directory(path: str) -> Iterator[str]:
  """Yields a temporary directory; on success renames it onto `path`, which must not exist.

  Raises:
    FileExistsError: if `path` already exists (versions are never overwritten).
  """
  if os.path.exists(path):
    raise FileExistsError(f"{path} already exists; refusing to overwrite it")
  folder, base = os.path.split(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=f".{base}{_TMP_MARK}", dir=folder)
  try:
    yield tmp
    _publish_mode(tmp, directory=True)
    os.rename(tmp, path)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise


def write_text(path: str, text: str) -> None:
  """Writes `text` to `path` atomically (UTF-8)."""
  with atomic_path(path) as tmp:
    with open(tmp, "w", encoding="utf-8") as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())


def write_bytes(path: str, data: bytes) -> None:
  """Writes `data` to `path` atomically."""
  with atomic_path(path) as tmp:
    with open(tmp, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
