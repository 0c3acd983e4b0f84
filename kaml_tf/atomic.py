"""Atomic outputs: write to a temporary sibling, then rename, so a killed job leaves no
half-written result at the destination (a rename within one filesystem is atomic).

Files (`atomic_path`, `write_text`, `write_bytes`, `temp_sibling`, `publish`) are local.
Directories (`atomic_directory`) go through `tf.io.gfile`, so any TensorFlow filesystem works:
the local disk, `ram://`, `gs://` (tensorflow-io-gcs-filesystem, a pinned requirement) and
`s3://` / `hdfs://` (tensorflow-io, the optional extra `kaml-tf[io]`, imported on first use by
`ensure_filesystem`). Where a directory rename is atomic (local disk, HDFS) the directory is
published by renaming its hidden temporary sibling. Object stores have no rename (TF renames a
`gs://` or `s3://` folder object by object; `ram://` renames only the folder's own entry), so
there the finished sibling is copied into place, the files named in `commit_last` last, and
then deleted: readers that wait for those files (TF Serving waits for `saved_model.pb`) never
see a partial directory as complete.
"""

import contextlib
import os
import tempfile
import uuid
from typing import Iterator, List, Sequence

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

_TMP_MARK = ".tmp-"
# Schemes whose directory rename is one atomic operation ("" is a local path).
RENAME_SCHEMES = ("", "file", "hdfs", "viewfs")
# Schemes tensorflow-io registers when imported (the `kaml-tf[io]` extra).
IO_SCHEMES = ("s3", "hdfs", "viewfs", "har", "az", "oss")
IO_REQUIREMENT = "tensorflow-io==0.37.1"


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask


def _publish_mode(path: str) -> None:
  """mkstemp creates owner-only files; give them the usual umask-based mode."""
  os.chmod(path, 0o666 & ~_umask())


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


def scheme(path: str) -> str:
  """The filesystem scheme of `path` (`gs` for `gs://b/x`), "" for a local path."""
  head, sep, _ = path.partition("://")
  return head.lower() if sep else ""


def ensure_filesystem(path: str) -> None:
  """Registers the filesystem of `path` with TensorFlow if an optional package provides it.

  Raises:
    ImportError: for an `s3://`, `hdfs://`, ... path without tensorflow-io, saying what to
      install.
  """
  if scheme(path) not in IO_SCHEMES:
    return
  try:
    # pylint: disable=g-import-not-at-top,unused-import
    import tensorflow_io  # noqa: F401  (registers s3, hdfs, ... with tf.io.gfile)
  except ImportError as e:
    raise ImportError(
      f"{path}: the {scheme(path)}:// filesystem needs tensorflow-io "
      f"(`pip install kaml-tf[io]`, or `pip install {IO_REQUIREMENT}`): {e}"
    ) from e


def renames_atomically(path: str) -> bool:
  """Whether a directory at `path` can be published by one atomic rename."""
  return scheme(path) in RENAME_SCHEMES


@contextlib.contextmanager
def atomic_directory(path: str, commit_last: Sequence[str] = ()) -> Iterator[str]:
  """Yields a temporary directory; on success publishes it as `path`, which must not exist.

  On any TensorFlow filesystem (module docstring): a rename where that is atomic, else a
  copy that writes the files named in `commit_last` (base names, e.g. `saved_model.pb`) last.
  On failure nothing is left at `path` or in the temporary directory.

  Args:
    path: The final directory (local path or URL such as `gs://bucket/models/7`).
    commit_last: Base names of the files whose presence marks the directory complete.

  Yields:
    The temporary directory to fill: a hidden sibling of `path` on the same filesystem.

  Raises:
    FileExistsError: if `path` already exists (versions are never overwritten).
    ImportError: if the filesystem needs tensorflow-io and it is not installed.
  """
  ensure_filesystem(path)
  if not scheme(path):
    path = os.path.abspath(path)
  if tf.io.gfile.exists(path):
    raise FileExistsError(f"{path} already exists; refusing to overwrite it")
  folder, base = path.rstrip("/").rsplit("/", 1)
  tmp = f"{folder}/.{base}{_TMP_MARK}{uuid.uuid4().hex[:12]}"
  tf.io.gfile.makedirs(tmp)
  try:
    yield tmp
    if renames_atomically(path):
      tf.io.gfile.rename(tmp, path)
    else:
      _copy_then_commit(tmp, path, commit_last)
  except BaseException:
    _remove(tmp)
    raise
  _remove(tmp)


def _copy_then_commit(source: str, destination: str, commit_last: Sequence[str]) -> None:
  """Copies the files under `source` to `destination`, those named in `commit_last` last.

  A failure removes what was copied, so no partial `destination` stays behind.
  """
  files = sorted(
    _files_under(source),
    key=lambda f: list(commit_last).index(_base(f)) + 1 if _base(f) in commit_last else 0,
  )
  try:
    for f in files:
      target = destination + f[len(source) :]
      tf.io.gfile.makedirs(target.rsplit("/", 1)[0])
      tf.io.gfile.copy(f, target)
  except BaseException:
    _remove(destination)
    raise


def _base(path: str) -> str:
  return path.rsplit("/", 1)[-1]


def _files_under(folder: str) -> List[str]:
  """Every file below `folder`, by glob: `tf.io.gfile.listdir` on `ram://` also returns
  the tails of siblings that share the prefix (`a.extra` listed under `a` as `.extra`)."""
  files = []
  for child in tf.io.gfile.glob(f"{folder}/*"):
    files.extend(_files_under(child) if tf.io.gfile.isdir(child) else [child])
  return files


def _remove(path: str) -> None:
  """Deletes the tree at `path` if it exists, ignoring errors (cleanup only)."""
  with contextlib.suppress(tf.errors.OpError):
    if tf.io.gfile.exists(path):
      tf.io.gfile.rmtree(path)


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
