"""Which Beam runner a data job runs on, and the pipeline options handed to it.

`BeamConfig` is what the jobs' `--runner` and `--beam_pipeline_args` flags build: an empty
runner means the local job. The options are Beam's own command line (`PipelineOptions`), so
any runner's settings pass through unchanged, e.g. Dataflow's `--project`, `--region` and
`--temp_location`, Flink's `--flink_master`, or the DirectRunner's `--direct_num_workers`.
"""

import dataclasses
import shlex
from typing import List

from kaml_tf import configs

INSTALL_HINT = "pip install kaml-tf[beam]"


@dataclasses.dataclass(frozen=True)
class BeamConfig:
  """How to run a data job on Beam, each field's help in its metadata (`configs.field`)."""

  runner: str = configs.field(
    "",
    "Run the job as an Apache Beam pipeline on this runner (DirectRunner, DataflowRunner, "
    "FlinkRunner, SparkRunner, PortableRunner); empty: the local job. Needs "
    f"`{INSTALL_HINT}`.",
  )
  beam_pipeline_args: str = configs.field(
    "",
    "Beam pipeline options for --runner, space-separated as on Beam's own command line, e.g. "
    "'--direct_num_workers=2 --direct_running_mode=multi_threading' or Dataflow's "
    "'--project=P --region=R --temp_location=gs://B/tmp'.",
  )

  def __post_init__(self):
    if self.beam_pipeline_args and not self.runner:
      raise configs.ConfigError.of(
        BeamConfig, "beam_pipeline_args", "needs --runner (without it the local job runs)"
      )
    if any(a.startswith("--runner") for a in self.args()):
      raise configs.ConfigError.of(
        BeamConfig, "beam_pipeline_args", "must not set the runner: give it as --runner"
      )

  @property
  def enabled(self) -> bool:
    """Whether the job runs on Beam."""
    return bool(self.runner)

  def args(self) -> List[str]:
    """The pipeline arguments, split as a shell would."""
    return shlex.split(self.beam_pipeline_args)


def require_beam():
  """The `apache_beam` module; a `ConfigError` on `--runner` saying how to install it."""
  try:
    import apache_beam  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise configs.ConfigError.of(
      BeamConfig, "runner", f"needs Apache Beam, which is not installed: {INSTALL_HINT} ({e})"
    ) from None
  return apache_beam


def pipeline_options(config: BeamConfig):
  """Beam's `PipelineOptions` of `config` (the runner and every pipeline argument)."""
  beam = require_beam()
  return beam.options.pipeline_options.PipelineOptions(
    config.args() + [f"--runner={config.runner}"]
  )
