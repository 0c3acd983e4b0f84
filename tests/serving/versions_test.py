"""The version manager on real folders, with a fake loader and a fake clock."""

import os
import shutil

import kaml_tf  # noqa: F401
import pytest
import tensorflow as tf

from kaml_tf.serving import versions


class FakeClock:
  def __init__(self):
    self.now = 100.0

  def __call__(self):
    return self.now


def load(path):
  """Loads a version folder once it holds `done` (a stand-in for a complete SavedModel)."""
  if not os.path.exists(os.path.join(path, "done")):
    raise FileNotFoundError(f"{path}: incomplete\nsecond line")
  return "model " + os.path.basename(path)


def add_version(base, version, complete=True):
  os.makedirs(os.path.join(base, str(version)))
  if complete:
    complete_version(base, version)


def complete_version(base, version):
  open(os.path.join(base, str(version), "done"), "w").close()


def states(manager):
  return [(s.version, s.state, s.error_code) for s in manager.statuses()]


@pytest.fixture
def base(tmp_path):
  return str(tmp_path)


@pytest.fixture
def clock():
  return FakeClock()


@pytest.fixture
def manager(base, clock):
  return versions.VersionManager(base, load, retry_seconds=1.0, retry_max_seconds=4.0, clock=clock)


def test_serves_the_newest_and_unloads_the_previous(base, manager):
  assert manager.poll() is None and manager.serving() is None and manager.statuses() == []
  add_version(base, 1)
  add_version(base, 2)
  os.makedirs(os.path.join(base, ".3.tmp"))  # Not a version.
  assert manager.poll() == 2
  assert manager.serving() == (2, "model 2")
  assert states(manager) == [(2, "AVAILABLE", "OK")]  # 1 was never the newest: never loaded.
  add_version(base, 3)
  assert manager.poll() == 3
  assert states(manager) == [(3, "AVAILABLE", "OK"), (2, "END", "OK")]
  assert manager.poll() is None


def test_an_incomplete_version_is_retried_with_a_capped_back_off(base, manager, clock):
  add_version(base, 1)
  manager.poll()
  add_version(base, 2, complete=False)
  waits = []
  for _ in range(5):
    start = clock.now
    assert manager.poll() is None
    status = manager.status(2)
    waits.append(status.retry_at - start)
    assert manager.poll() is None  # Too early: no attempt.
    assert manager.status(2).attempts == status.attempts
    clock.now = status.retry_at
  assert waits == [1.0, 2.0, 4.0, 4.0, 4.0]
  assert manager.serving() == (1, "model 1")
  status = manager.status(2)
  assert (status.state, status.error_code, status.attempts) == ("LOADING", "NOT_FOUND", 5)
  assert status.error_message == f"{os.path.join(base, '2')}: incomplete"
  complete_version(base, 2)
  assert manager.poll() == 2
  assert states(manager) == [(2, "AVAILABLE", "OK"), (1, "END", "OK")]
  assert manager.status(2).error_message == "" and manager.status(2).attempts == 0


def test_a_newer_version_supersedes_a_failing_one(base, manager):
  add_version(base, 1)
  add_version(base, 2, complete=False)
  manager.poll()
  assert states(manager) == [(2, "LOADING", "NOT_FOUND")]
  add_version(base, 3)
  assert manager.poll() == 3
  assert states(manager) == [(3, "AVAILABLE", "OK"), (2, "END", "NOT_FOUND")]
  assert manager.status(2).error_message.endswith("incomplete")


def test_a_deleted_version_is_unloaded_and_the_newest_remaining_served(base, manager):
  add_version(base, 1)
  manager.poll()
  add_version(base, 2)
  manager.poll()
  shutil.rmtree(os.path.join(base, "2"))
  assert manager.poll() == 1
  assert manager.serving() == (1, "model 1")
  assert states(manager) == [(2, "END", "OK"), (1, "AVAILABLE", "OK")]
  shutil.rmtree(os.path.join(base, "1"))
  assert manager.poll() is None
  assert manager.serving() is None
  assert states(manager) == [(2, "END", "OK"), (1, "END", "OK")]


def test_a_missing_export_base_changes_nothing(tmp_path, clock):
  base = str(tmp_path / "base")
  add_version(base, 1)
  manager = versions.VersionManager(base, load, 1.0, 1.0, clock=clock)
  manager.poll()
  shutil.rmtree(base)
  with pytest.raises(FileNotFoundError, match="export base folder not found"):
    manager.poll()
  assert manager.serving() == (1, "model 1")


def test_bad_retry_settings(base):
  with pytest.raises(ValueError, match="retry_seconds: must be > 0 and <= retry_max_seconds"):
    versions.VersionManager(base, load, retry_seconds=2.0, retry_max_seconds=1.0)
  with pytest.raises(ValueError, match="retry_seconds: must be > 0"):
    versions.VersionManager(base, load, retry_seconds=0.0, retry_max_seconds=1.0)


@pytest.mark.parametrize(
  "error, code",
  [
    (tf.errors.NotFoundError(None, None, "x"), "NOT_FOUND"),
    (tf.errors.DataLossError(None, None, "x"), "DATA_LOSS"),
    (tf.errors.InvalidArgumentError(None, None, "x"), "INVALID_ARGUMENT"),
    (tf.errors.OpError(None, None, "x", 99), "UNKNOWN"),
    (FileNotFoundError("x"), "NOT_FOUND"),
    (ValueError("x"), "UNKNOWN"),
  ],
)
def test_error_code(error, code):
  assert versions.error_code(error) == code
