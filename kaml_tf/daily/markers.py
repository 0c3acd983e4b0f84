"""Step markers: a finished step's result, written atomically, read instead of rerunning it."""

import json
import os
from typing import Any, Callable, Dict

from kaml_tf import atomic


def path(steps_dir: str, step: str) -> str:
  return os.path.join(steps_dir, f"{step}.json")


def once(steps_dir: str, step: str, run: Callable[[], Dict[str, Any]]) -> Dict[str, Any]:
  """The saved result of `step`, or `run()`'s, saved as the step's marker.

  The marker is written after `run` returns, so a step killed midway runs again: each step
  must be safe to repeat (its outputs are atomic, or resumed as training is).
  """
  marker = path(steps_dir, step)
  if os.path.exists(marker):
    with open(marker, encoding="utf-8") as f:
      return json.load(f)
  result = run()
  os.makedirs(steps_dir, exist_ok=True)
  atomic.write_text(marker, json.dumps(result, indent=2, sort_keys=True) + "\n")
  return result
