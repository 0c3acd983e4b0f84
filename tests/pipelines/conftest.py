"""Helpers of the tests that run jobs as real processes, freeze them and kill them (SIGKILL).

The fixtures `jobs` and `module_jobs` (fixtures, since a conftest is not importable by name)
start `python -m MODULE` processes from the repository root; waiting is bounded by a timeout
that kills the process by PID, and whatever is still running when the test (or the test
module) ends is killed too.

How a kill lands at a chosen point of a job: SIGKILL is asynchronous, so by the time a poll
has seen a temporary file and the kill arrives, the job may have renamed it into place.
Instead the job is stopped (SIGSTOP) and the condition checked while it is stopped: when it
holds, the job is frozen in exactly the state that was inspected, and SIGKILL kills it there.
`Job.step_until` stops the job every `slice_s` seconds, for points that last much longer
than a slice (a checkpoint's progress, a SavedModel being written). `Job.stop_on_change`
stops it at every change inotify reports in a folder, for points that last about a
millisecond (a small Parquet file being written) and that no timed slice hits reliably on a
loaded machine. Both need Linux (waitid, inotify).
"""

import ctypes
import ctypes.util
import os
import pathlib
import select
import signal
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple, TypeVar

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
T = TypeVar("T")

# <sys/inotify.h>: a file created, written to, or renamed into the watched folder; the flags
# of inotify_init1 are defined as O_NONBLOCK and O_CLOEXEC.
_IN_MODIFY, _IN_MOVED_TO, _IN_CREATE = 0x2, 0x80, 0x100
_IN_NONBLOCK, _IN_CLOEXEC = os.O_NONBLOCK, os.O_CLOEXEC


def argv_of(flag_values: Dict[str, object]) -> List[str]:
  """absl command-line arguments: `--name` for True, `--noname` for False, else `--name=v`."""
  args = []
  for name, value in flag_values.items():
    if value is True:
      args.append(f"--{name}")
    elif value is False:
      args.append(f"--no{name}")
    else:
      args.append(f"--{name}={value}")
  return args


class _Inotify:
  """A non-blocking inotify descriptor watching one folder (libc through ctypes)."""

  def __init__(self, folder: str, mask: int):
    self._libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    self.fd = self._libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
    if self.fd < 0:
      raise OSError(ctypes.get_errno(), "inotify_init1")
    if self._libc.inotify_add_watch(self.fd, os.fsencode(folder), mask) < 0:
      os.close(self.fd)
      raise OSError(ctypes.get_errno(), f"inotify_add_watch {folder}")

  def wait(self, timeout_s: float) -> bool:
    """Waits for events; True if there were some (all pending ones are consumed)."""
    ready, _, _ = select.select([self.fd], [], [], max(timeout_s, 0))
    if not ready:
      return False
    try:
      while os.read(self.fd, 1 << 16):
        pass
    except BlockingIOError:
      pass
    return True

  def close(self) -> None:
    os.close(self.fd)


