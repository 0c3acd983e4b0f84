"""absl flags generated from config dataclasses, and the configs built back from them.

A setting is declared once, as a dataclass field (`kaml_tf.configs.field`): its type, default,
help text, and optionally its flag name (`flag=`) and allowed values (`choices=`). `define(cls)`
turns every field into a flag; `build(cls)` makes the config from the parsed flags, and every
error names the flag (`--name: ...`) as an `app.UsageError`.

Types: bool, int, float and str (with choices: an enum flag), `Optional` of those (default
None), and tuples of int, float or str (comma-separated lists). A field whose type is itself a
config dataclass has its fields defined flat, so `build(RunConfig)` nests them back. A field
without a default is required: its flag defaults to None and `build` asks for it.

One absl flag per setting and process: defining the same dataclass again (two jobs in one
process, as in the tests) reuses its flags, and a field may reuse a flag that
`define(..., shared=True)` made for several jobs (`pipelines.common`) if its type and default
agree; any other second definition of a name fails as absl does.
"""

import dataclasses
import typing
import weakref
from typing import Any, Collection, Dict, List, Optional, Tuple, Type, TypeVar

from absl import app
from absl import flags

from kaml_tf import configs

ConfigT = TypeVar("ConfigT")

# The flags defined here belong to the module that calls `define` (its key flags: what its
# `--help` lists), not to this helper.
flags.disclaim_key_flags()

_SCALARS = (bool, int, float, str)


@dataclasses.dataclass(frozen=True)
class _Setting:
  """One field of a config dataclass and its flag."""

  owner: type
  field: dataclasses.Field
  kind: type  # bool, int, float or str
  is_list: bool
  flag: str

  @property
  def required(self) -> bool:
    return (
      self.field.default is dataclasses.MISSING
      and self.field.default_factory is dataclasses.MISSING
    )

  @property
  def default(self) -> Any:
    """The flag's default: the field's, lists as strings, None when required."""
    if self.required:
      return None
    value = self.field.default
    if value is dataclasses.MISSING:
      value = self.field.default_factory()
    return [str(v) for v in value] if self.is_list else value


def _setting(owner: type, f: dataclasses.Field, hint: Any) -> _Setting:
  """Classifies a field's type hint; TypeError for a type that has no flag form."""
  origin, args = typing.get_origin(hint), typing.get_args(hint)
  optional = origin is typing.Union and len(args) == 2 and type(None) in args
  if optional:
    hint = args[0] if args[1] is type(None) else args[1]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
  is_list = origin is tuple and len(args) == 2 and args[1] is Ellipsis
  kind = args[0] if is_list else hint
  if kind not in _SCALARS or (is_list and (optional or kind is bool)):
    raise TypeError(f"{owner.__name__}.{f.name}: no flag form for type {hint!r}")
  if configs.HELP not in f.metadata:
    raise TypeError(f"{owner.__name__}.{f.name}: needs its help text (configs.field)")
  if configs.CHOICES in f.metadata and (kind is not str or is_list):
    raise TypeError(f"{owner.__name__}.{f.name}: choices need a str field")
  return _Setting(owner, f, kind, is_list, configs.flag_name(f))


def settings(cls: type, skip: Collection[str] = ()) -> List[_Setting]:
  """The flag settings of `cls`'s fields, nested config dataclasses flattened, in order.

  Fields named in `skip` are left out before their type is classified: a field without a
  flag form (a mapping, a value the job computes) may still be skipped.
  """
  out = []
  hints = typing.get_type_hints(cls)
  for f in dataclasses.fields(cls):
    hint = hints[f.name]
    if f.name in skip:
      continue
    if dataclasses.is_dataclass(hint):
      out.extend(settings(hint, skip))
    else:
      out.append(_setting(cls, f, hint))
  return out


def _define_flag(s: _Setting, flag_values: flags.FlagValues) -> flags.FlagHolder:
  kwargs = dict(name=s.flag, default=s.default, help=s.field.metadata[configs.HELP])
  if s.is_list:
    return flags.DEFINE_list(flag_values=flag_values, **kwargs)
  if configs.CHOICES in s.field.metadata:
    return flags.DEFINE_enum(
      enum_values=list(s.field.metadata[configs.CHOICES]), flag_values=flag_values, **kwargs
    )
  define = {
    bool: flags.DEFINE_bool,
    int: flags.DEFINE_integer,
    float: flags.DEFINE_float,
    str: flags.DEFINE_string,
  }[s.kind]
  return define(flag_values=flag_values, **kwargs)


def _check_reuse(s: _Setting, existing: _Setting) -> None:
  """A shared flag serves another field only with the same type, list-ness and default."""
  same = (s.kind, s.is_list, s.default) == (existing.kind, existing.is_list, existing.default)
  if not same:
    raise TypeError(
      f"{s.owner.__name__}.{s.field.name}: --{s.flag} is shared "
      f"({existing.owner.__name__}.{existing.field.name}) as a {existing.kind.__name__}"
      f"{' list' if existing.is_list else ''} with default {existing.default!r}; this field "
      f"is a {s.kind.__name__}{' list' if s.is_list else ''} with default {s.default!r}"
    )


