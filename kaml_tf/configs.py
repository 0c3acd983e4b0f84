"""Config dataclass helpers: fields that carry their own help, the error naming a field, and
JSON round trips of the frozen configs (saved next to every output).

A setting is declared once, as a dataclass field made by `field`: its default, its help text
and, when the command line calls it something else, its flag name. The entry points turn such
fields into flags (`pipelines.dataclass_flags`); the library only ever sees the dataclasses.
"""

import dataclasses
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Type, TypeVar

ConfigT = TypeVar("ConfigT")

HELP = "help"
FLAG = "flag"
CHOICES = "choices"


def field(
  default: Any = dataclasses.MISSING,
  help: str = "",  # noqa: A002  (the name absl and argparse give it)
  *,
  flag: Optional[str] = None,
  choices: Optional[Sequence[str]] = None,
  default_factory: Callable[[], Any] = dataclasses.MISSING,
) -> Any:
  """A dataclass field whose metadata holds its help text, flag name and allowed values.

  Args:
    default: The default value (leave out for a required field).
    help: What the setting means; also the flag's help.
    flag: The command-line name when it differs from the field name.
    choices: The allowed values of a string setting.
    default_factory: For mutable defaults, as in `dataclasses.field`.

  Returns:
    A `dataclasses.Field` with `metadata` {"help": ..., and "flag" / "choices" when given}.
  """
  if not help:
    raise ValueError("configs.field: every setting needs its help text")
  metadata: Dict[str, Any] = {HELP: help}
  if flag is not None:
    metadata[FLAG] = flag
  if choices is not None:
    metadata[CHOICES] = tuple(choices)
  return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


def flag_name(f: dataclasses.Field) -> str:
  """The command-line name of a config field: its `flag` metadata, else the field name."""
  return f.metadata.get(FLAG, f.name)


def flag_of(cls: type, name: str) -> str:
  """The command-line name of field `name` of the dataclass `cls`."""
  for f in dataclasses.fields(cls):
    if f.name == name:
      return flag_name(f)
  raise KeyError(f"{cls.__name__} has no field {name!r}")


class ConfigError(ValueError):
  """A setting is invalid: `field` names it, `flag` its command-line name (`--flag`), and
  `detail` says what is wrong, so that an entry point reports `--flag: detail`.

  `str(error)` is the message as raised. Three ways to raise one:
    `ConfigError.of(cls, name, detail)`: the message is "<flag>: <detail>";
    `ConfigError(message, field=name)`: a message of its own (the detail is the whole message);
    `ConfigError("name: detail")`: code that writes the field into the message itself.
  """

  def __init__(
    self,
    message: str,
    *,
    field: Optional[str] = None,
    flag: Optional[str] = None,
    detail: Optional[str] = None,
  ):
    if field is None:
      field, sep, detail = message.partition(": ")
      if not sep:
        raise ValueError(f"ConfigError needs field= or a 'name: detail' message, got {message!r}")
    super().__init__(message)
    self.field = field
    self.flag = flag or field
    self.detail = message if detail is None else detail

  @classmethod
  def of(cls, config_cls: type, name: str, detail: str) -> "ConfigError":
    """The error of field `name` of the dataclass `config_cls`: "<flag>: <detail>"."""
    flag = flag_of(config_cls, name)
    return cls(f"{flag}: {detail}", field=name, flag=flag, detail=detail)


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
