"""Tests for kaml_tf.atomic: nothing half-written is ever visible at the destination."""

import os

import kaml_tf  # noqa: F401
import pytest
import tensorflow as tf

from kaml_tf import atomic


def test_write_text_replaces_whole_file(tmp_path):
  path = str(tmp_path / "out.json")
  atomic.write_text(path, "one")
  atomic.write_text(path, "two")
  assert open(path).read() == "two"
  assert os.listdir(tmp_path) == ["out.json"]


def test_atomic_path_failure_keeps_old_content(tmp_path):
  path = str(tmp_path / "out.txt")
  atomic.write_text(path, "old")
  with pytest.raises(ValueError):
    with atomic.atomic_path(path) as tmp:
      open(tmp, "w").write("half")
      raise ValueError("killed")
  assert open(path).read() == "old"
  assert os.listdir(tmp_path) == ["out.txt"]


def test_atomic_directory(tmp_path):
  final = str(tmp_path / "export" / "7")
  with atomic.atomic_directory(final) as tmp:
    open(os.path.join(tmp, "saved_model.pb"), "w").write("x")
    assert not os.path.exists(final)
  assert os.listdir(final) == ["saved_model.pb"]
  with pytest.raises(FileExistsError, match="already exists"):
    with atomic.atomic_directory(final):
      pass


def test_atomic_directory_failure_leaves_nothing(tmp_path):
  with pytest.raises(RuntimeError):
    with atomic.atomic_directory(str(tmp_path / "v1")) as tmp:
      open(os.path.join(tmp, "partial"), "w").write("x")
      raise RuntimeError("killed")
  assert os.listdir(tmp_path) == []


def test_published_files_get_umask_mode(tmp_path):
  old = os.umask(0o022)
  try:
    path = str(tmp_path / "out.txt")
    atomic.write_text(path, "x")
    assert os.stat(path).st_mode & 0o777 == 0o644
    with atomic.atomic_directory(str(tmp_path / "v")):
      pass
    assert os.stat(tmp_path / "v").st_mode & 0o777 == 0o755
  finally:
    os.umask(old)


def _tree(path):
  """{relative file path: content} of a tf.io.gfile tree."""
  out = {}
  for folder, _, files in tf.io.gfile.walk(path):
    for name in files:
      with tf.io.gfile.GFile(f"{folder}/{name}", "rb") as f:
        out[f"{folder}/{name}"[len(path) + 1 :]] = f.read()
  return out


def _fill(tmp):
  tf.io.gfile.makedirs(f"{tmp}/variables")
  for name, data in (("variables/v.index", b"i"), ("saved_model.pb", b"pb"), ("a.txt", b"a")):
    with tf.io.gfile.GFile(f"{tmp}/{name}", "wb") as f:
      f.write(data)


def test_atomic_directory_on_an_object_store_copies_the_commit_file_last(monkeypatch):
  """ram:// cannot rename a folder at once: the tree is copied, saved_model.pb last, and the
  hidden temporary folder removed."""
  base = "ram://atomic_test/copy"
  copied = []
  real_copy = tf.io.gfile.copy
  monkeypatch.setattr(tf.io.gfile, "copy", lambda a, b: copied.append(b) or real_copy(a, b))
  assert not atomic.renames_atomically(f"{base}/7")
  with atomic.atomic_directory(f"{base}/7", commit_last=("saved_model.pb",)) as tmp:
    assert tmp.startswith(f"{base}/.7.tmp-")
    _fill(tmp)
  assert _tree(f"{base}/7") == {"variables/v.index": b"i", "saved_model.pb": b"pb", "a.txt": b"a"}
  assert copied[-1] == f"{base}/7/saved_model.pb" and len(copied) == 3
  assert tf.io.gfile.listdir(base) == ["7"]
  with pytest.raises(FileExistsError, match="already exists"):
    with atomic.atomic_directory(f"{base}/7"):
      pass


def test_atomic_directory_on_an_object_store_failure_leaves_nothing(monkeypatch):
  base = "ram://atomic_test/fail"
  with pytest.raises(RuntimeError):
    with atomic.atomic_directory(f"{base}/1") as tmp:
      _fill(tmp)
      raise RuntimeError("killed")
  # A copy that fails half-way removes the partial version too.
  real_copy = tf.io.gfile.copy

  def fail_on_commit(a, b, overwrite=False):
    if b.endswith("saved_model.pb"):
      raise tf.errors.UnavailableError(None, None, "connection lost")
    real_copy(a, b, overwrite)

  monkeypatch.setattr(tf.io.gfile, "copy", fail_on_commit)
  with pytest.raises(tf.errors.UnavailableError):
    with atomic.atomic_directory(f"{base}/2", commit_last=("saved_model.pb",)) as tmp:
      _fill(tmp)
  assert not tf.io.gfile.exists(base) or tf.io.gfile.listdir(base) == []


def test_local_directories_are_renamed(tmp_path, monkeypatch):
  renamed = []
  real_rename = tf.io.gfile.rename
  monkeypatch.setattr(
    tf.io.gfile, "rename", lambda a, b, overwrite=False: renamed.append(b) or real_rename(a, b)
  )
  final = str(tmp_path / "5")
  assert atomic.renames_atomically(final) and atomic.renames_atomically("hdfs://nn/x/5")
  with atomic.atomic_directory(final) as tmp:
    _fill(tmp)
  assert renamed == [final]
  assert sorted(_tree(final)) == ["a.txt", "saved_model.pb", "variables/v.index"]


@pytest.mark.parametrize(
  "path, scheme", [("/a/b", ""), ("gs://b/x", "gs"), ("S3://b/x", "s3"), ("ram://x", "ram")]
)
def test_scheme(path, scheme):
  assert atomic.scheme(path) == scheme
