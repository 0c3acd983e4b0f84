"""The run day's lock: a second loop for the same day refuses instead of racing the first."""

from kaml_tf import file_lock


class DayLockedError(RuntimeError):
  """Another loop holds the day's lock."""


class DayLock(file_lock.FileLock):
  """`file_lock.FileLock` on the day's lock file, never written: taking it on a rerun of a
  finished day changes no file (the trainer's own lock on the model directory is another)."""

  def __init__(self, path: str):
    super().__init__(path, self._refusal)

  def _refusal(self, holder: str) -> DayLockedError:
    del holder  # Never written.
    return DayLockedError(
      f"{self.path} is held by another daily loop for the same day; refusing to run a "
      "second one (wait for it to finish)"
    )
