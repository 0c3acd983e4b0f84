"""Settings of the benchmark sections: one frozen dataclass, one field per command-line flag.

Every field carries its help text in `metadata["help"]` (and `metadata["choices"]` for an enum),
the shape a flag generator reads; `pipelines.benchmark` turns its flags into a
`BenchmarkConfig` and hands it to the sections (in this process or pickled to a child), which
never read flags themselves. A wrong setting is a `ConfigError` naming its flag.
"""

import dataclasses
from typing import Optional, Tuple

from kaml_tf import configs
from kaml_tf.beam import options as beam_options
from kaml_tf.data import masks
from kaml_tf.data import stats as stats_lib


class ConfigError(ValueError):
  """A missing or wrong setting; the message names the flag, `flag` holds its name.

  Picklable (its `args` are its constructor's), so a child process can hand it back as is.
  """

  def __init__(self, message: str, flag: str):
    super().__init__(message, flag)
    self.message = message
    self.flag = flag

  def __str__(self) -> str:
    return self.message


# The beam section's runner options when --beam_pipeline_args is empty: two worker threads.
BEAM_DEFAULT_ARGS = "--direct_num_workers=2 --direct_running_mode=multi_threading"

# Lower bounds of the integer settings; a setting missing here takes any value of its type.
_MINIMUM = {
  "window_days": 1,
  "read_batch_size": 1,
  "batch_size": 1,
  "turns": 1,
  "steps": 1,
  "max_batches": 0,
  "throughput_steps": 1,
  "throughput_warmup_steps": 1,
  "shuffle_buffer": 0,
  "stage_batches": 1,
  "serving_records": 1,
  "serving_iterations": 1,
  "multivalued_rows": 1,
  "multivalued_tags": 2,
  "lookup_keys": 1,
}


@dataclasses.dataclass(frozen=True)
class BenchmarkConfig:
  """What the sections read and how long they time it (help texts in the field metadata)."""

  logs: Optional[str] = configs.field(
    None,
    "Log files: glob, comma-separated globs; TFRecord (.tfrecord, .gz) or Parquet (.parquet).",
  )
  schema: Optional[str] = configs.field(None, "The logs' schema.json.")
  stats: str = configs.field(
    "", "Conversion statistics from pipelines.compute_stats; empty: computed from --logs."
  )
  alpha: Tuple[int, ...] = configs.field(
    (), "ADM thresholds, one integer per action (default: kaml_tf.data.masks.default_alpha)."
  )
  window_days: int = configs.field(
    28, "Statistics window T in days (the paper's four weeks by default)."
  )
  end_day: Optional[int] = configs.field(
    None, "Last day D of the window (inclusive); default: the last day in the logs."
  )
  read_batch_size: int = configs.field(65536, "Log records per read batch.")
  skip_bad_records: bool = configs.field(
    False,
    "Skip malformed log records (bad CRC or truncation, missing or mistyped fields, labels "
    "outside {0, 1}, targets outside [-1, N), NaN or infinite dense values, empty files), "
    "count them, log the total at the end and write it to the job's output metadata. "
    "Default: fail on the first one with an error naming its file, record and field.",
  )
  as_of: str = configs.field(
    stats_lib.END,
    "end: one static window ending at --end_day; daily: for every day d, "
    "the counts of days d-T..d-1 (point in time, never day d itself).",
    choices=tuple(stats_lib.AS_OF),
  )
  lookup_keys: int = configs.field(
    1_000_000,
    "Keys of the statistics joins built by the lookup_memory section: ad tasks (static) and "
    "(ad task, day) rows (daily, --window_days per task).",
  )
  batch_size: int = configs.field(5000, "Global batch size.")
  input_mask: str = configs.field(
    masks.ADM, "Mask policy of the input pipeline benchmarked.", choices=tuple(masks.POLICIES)
  )
  turns: int = configs.field(
    3, "Timed turns of each section: passes of each input pipeline, turns of each model."
  )
  steps: int = configs.field(10, "Steps per timed turn of the train_step and determinism sections.")
  max_batches: int = configs.field(0, "Batches per timed pass (0: every batch of the logs).")
  throughput_steps: int = configs.field(
    20,
    "Timed steps per turn of the train_throughput and peer sections (per epoch of the "
    "distributed section).",
  )
  throughput_warmup_steps: int = configs.field(
    3, "Untimed steps at the start of every turn (iterator start-up)."
  )
  shuffle_buffer: int = configs.field(
    100_000, "Shuffle buffer of the pipeline runners (the trainer's default)."
  )
  stage_batches: int = configs.field(40, "Timed batches per turn of each input_stages stage.")
  parquet_logs: Optional[str] = configs.field(
    None,
    "The records of --logs as Parquet logs (pipelines.convert_logs): "
    "the train_throughput and peer sections then also time both models reading them "
    "(runners named *_parquet), and the stats section the statistics job.",
  )
  export_dir: Optional[str] = configs.field(
    None, "Version folder of an export (export.export_model), timed by the serving section."
  )
  serving_records: int = configs.field(
    256, "Log records fed to the serving section (repeated up to each batch size)."
  )
  serving_batch_sizes: Tuple[int, ...] = configs.field((1, 256), "Rows per serving call.")
  multivalued_rows: int = configs.field(
    60_000, "Simulated rows of the multivalued section (each of its two logs)."
  )
  multivalued_tags: int = configs.field(
    5, "Most interest tags per user in the multivalued section's logs (>= 2)."
  )
  serving_iterations: int = configs.field(200, "Timed calls per signature and batch size.")
  runner: str = configs.field(
    "", "Beam runner of the data jobs (the beam section: DirectRunner when empty)."
  )
  beam_pipeline_args: str = configs.field(
    "",
    f"Beam pipeline options (the beam section, when empty: '{BEAM_DEFAULT_ARGS}').",
  )

  def __post_init__(self):
    for name, minimum in _MINIMUM.items():
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"--{name} must be an integer >= {minimum}, got {value!r}", name)
    for name in ("as_of", "input_mask"):
      choices = _choices(name)
      if getattr(self, name) not in choices:
        raise ConfigError(
          f"--{name} must be one of {list(choices)}, got {getattr(self, name)!r}", name
        )
    if not self.serving_batch_sizes or min(self.serving_batch_sizes) < 1:
      raise ConfigError(
        f"--serving_batch_sizes: expected integers >= 1, got {list(self.serving_batch_sizes)}",
        "serving_batch_sizes",
      )

  def required(self, name: str, section: str) -> str:
    """The value of a path setting `section` needs; a `ConfigError` naming it when empty."""
    value = getattr(self, name)
    if not value:
      raise ConfigError(f"--{name} is required by the {section} section", name)
    return value

  def beam_config(self) -> beam_options.BeamConfig:
    """The runner of the beam section: `--runner`, by default the DirectRunner."""
    if not self.runner:
      return beam_options.BeamConfig("DirectRunner", self.beam_pipeline_args or BEAM_DEFAULT_ARGS)
    return beam_options.BeamConfig(self.runner, self.beam_pipeline_args)

  def stats_config(self) -> stats_lib.StatsConfig:
    """The statistics job's settings (window, read batch, bad records, as-of)."""
    return stats_lib.StatsConfig(
      window_days=self.window_days,
      end_day=self.end_day,
      read_batch_size=self.read_batch_size,
      skip_bad_records=self.skip_bad_records,
      as_of=self.as_of,
    )


def _choices(name: str) -> Tuple[str, ...]:
  return {f.name: f for f in dataclasses.fields(BenchmarkConfig)}[name].metadata["choices"]
