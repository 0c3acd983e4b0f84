"""Peak resident memory of a piece of work, run alone in a fresh child process.

`run_isolated("package.module:function", *args)` starts a child with the `spawn` method (a
fresh interpreter: forking a process that already runs TensorFlow's thread pools is unsafe,
and the child would inherit the parent's pages), calls the function there and returns its
result with the child's peak resident set size, read from `VmHWM` in `/proc/self/status`
(`getrusage(RUSAGE_SELF).ru_maxrss` where there is no /proc). The function is named by a
string and imported in the child (or taken from `__main__` when that is the module, as under
`python -m`), so it need not be picklable; its arguments and result must be.

The child answers on a queue with one record: `("ok", result, peak)`, `("raised", exception,
peak)` for an exception of a type the caller passed as `reraise` (the exception object itself,
pickled: the parent raises it again, same type, message and attributes, so an expected error
such as a usage error needs no parsing), or `("error", traceback text, peak)` for anything else
(raised in the parent as a `ChildError`).
"""

import importlib
import multiprocessing
import os
import pickle
import resource
import sys
import traceback
from typing import Any, Tuple, Type

_STATUS = "/proc/self/status"


class ChildError(RuntimeError):
  """The function raised in the child; the message carries the child's traceback."""


def rss_bytes() -> int:
  """Resident set size of this process now, in bytes (`VmRSS`; 0 where there is no /proc)."""
  return _status_bytes("VmRSS:")


def _status_bytes(key: str) -> int:
  if not os.path.exists(_STATUS):
    return 0
  with open(_STATUS) as f:
    for line in f:
      if line.startswith(key):
        value, unit = line.split()[1:3]
        if unit != "kB":
          raise ValueError(f"{_STATUS}: unexpected {key[:-1]} unit {unit!r}")
        return int(value) * 1024
  return 0


def peak_rss_bytes() -> int:
  """Peak resident set size of this process so far, in bytes."""
  peak = _status_bytes("VmHWM:")
  if peak:
    return peak
  # ru_maxrss is in kilobytes on Linux, bytes on macOS.
  maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return maxrss if sys.platform == "darwin" else maxrss * 1024


def resolve(target: str):
  """The function named `"package.module:function"`."""
  module_name, sep, attr = target.partition(":")
  if not sep or not module_name or not attr:
    raise ValueError(f"target: expected 'package.module:function', got {target!r}")
  # A module run with `python -m` is `__main__` (and `__mp_main__` in a spawned child);
  # importing it again under its own name would run it twice (absl flags defined twice).
  for alias in ("__main__", "__mp_main__"):
    main = sys.modules.get(alias)
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name == module_name:
      return getattr(main, attr)
  return getattr(importlib.import_module(module_name), attr)


def _picklable(value: Any) -> bool:
  try:
    pickle.dumps(value)
  except Exception:  # pylint: disable=broad-except  (any pickling failure means no)
    return False
  return True


def _child(
  target: str, args: Tuple[Any, ...], reraise: Tuple[Type[BaseException], ...], queue
) -> None:
  try:
    result = resolve(target)(*args)
    queue.put(("ok", result, peak_rss_bytes()))
  except BaseException as e:  # pylint: disable=broad-except  (reported to the parent)
    if isinstance(e, reraise) and _picklable(e):
      queue.put(("raised", e, peak_rss_bytes()))
    else:
      text = f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
      queue.put(("error", text, peak_rss_bytes()))


def run_isolated(
  target: str, *args, reraise: Tuple[Type[BaseException], ...] = ()
) -> Tuple[Any, int]:
  """Runs `target(*args)` in a fresh child process.

  Args:
    target: `"package.module:function"`, importable in a fresh interpreter.
    *args: Picklable arguments.
    reraise: Exception types (picklable ones, importable in both processes) that the child
      hands back as they are, to be raised again here.

  Returns:
    `(the function's result, peak resident bytes of the child)`.

  Raises:
    ValueError: for a malformed target name.
    ChildError: if the function raised (with its traceback), or the child died without an
      answer (with its exit code).
    Any type in `reraise`: the child's exception of that type, unchanged.
  """
  resolve(target)  # fails here, in the parent, on a bad name
  context = multiprocessing.get_context("spawn")
  queue = context.SimpleQueue()
  process = context.Process(target=_child, args=(target, args, tuple(reraise), queue))
  process.start()
  # Read before join: a large result fills the pipe and the child would wait forever.
  answer = None
  while answer is None:
    if not queue.empty():
      answer = queue.get()
      break
    process.join(0.1)
    if process.exitcode is not None and queue.empty():
      raise ChildError(
        f"{target}: child process exited with code {process.exitcode} without a result"
      )
  process.join()
  status, value, peak = answer
  if status == "raised":
    raise value
  if status != "ok":
    raise ChildError(f"{target} failed in the child process: {value}")
  return value, peak
