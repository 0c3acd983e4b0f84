"""What every job shares: the flags several jobs use, and one way to run and to fail.

Flags. A name used by more than one job is defined here, once, with one meaning and default:
the settings of `SharedSettings` below, the Beam runner of the data jobs (`--runner`,
`--beam_pipeline_args`; `kaml_tf.beam.options`), those of the training config that other jobs use
too (`--schema`, `--stats`, `--epochs`, ...; help and default from their field in
`kaml_tf.training.config`), and the statistics window and read batch (`--window_days`,
`--read_batch_size`, ...; from `kaml_tf.data.stats.StatsConfig`). A job lists the shared flags
it reads in its `--help` with `dataclass_flags.use`; a config field of the same name reuses
the flag (`dataclass_flags`).

Running. `@common.job` wraps a job's `main`: stray arguments and config errors become usage
errors naming the flag (`--name: ...`), so that tests calling `main` see them too. `common.run`
runs it under absl (`app.run`): absl's logging handler prints every INFO line, the library's
`logging.getLogger(__name__)` ones included, on stderr with a timestamp; and usage errors,
config, schema and the library's other clear errors end the job alike: one `FATAL` line naming
the problem (the flag, or the error class and its message) on stderr, exit code 1, no
traceback.
"""

import dataclasses
import functools
import sys
from typing import Callable, Optional

from absl import app
from absl import flags

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
from kaml_tf import configs
from kaml_tf import schema as schema_lib
from kaml_tf.beam import options as beam_options
from kaml_tf.data import dataset
from kaml_tf.data import masks
from kaml_tf.data import point_in_time
from kaml_tf.data import stats as stats_lib
from kaml_tf.datasets.kuairand import conversion as kuairand_conversion
from kaml_tf.logs import records
from kaml_tf.serving import exporter
from kaml_tf.training import checkpointing
from kaml_tf.training import config as config_lib
from kaml_tf.training import model_dir as model_dir_lib
from kaml_tf.training import trained_model
from pipelines import dataclass_flags

# --compression -> the TFRecord compression type of `tf.io`.
COMPRESSION_TYPES = {"none": "", "gzip": "GZIP"}


@dataclasses.dataclass(frozen=True)
class SharedSettings:
  """Settings several jobs take, beyond the training config's (each field's help)."""

  seed: int = configs.field(
    0,
    "Seed of everything random the job does (initialisation and shuffling when training; "
    "the simulated world; the KuaiRand draws): the same seed gives the same output.",
  )
  model_dir: Optional[str] = configs.field(
    None, "Model directory: written by pipelines.train, read by evaluation and export."
  )
  output_dir: Optional[str] = configs.field(None, "Folder of the job's outputs.")
  output: Optional[str] = configs.field(None, "The job's output file, written atomically.")
  logs: Optional[str] = configs.field(
    None,
    "Log files: glob, comma-separated globs; TFRecord (.tfrecord, .gz) or Parquet (.parquet).",
  )
  test: Optional[str] = configs.field(None, "Glob(s) of test logs (TFRecord or Parquet).")
  checkpoint: str = configs.field(
    trained_model.BEST,
    "Which checkpoint of --model_dir: best (the best on validation, kept in MODEL_DIR/best/; "
    "the latest if the run kept none) or latest.",
    choices=trained_model.CHECKPOINTS,
  )
  export_base: Optional[str] = configs.field(
    None, "Folder of the numeric version folders TF Serving watches."
  )
  model_name: str = configs.field(
    exporter.DEFAULT_MODEL_NAME,
    "The model's name in TF Serving: in the URLs and in the warm-up requests.",
  )
  num_shards: int = configs.field(
    1, "Output files per split (at least one per input pipeline of the training job)."
  )
  compression: str = configs.field(
    "none", "Compression of TFRecord output shards.", choices=tuple(COMPRESSION_TYPES)
  )


_SHARED = dataclass_flags.define(SharedSettings, shared=True)
_TRAINING = dataclass_flags.define(
  config_lib.DataConfig,
  only=("schema_path", "stats_path", "stats_mode", "alpha", "shuffle_buffer", "skip_bad_records"),
  shared=True,
)
_TRAINING.update(
  dataclass_flags.define(
    config_lib.OptimConfig,
    only=(
      "epochs",
      "batch_size",
      "learning_rate",
      "embedding_optimizer",
      "embedding_learning_rate",
      "steps_per_epoch",
    ),
    shared=True,
  )
)
# The statistics window and read batch (help and default from `kaml_tf.data.stats`);
# --skip_bad_records is the training config's flag above.
_STATS = dataclass_flags.define(stats_lib.StatsConfig, exclude=("compaction_rows",), shared=True)
# The Beam runner of the data jobs (compute_stats, mask_report, convert_logs).
_BEAM = dataclass_flags.define(beam_options.BeamConfig, shared=True)

