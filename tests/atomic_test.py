"""Tests for kaml_tf.atomic: nothing half-written is ever visible at the destination."""

import os

import pytest

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