class Job:
  """One `python -m MODULE` process; its output in `log_dir/name.{out,err}`.

  The output goes to files, not pipes: a frozen or unread process must never block on a full
  pipe, and the files can be read while the process is stopped.
  """

  def __init__(
    self,
    module: str,
    flag_values: Dict[str, object],
    log_dir: pathlib.Path,
    name: str,
    niceness: int = 0,
  ):
    self.name = name
    self.argv = [sys.executable, "-m", module] + argv_of(flag_values)
    self.out_path = log_dir / f"{name}.out"
    self.err_path = log_dir / f"{name}.err"
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
      self.process = subprocess.Popen(
        self.argv,
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=err,
        # A niced job yields the CPU to the test that steps it: on a loaded machine the test
        # then wakes on time to stop it where it means to.
        preexec_fn=(lambda: os.nice(niceness)) if niceness else None,
      )

  @property
  def pid(self) -> int:
    return self.process.pid

  @property
  def returncode(self) -> Optional[int]:
    return self.process.poll()

  def stdout(self) -> str:
    return self.out_path.read_text(errors="replace")

  def stderr(self) -> str:
    return self.err_path.read_text(errors="replace")

  def tail(self) -> str:
    return f"--- {self.name} (exit {self.returncode}) stderr tail:\n{self.stderr()[-3000:]}"

  def wait(self, timeout_s: float) -> int:
    """Waits for the exit; on timeout kills the process (by PID) and fails the test."""
    try:
      return self.process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
      self.kill()
      pytest.fail(f"{self.name} did not finish in {timeout_s} s:\n{self.tail()}")

  def kill(self) -> None:
    """SIGKILL (also works on a stopped process) and reaps it."""
    if self.process.poll() is None:
      os.kill(self.pid, signal.SIGKILL)
    self.process.wait()

  def freeze(self) -> bool:
    """Stops the process (SIGSTOP) and waits until it is stopped.

    Returns:
      False if it has exited instead (left unreaped, for `Popen` to collect).
    """
    try:
      os.kill(self.pid, signal.SIGSTOP)
    except ProcessLookupError:
      return False
    # WNOWAIT: look at the state change without consuming it, so that an exit is still
    # collected by `Popen.wait` with its real status.
    info = os.waitid(os.P_PID, self.pid, os.WSTOPPED | os.WEXITED | os.WNOWAIT)
    return info.si_code == os.CLD_STOPPED

  def resume(self) -> None:
    """Continues a process stopped by `freeze`, `step_until` or `stop_on_change`."""
    os.kill(self.pid, signal.SIGCONT)

  def _fail(self, what: str, timeout_s: float):
    self.kill()
    pytest.fail(f"{self.name}: {what} not reached in {timeout_s} s:\n{self.tail()}")

  def _check_frozen(self, condition: Callable[[], Optional[T]]) -> Tuple[bool, Optional[T]]:
    """Stops the process and checks `condition`: (whether to stop watching, its result).

    The process stays stopped when the watch ends, and runs on otherwise.
    """
    if not self.freeze():
      return True, None
    result = condition()
    if result:
      return True, result
    self.resume()
    return False, None

  def step_until(
    self, condition: Callable[[], Optional[T]], slice_s: float, timeout_s: float
  ) -> Optional[T]:
    """Runs the process in slices of `slice_s` until `condition()` holds while it is stopped.

    Args:
      condition: Called while the process is stopped; a truthy result ends the stepping.
      slice_s: How long the process runs between two checks.
      timeout_s: Wall-time bound; on expiry the process is killed and the test fails.

    Returns:
      The truthy result, with the process left stopped; None if the process exited first.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
      done, result = self._check_frozen(condition)
      if done:
        return result
      time.sleep(slice_s)
    self._fail("condition", timeout_s)

  def stop_on_change(
    self, folder: str, condition: Callable[[], Optional[T]], timeout_s: float
  ) -> Optional[T]:
    """Stops the process at every file created, written or renamed into `folder`.

    The test is blocked on the inotify descriptor and wakes as the event is queued, so the
    process is usually stopped a few system calls after the change, inside a write that
    lasts a millisecond. On a loaded machine a wake-up is sometimes late and the process
    gets further: callers check where it stopped.

    Args:
      folder: An existing folder, watched (not recursively).
      condition: Called while the process is stopped; a truthy result ends the watch.
      timeout_s: Wall-time bound; on expiry the process is killed and the test fails.

    Returns:
      The truthy result, with the process left stopped; None if the process exited first.
    """
    deadline = time.monotonic() + timeout_s
    watch = _Inotify(folder, _IN_CREATE | _IN_MODIFY | _IN_MOVED_TO)
    try:
      while time.monotonic() < deadline:
        # Short waits, so that an exit without any event is noticed.
        if not watch.wait(min(0.5, deadline - time.monotonic())):
          if self.returncode is not None:
            return None
          continue
        done, result = self._check_frozen(condition)
        if done:
          return result
    finally:
      watch.close()
    self._fail("condition", timeout_s)


class Jobs:
  """Starts jobs with their output under `log_dir`; `kill_all` kills those still running."""

  def __init__(self, log_dir: pathlib.Path):
    self._log_dir = log_dir
    self._log_dir.mkdir(parents=True, exist_ok=True)
    self._started: List[Job] = []

  def start(self, module: str, flag_values: Dict[str, object], name: str, niceness: int = 0) -> Job:
    job = Job(module, flag_values, self._log_dir, name, niceness)
    self._started.append(job)
    return job

  def kill_all(self) -> None:
    for job in self._started:
      job.kill()


@pytest.fixture
def jobs(tmp_path):
  """A `Jobs` for one test: whatever it started is killed when the test ends."""
  runner = Jobs(tmp_path / "job_logs")
  yield runner
  runner.kill_all()


@pytest.fixture(scope="module")
def module_jobs(tmp_path_factory):
  """A `Jobs` for the module-scoped fixtures of one test file."""
  runner = Jobs(tmp_path_factory.mktemp("job_logs"))
  yield runner
  runner.kill_all()