SEED = _SHARED["seed"]
MODEL_DIR = _SHARED["model_dir"]
OUTPUT_DIR = _SHARED["output_dir"]
OUTPUT = _SHARED["output"]
LOGS = _SHARED["logs"]
TEST = _SHARED["test"]
CHECKPOINT = _SHARED["checkpoint"]
EXPORT_BASE = _SHARED["export_base"]
MODEL_NAME = _SHARED["model_name"]
NUM_SHARDS = _SHARED["num_shards"]
COMPRESSION = _SHARED["compression"]
READ_BATCH_SIZE = _STATS["read_batch_size"]
WINDOW_DAYS = _STATS["window_days"]
END_DAY = _STATS["end_day"]
AS_OF = _STATS["as_of"]
SCHEMA = _TRAINING["schema"]
STATS = _TRAINING["stats"]
STATS_MODE = _TRAINING["stats_mode"]
ALPHA = _TRAINING["alpha"]
SHUFFLE_BUFFER = _TRAINING["shuffle_buffer"]
SKIP_BAD_RECORDS = _TRAINING["skip_bad_records"]
EPOCHS = _TRAINING["epochs"]
BATCH_SIZE = _TRAINING["batch_size"]
LEARNING_RATE = _TRAINING["learning_rate"]
STEPS_PER_EPOCH = _TRAINING["steps_per_epoch"]
RUNNER = _BEAM["runner"]
BEAM_PIPELINE_ARGS = _BEAM["beam_pipeline_args"]

# The library's errors whose message says what is wrong and where (a file, a record, a
# field): a job ends on them with the message alone, as on a usage error.
CLEAR_ERRORS = (
  configs.ConfigError,
  schema_lib.SchemaError,
  records.LogError,
  dataset.DatasetError,
  stats_lib.StatsError,
  masks.MaskError,
  point_in_time.StatsModeError,
  model_dir_lib.ModelDirError,
  checkpointing.CheckpointMismatchError,
  kuairand_conversion.ConversionError,
  exporter.ExportError,
  FileNotFoundError,
  FileExistsError,
)


def compression_type(holder: flags.FlagHolder = COMPRESSION) -> str:
  """The `tf.io` compression type ("" or "GZIP") of `--compression`."""
  return COMPRESSION_TYPES[holder.value]


def beam_config() -> beam_options.BeamConfig:
  """`--runner` and `--beam_pipeline_args`; with a runner, Apache Beam must be installed.

  Raises:
    configs.ConfigError: naming the flag (`--runner` when Beam is missing, with the command
      that installs it); `job` makes it a usage error.
  """
  config = dataclass_flags.build(beam_options.BeamConfig)
  if config.enabled:
    beam_options.require_beam()
  return config


def job(main: Callable) -> Callable:
  """Decorates a job's `main(argv)`: stray arguments and config errors are usage errors.

  A `configs.ConfigError` becomes `app.UsageError("--<flag>: <detail>")` from its attributes.
  """

  @functools.wraps(main)
  def checked(argv):
    if len(argv) > 1:
      raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
      return main(argv)
    except configs.ConfigError as e:
      raise app.UsageError(f"--{e.flag}: {e.detail}") from None

  return checked


def exits_cleanly(main: Callable) -> Callable:
  """`main`, with usage errors and `CLEAR_ERRORS` ending the process with one line, code 1.

  The line is `FATAL <message>` on stderr, followed by where to find the flags, like absl's
  own flag parsing errors: `--<flag>: <detail>` for a config error, the usage error's text, or
  `<ErrorClass>: <message>` for the library's errors. Any other exception keeps its traceback.
  """

  @functools.wraps(main)
  def failing_cleanly(argv):
    try:
      return main(argv)
    except (app.UsageError,) + CLEAR_ERRORS as e:
      if isinstance(e, configs.ConfigError):
        message = f"--{e.flag}: {e.detail}"
      elif isinstance(e, app.UsageError):
        message = str(e)
      else:  # Named like the last line of a traceback: what kind of problem, then where.
        message = f"{type(e).__name__}: {e}"
      sys.stderr.write(f"FATAL {message}\nPass --helpshort or --helpfull to see help on flags.\n")
      sys.stderr.flush()
      sys.exit(1)

  return failing_cleanly


def run(main: Callable) -> None:
  """Runs a job's main under absl: parses the flags, logs through absl (INFO and up, with a
  timestamp, on stderr), and fails cleanly (`exits_cleanly`)."""
  app.run(exits_cleanly(main))
