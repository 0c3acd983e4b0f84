"""production.json: which model serves, from which day, as which exported version."""

import dataclasses
import json
import os
from typing import Optional

from kaml_tf import atomic


@dataclasses.dataclass(frozen=True)
class Production:
  """The current production model.

  Attributes:
    model_dir: Its model directory (the candidate directory of the day it was trained).
    day: The run day that promoted it.
    version: Its SavedModel version under exports_root.
    export: The path of that version's folder.
  """

  model_dir: str
  day: int
  version: int
  export: str


def read(path: str) -> Optional[Production]:
  """The production of `path` (production.json), or None when nothing was promoted yet."""
  if not os.path.exists(path):
    return None
  with open(path, encoding="utf-8") as f:
    return Production(**json.load(f))


def write(path: str, production: Production) -> None:
  """Writes production.json atomically: readers see the old or the new model, never half."""
  atomic.write_text(path, json.dumps(dataclasses.asdict(production), indent=2) + "\n")
