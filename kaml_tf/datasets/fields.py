"""Declaring and checking the fields of the dataset configs (simulation, KuaiRand conversion).

Every field carries its help text in `metadata["help"]`: the entry points generate their flags
from it. A check failure is a `ValueError` that starts with the field's name and quotes its
value, so an entry point can name the flag.
"""

import dataclasses
from typing import Any


def field(default: Any, help: str) -> Any:
  """A dataclass field with its help text; `default=dataclasses.MISSING` makes it required."""
  return dataclasses.field(default=default, metadata={"help": help})


def require(config: Any, ok: bool, name: str, what: str) -> None:
  """Raises `ValueError("<name>: <what>, got <value>")` unless `ok`.

  Args:
    config: The config holding the field.
    ok: Whether the field's value is acceptable.
    name: The field's name.
    what: What the value must be, e.g. "must be an integer >= 1".
  """
  if not ok:
    raise ValueError(f"{name}: {what}, got {getattr(config, name)!r}")


def is_int(value: Any) -> bool:
  """An integer that is not a bool (`True` would pass as 1)."""
  return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
  """An int or a float that is not a bool."""
  return isinstance(value, (int, float)) and not isinstance(value, bool)