def define(
  cls: type,
  *,
  only: Optional[Collection[str]] = None,
  exclude: Collection[str] = (),
  rename: Optional[Dict[str, str]] = None,
  shared: bool = False,
  flag_values: flags.FlagValues = flags.FLAGS,
) -> Dict[str, flags.FlagHolder]:
  """Defines a flag per field of the dataclass `cls` (see the module docstring).

  Args:
    cls: A config dataclass whose fields carry `metadata["help"]`.
    only: Field names to define (default: every field).
    exclude: Field names to leave out (they keep their defaults in `build`, or take its
      overrides); their types need no flag form.
    rename: Field name -> flag name, for dataclasses whose fields do not say it themselves.
    shared: The flags serve several jobs: fields of other dataclasses may reuse them.
    flag_values: The registry (tests pass their own).

  Returns:
    Flag name -> its holder, for the fields defined or reused.

  Raises:
    TypeError: a field without help or of a type without a flag form, or a shared flag
      whose type or default differs from the field's.
    flags.DuplicateFlagError: the name belongs to an unrelated flag.
  """
  holders = {}
  for s in settings(cls, skip=exclude):
    if only is not None and s.field.name not in only:
      continue
    if rename and s.field.name in rename:
      s = dataclasses.replace(s, flag=rename[s.field.name])
    holders[s.flag] = _define_or_reuse(s, shared, flag_values)
  return holders


def _define_or_reuse(s: _Setting, shared: bool, flag_values: flags.FlagValues):
  registry = _registry(flag_values)
  existing = registry["defined"].get(s.flag)
  if existing is not None and s.flag in flag_values:
    same_field = (existing.owner, existing.field.name) == (s.owner, s.field.name)
    if same_field or s.flag in registry["shared"]:
      _check_reuse(s, existing)
      holder = flags.FlagHolder(flag_values, flag_values[s.flag])
      flags.declare_key_flag(holder, flag_values=flag_values)
      registry["settings"][(s.owner, s.field.name)] = s
      return holder
  holder = _define_flag(s, flag_values)
  registry["defined"][s.flag] = s
  registry["settings"][(s.owner, s.field.name)] = s
  if shared:
    registry["shared"][s.flag] = s
  return holder


# Per FlagValues (FLAGS in jobs, a fresh one in tests), by id with a weak reference that tells
# a reused id from the same registry: flag name -> defining setting, the shared names, and
# (owner class, field name) -> its setting.
_REGISTRIES: Dict[int, Tuple[weakref.ref, Dict[str, Dict]]] = {}


def _registry(flag_values: flags.FlagValues) -> Dict[str, Dict]:
  ref, registry = _REGISTRIES.get(id(flag_values), (None, None))
  if ref is None or ref() is not flag_values:
    registry = {"defined": {}, "shared": {}, "settings": {}}
    _REGISTRIES[id(flag_values)] = (weakref.ref(flag_values), registry)
  return registry


def use(*holders: flags.FlagHolder) -> None:
  """Lists flags defined elsewhere (e.g. `pipelines.common`) in the calling job's `--help`."""
  for holder in holders:
    flags.declare_key_flag(holder)


def required(holder: flags.FlagHolder) -> Any:
  """The value of a flag the job needs; `app.UsageError("--name is required")` otherwise."""
  if holder.value in (None, "", []):
    raise app.UsageError(f"--{holder.name} is required")
  return holder.value


def _parse_list(s: _Setting, values: List[str]) -> Tuple:
  words = [v.strip() for v in values]
  if s.kind is str:
    return tuple(words)
  try:
    return tuple(s.kind(v) for v in words)
  except ValueError:
    expected = "integers" if s.kind is int else "numbers"
    raise app.UsageError(f"--{s.flag}: expected {expected}, got {list(values)}") from None


def _value(s: _Setting, flag_values: flags.FlagValues) -> Any:
  value = flag_values[s.flag].value
  if s.required and (value is None or value == ""):
    raise app.UsageError(f"--{s.flag} is required")
  return _parse_list(s, value or []) if s.is_list else value


def usage_error(
  cls: type, error: ValueError, flag_values: flags.FlagValues = flags.FLAGS
) -> app.UsageError:
  """The `--flag: message` usage error of an invalid `cls` config.

  `configs.ConfigError` names its flag. Configs that still raise a plain ValueError start its
  message with the field name (`kaml_tf.datasets`), which is then mapped to the flag.
  """
  if isinstance(error, configs.ConfigError):
    return app.UsageError(f"--{error.flag}: {error.detail}")
  field, sep, message = str(error).partition(": ")
  known = _registry(flag_values)["settings"]
  if sep and (cls, field) in known:
    return app.UsageError(f"--{known[(cls, field)].flag}: {message}")
  return app.UsageError(str(error))


def build(
  cls: Type[ConfigT], flag_values: flags.FlagValues = flags.FLAGS, **overrides: Any
) -> ConfigT:
  """The config `cls` of the parsed flags; fields without a flag keep their defaults.

  Args:
    cls: A dataclass passed to `define` before.
    flag_values: The registry it was defined in.
    **overrides: Field values that do not come from flags.

  Raises:
    app.UsageError: `--name: ...` for a missing, malformed or invalid value.
  """
  try:
    return _build(cls, flag_values, overrides)
  except ValueError as e:
    raise usage_error(cls, e, flag_values) from None


def _build(cls: type, flag_values: flags.FlagValues, overrides: Dict[str, Any]) -> Any:
  known = _registry(flag_values)["settings"]
  hints = typing.get_type_hints(cls)
  kwargs = {}
  for f in dataclasses.fields(cls):
    if f.name in overrides:
      kwargs[f.name] = overrides[f.name]
    elif dataclasses.is_dataclass(hints[f.name]):
      kwargs[f.name] = _build(hints[f.name], flag_values, {})
    elif (cls, f.name) in known:
      kwargs[f.name] = _value(known[(cls, f.name)], flag_values)
  return cls(**kwargs)
