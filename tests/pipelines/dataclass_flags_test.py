"""pipelines.dataclass_flags: absl flags from config dataclasses, and configs back from flags.

Every test defines its flags in a fresh `FlagValues`, so nothing leaks into the jobs' FLAGS.
"""

import dataclasses
from typing import Optional, Tuple

from absl import app
from absl import flags
import pytest

from kaml_tf import configs
from kaml_tf.data import stats as stats_lib
from kaml_tf.logs import conversion as log_conversion
from kaml_tf.models import config as model_config_lib
from kaml_tf.training import config as config_lib
from kaml_tf.tuning import tuner
from pipelines import dataclass_flags


@dataclasses.dataclass(frozen=True)
class _Inner:
  rate: float = configs.field(0.5, "A rate.", flag="inner_rate")


@dataclasses.dataclass(frozen=True)
class _Config:
  path: str = configs.field(help="A required path.", flag="input")
  on: bool = configs.field(False, "A switch.")
  count: int = configs.field(3, "A count.")
  scale: float = configs.field(1.5, "A scale.")
  name: str = configs.field("x", "A name.")
  mode: str = configs.field("fast", "A mode.", choices=("fast", "slow"))
  cap: Optional[int] = configs.field(None, "An optional cap.")
  units: Tuple[int, ...] = configs.field((8, 4), "Widths.")
  weights: Tuple[float, ...] = configs.field((), "Weights.")
  words: Tuple[str, ...] = configs.field(("a",), "Words.")
  inner: _Inner = configs.field(help="Nested.", default_factory=_Inner)

  def __post_init__(self):
    if self.count < 0:
      raise configs.ConfigError.of(_Config, "count", f"must be >= 0, got {self.count}")
    if self.name == "bad":
      # What the datasets' configs raise: a plain ValueError starting with the field.
      raise ValueError(f"path: unusable with name {self.name!r}")


def _parsed(*args, cls=_Config, **define_args):
  flag_values = flags.FlagValues()
  dataclass_flags.define(cls, flag_values=flag_values, **define_args)
  flag_values(["prog", *args])
  return flag_values


def test_every_type_parses_to_the_field_type():
  flag_values = _parsed(
    "--input=p",
    "--on",
    "--count=7",
    "--scale=0.25",
    "--name=y",
    "--mode=slow",
    "--cap=9",
    "--units=16,2",
    "--weights=0.5,1",
    "--words= b ,c",
    "--inner_rate=0.75",
  )
  config = dataclass_flags.build(_Config, flag_values)
  assert config == _Config(
    path="p",
    on=True,
    count=7,
    scale=0.25,
    name="y",
    mode="slow",
    cap=9,
    units=(16, 2),
    weights=(0.5, 1.0),
    words=("b", "c"),
    inner=_Inner(rate=0.75),
  )
  assert isinstance(config.weights[1], float) and isinstance(config.units[0], int)


def test_defaults_are_the_dataclass_defaults():
  flag_values = _parsed("--input=p")
  assert dataclass_flags.build(_Config, flag_values) == _Config(path="p")
  assert flag_values["units"].value == ["8", "4"]
  assert flag_values["cap"].value is None
  assert flag_values["weights"].value == []


def test_help_is_the_field_help_and_renamed_fields_keep_their_flag():
  flag_values = _parsed("--input=p")
  assert flag_values["input"].help == "A required path."
  assert flag_values["inner_rate"].help == "A rate."
  assert "path" not in flag_values and "rate" not in flag_values


def test_choices_make_an_enum_flag():
  flag_values = _parsed("--input=p")
  assert flag_values["mode"].help == "<fast|slow>: A mode."
  with pytest.raises(flags.IllegalFlagValueError, match="value should be one of <fast|slow>"):
    flag_values["mode"].parse("medium")


@pytest.mark.parametrize(
  "arg, message",
  [
    ("--units=8,x", "--units: expected integers, got ['8', 'x']"),
    ("--weights=0.5,y", "--weights: expected numbers, got ['0.5', 'y']"),
  ],
)
def test_list_parsing_errors_name_the_flag(arg, message):
  flag_values = _parsed("--input=p", arg)
  with pytest.raises(app.UsageError) as e:
    dataclass_flags.build(_Config, flag_values)
  assert str(e.value) == message


@pytest.mark.parametrize("args", [(), ("--input=",)])
def test_a_required_field_names_its_flag(args):
  with pytest.raises(app.UsageError, match="^--input is required$"):
    dataclass_flags.build(_Config, _parsed(*args))


def test_config_errors_name_the_flag():
  with pytest.raises(app.UsageError) as e:
    dataclass_flags.build(_Config, _parsed("--input=p", "--count=-1"))
  assert str(e.value) == "--count: must be >= 0, got -1"


def test_plain_value_errors_starting_with_the_field_name_the_flag():
  with pytest.raises(app.UsageError) as e:
    dataclass_flags.build(_Config, _parsed("--input=p", "--name=bad"))
  assert str(e.value) == "--input: unusable with name 'bad'"


def test_rename_overrides_the_flag_name():
  flag_values = _parsed("--path_flag=q", rename={"path": "path_flag"}, exclude=("inner",))
  assert "input" not in flag_values
  assert dataclass_flags.build(_Config, flag_values).path == "q"


def test_only_and_exclude_leave_the_other_fields_at_their_defaults():
  flag_values = _parsed("--input=p", "--count=2", only=("path", "count"))
  assert sorted(flag_values) == ["count", "input"]
  assert dataclass_flags.build(_Config, flag_values) == _Config(path="p", count=2)


