"""JSON round trips of the frozen config dataclasses (saved next to every output)."""

import dataclasses
from typing import Any, Dict, Mapping, Type, TypeVar

ConfigT = TypeVar("ConfigT")


def to_dict(config: Any) -> Dict[str, Any]:
  """A JSON-ready dict of a config dataclass (tuples become lists)."""
  return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def from_dict(cls: Type[ConfigT], data: Mapping[str, Any], source: str = "<dict>") -> ConfigT:
  """Builds `cls` from its dict form; unknown fields fail naming `source` and the class.

  Missing fields take their defaults, so files saved before a field existed still load.
  """
  if not isinstance(data, Mapping):
    raise ValueError(
      f"{source}: expected a JSON object for {cls.__name__}, got {type(data).__name__}"
    )
  known = {f.name for f in dataclasses.fields(cls)}
  unknown = sorted(set(data) - known)
  if unknown:
    raise ValueError(
      f"{source}: unknown {cls.__name__} field(s) {unknown}; expected some of {sorted(known)}"
    )
  return cls(**dict(data))
