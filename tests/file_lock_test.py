"""Tests of `kaml_tf.file_lock`: one holder at a time, across processes; released on exit."""

import os
import subprocess
import sys

import pytest

from kaml_tf import file_lock


class Held(RuntimeError):
  pass


def lock(path, **kwargs):
  return file_lock.FileLock(
    str(path), lambda holder: Held(f"held by {holder or 'nobody'}"), **kwargs
  )


def test_a_second_holder_refuses_and_the_lock_is_free_after_exit(tmp_path):
  path = tmp_path / "sub" / "lock"
  with lock(path):
    with pytest.raises(Held, match="held by nobody"):
      with lock(path):
        pass
  with lock(path):
    pass
  assert path.read_text() == ""


def test_write_pid_names_the_holder_and_another_process_refuses(tmp_path):
  path = tmp_path / "lock"
  with lock(path, write_pid=True):
    assert path.read_text() == f"pid {os.getpid()}"
    code = (
      "import sys; from kaml_tf import file_lock\n"
      f"l = file_lock.FileLock({str(path)!r}, lambda h: RuntimeError(h))\n"
      "try:\n  l.__enter__()\nexcept RuntimeError as e:\n  print(e); sys.exit(3)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (done.returncode, done.stdout.strip()) == (3, f"pid {os.getpid()}")


def test_a_killed_holder_leaves_the_lock_free(tmp_path):
  path = tmp_path / "lock"
  code = (
    "import os; from kaml_tf import file_lock\n"
    f"file_lock.FileLock({str(path)!r}, RuntimeError, write_pid=True).__enter__()\n"
    "os._exit(0)\n"
  )
  subprocess.run([sys.executable, "-c", code], check=True)
  with lock(path, write_pid=True):
    assert path.read_text() == f"pid {os.getpid()}"