def test_overrides_bypass_the_flags():
  config = dataclass_flags.build(_Config, _parsed("--input=p"), count=11)
  assert config.count == 11


def test_defining_the_same_dataclass_twice_reuses_its_flags():
  flag_values = flags.FlagValues()
  first = dataclass_flags.define(_Config, flag_values=flag_values)
  second = dataclass_flags.define(_Config, flag_values=flag_values)
  assert list(first) == list(second)
  assert second["count"].name == "count"


@dataclasses.dataclass(frozen=True)
class _Shared:
  count: int = configs.field(3, "A count every job takes.")


@dataclasses.dataclass(frozen=True)
class _OtherDefault:
  count: int = configs.field(4, "Another count.")


@dataclasses.dataclass(frozen=True)
class _Unrelated:
  scale: float = configs.field(2.0, "Another scale.")


def test_a_shared_flag_serves_a_field_with_the_same_type_and_default():
  flag_values = flags.FlagValues()
  dataclass_flags.define(_Shared, flag_values=flag_values, shared=True)
  dataclass_flags.define(_Config, flag_values=flag_values)
  flag_values(["prog", "--input=p", "--count=5"])
  assert dataclass_flags.build(_Config, flag_values).count == 5
  assert flag_values["count"].help == "A count every job takes."
  with pytest.raises(
    TypeError,
    match=r"--count is shared \(_Shared.count\) as a int with default 3; this field is a int with default 4",
  ):
    dataclass_flags.define(_OtherDefault, flag_values=flag_values)


def test_an_unshared_name_cannot_be_defined_twice():
  flag_values = flags.FlagValues()
  dataclass_flags.define(_Config, flag_values=flag_values)
  with pytest.raises(flags.DuplicateFlagError):
    dataclass_flags.define(_Unrelated, flag_values=flag_values)


def test_fields_without_help_or_flag_form_are_refused():
  @dataclasses.dataclass
  class NoHelp:
    x: int = 1

  @dataclasses.dataclass
  class Mapping:
    x: dict = dataclasses.field(default_factory=dict, metadata={"help": "A map."})

  with pytest.raises(TypeError, match=r"NoHelp.x: needs its help text"):
    dataclass_flags.define(NoHelp, flag_values=flags.FlagValues())
  with pytest.raises(TypeError, match=r"Mapping.x: no flag form for type"):
    dataclass_flags.define(Mapping, flag_values=flags.FlagValues())


def test_excluded_fields_need_no_flag_form():
  @dataclasses.dataclass(frozen=True)
  class WithMapping:
    x: dict = configs.field(help="A map.", default_factory=dict)
    n: int = configs.field(1, "A count.")

  flag_values = _parsed("--n=2", cls=WithMapping, exclude=("x",))
  assert sorted(flag_values) == ["n"]
  assert dataclass_flags.build(WithMapping, flag_values, x={"a": 1}) == WithMapping({"a": 1}, 2)


def test_metadata_help_of_plain_dataclass_fields_is_read():
  @dataclasses.dataclass(frozen=True)
  class Plain:
    seed: int = dataclasses.field(default=5, metadata={"help": "Seed."})

  flag_values = _parsed("--seed=6", cls=Plain)
  assert flag_values["seed"].help == "Seed."
  assert dataclass_flags.build(Plain, flag_values) == Plain(seed=6)


@pytest.mark.parametrize(
  "cls",
  [config_lib.RunConfig, tuner.TuneConfig, stats_lib.StatsConfig, log_conversion.ConversionConfig],
)
def test_job_configs_flag_defaults_and_help_are_their_fields(cls):
  flag_values = flags.FlagValues()
  dataclass_flags.define(cls, flag_values=flag_values)
  for s in dataclass_flags.settings(cls):
    flag = flag_values[s.flag]
    choices = s.field.metadata.get("choices")
    prefix = f"<{'|'.join(choices)}>: " if choices else ""  # absl lists an enum's values
    assert flag.help == prefix + s.field.metadata["help"]
    default = s.field.default if s.field.default is not dataclasses.MISSING else None
    if isinstance(default, tuple):
      assert flag.value == [str(v) for v in default], s.flag
    else:
      assert flag.value == default, s.flag


def test_run_config_flag_names():
  names = [s.flag for s in dataclass_flags.settings(config_lib.RunConfig)]
  assert {"schema", "train", "stats", "mask", "validation", "model", "rank_gamma"} <= set(names)
  assert "checkpoint_every" in names and "checkpoint_every_steps" not in names
  assert len(names) == len(set(names))


def test_run_config_round_trip_from_flags():
  flag_values = flags.FlagValues()
  dataclass_flags.define(config_lib.RunConfig, flag_values=flag_values)
  flag_values(
    ["prog", "--schema=s.json", "--train=t", "--model=ple", "--hke", "--rank_gamma=0.9"]
    + ["--expert_units=16", "--checkpoint_every=10", "--mask=all"]
  )
  config = dataclass_flags.build(config_lib.RunConfig, flag_values)
  assert config == config_lib.RunConfig(
    data=config_lib.DataConfig(schema_path="s.json", train_files="t", mask_policy="all"),
    model=model_config_lib.ModelConfig(backbone="ple", hke=True, expert_units=(16,)),
    loss=config_lib.LossConfig(gamma=0.9),
    optim=config_lib.OptimConfig(checkpoint_every_steps=10),
  )
