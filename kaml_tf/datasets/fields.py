"""Declaring and checking the fields of the dataset configs (simulation, KuaiRand conversion).

Every field is a `kaml_tf.configs.field`, which carries its help text: the entry points generate
their flags from it. A check failure is a `ValueError` that starts with the field's name and quotes its
value, so an entry point can name the flag.
"""

from typing import Any

from kaml_tf import configs

# A dataclass field with its help text; leaving out the default makes it required.
field = configs.field


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
