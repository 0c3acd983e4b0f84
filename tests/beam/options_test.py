"""The Beam settings: checks naming the flag, the install hint, the options handed to Beam."""

import sys

import pytest

from kaml_tf import configs
from kaml_tf.beam import options


@pytest.mark.parametrize(
  "runner, args, message",
  [
    ("", "--direct_num_workers=2", "^beam_pipeline_args: needs --runner"),
    ("DirectRunner", "--runner=FlinkRunner", "^beam_pipeline_args: must not set the runner"),
  ],
)
def test_invalid_settings_name_the_flag(runner, args, message):
  with pytest.raises(configs.ConfigError, match=message):
    options.BeamConfig(runner, args)


def test_options_carry_the_runner_and_every_argument():
  config = options.BeamConfig(
    "DirectRunner", "--direct_num_workers=2 --job_name='a b' --experiments=x,y"
  )
  assert config.enabled and not options.BeamConfig().enabled
  got = options.pipeline_options(config).get_all_options()
  assert (got["runner"], got["direct_num_workers"], got["job_name"]) == ("DirectRunner", 2, "a b")
  assert got["experiments"] == ["x", "y"]  # Beam splits its own list options


def test_a_runner_without_beam_installed_says_how_to_install_it(monkeypatch):
  # A None entry makes `import apache_beam` raise ImportError, as without the package.
  monkeypatch.setitem(sys.modules, "apache_beam", None)
  with pytest.raises(configs.ConfigError, match=r"^runner: .*pip install kaml-tf\[beam\]"):
    options.require_beam()
