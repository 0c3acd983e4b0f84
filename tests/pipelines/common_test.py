"""pipelines.common: the shared flags, and one way for every job to fail."""

from absl import app
from absl import flags
import pytest

from kaml_tf import configs
from kaml_tf import schema as schema_lib
from kaml_tf.training import config as config_lib
from pipelines import common


def test_shared_flags_are_defined_once_with_their_fields_defaults():
  assert flags.FLAGS["schema"].default is None
  assert flags.FLAGS["seed"].default == 0
  assert flags.FLAGS["epochs"].default == config_lib.OptimConfig().epochs
  assert flags.FLAGS["shuffle_buffer"].default == config_lib.DataConfig("s", "t").shuffle_buffer
  assert flags.FLAGS["checkpoint"].default == "best"
  assert common.compression_type(common.COMPRESSION) == ""


def test_job_rejects_stray_arguments_and_names_the_flag_of_config_errors():
  @common.job
  def main(argv):
    del argv
    raise config_lib.ConfigError.of(config_lib.OptimConfig, "checkpoint_every_steps", "bad")

  with pytest.raises(app.UsageError, match=r"^unexpected arguments: \['x'\]$"):
    main(["job", "x"])
  with pytest.raises(app.UsageError, match="^--checkpoint_every: bad$"):
    main(["job"])


@pytest.mark.parametrize(
  "error, line",
  [
    (app.UsageError("--x is required"), "FATAL --x is required"),
    (configs.ConfigError("detail", field="seed"), "FATAL --seed: detail"),
    (schema_lib.SchemaError("s.json: no actions"), "FATAL SchemaError: s.json: no actions"),
    (FileNotFoundError("m: no config"), "FATAL FileNotFoundError: m: no config"),
  ],
)
def test_clear_errors_end_the_job_with_one_line_and_code_1(capsys, error, line):
  def main(argv):
    raise error

  with pytest.raises(SystemExit) as exit_info:
    common.exits_cleanly(main)(["job"])
  assert exit_info.value.code == 1
  assert capsys.readouterr().err.splitlines()[0] == line


def test_other_errors_keep_their_traceback():
  def main(argv):
    raise KeyError("bug")

  with pytest.raises(KeyError):
    common.exits_cleanly(main)(["job"])
