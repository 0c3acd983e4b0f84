r"""Computes the ad-task conversion statistics that ADM thresholds (paper eq. 8).

  python -m pipelines.compute_stats --logs='DIR/train-*' --schema=DIR/schema.json \
      --window_days=28 [--end_day=D] [--as_of=end|daily] --output=DIR/stats.parquet

`--as_of=end` (default, static): for each ad task with a click in the window of
`--window_days` days ending at `--end_day` (default: the last day in the logs), writes its
click count and its number of reported conversions of every action to one Parquet file
(atomically), with the window, the action names and the schema fingerprint in its metadata.
`--as_of=daily` (point in time): one row per (ad task, day d) for every day d from the first
log day to the day after the last one (`--end_day` + 1), counting days d - T .. d - 1 only,
never day d itself (`kaml_tf.data.stats`); `pipelines.train` joins them on (ad task, day).
Logs may be TFRecord (`.tfrecord[.gz]`) or Parquet (`.parquet`, same fields). Rows read are
shown on stderr as the job streams the logs.

The `--logs`, `--schema`, window and output flags are shared with `pipelines.mask_report` and
`pipelines.benchmark`, which import this module.
"""

import sys
import time
from typing import Optional, TextIO

from absl import app
from absl import flags
from absl import logging

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
from kaml_tf import schema as schema_lib
from kaml_tf.data import stats as stats_lib
from pipelines import common

# Other entry points define some of these names too, with the same type and meaning; absl only
# accepts a second definition (the test suite imports every pipeline into one process) when
# one side allows the override.
LOGS = flags.DEFINE_string(
  "logs",
  None,
  "Log files: glob, comma-separated globs; TFRecord (.tfrecord, .gz) or Parquet (.parquet).",
  allow_override=True,
)
SCHEMA = flags.DEFINE_string("schema", None, "The logs' schema.json.", allow_override=True)
WINDOW_DAYS = flags.DEFINE_integer(
  "window_days",
  28,
  "Statistics window T in days (the paper's four weeks by default).",
  allow_override=True,
)
END_DAY = flags.DEFINE_integer(
  "end_day",
  None,
  "Last day D of the window (inclusive); default: the last day in the logs.",
  allow_override=True,
)
OUTPUT = flags.DEFINE_string(
  "output", None, "Output file, written atomically.", allow_override=True
)
READ_BATCH_SIZE = flags.DEFINE_integer(
  "read_batch_size", 65536, "Log records per read batch.", allow_override=True
)
SKIP_BAD_RECORDS = common.define_skip_bad_records()
AS_OF = flags.DEFINE_enum(
  "as_of",
  stats_lib.END,
  list(stats_lib.AS_OF),
  "end: one static window ending at --end_day; daily: for every day d, "
  "the counts of days d-T..d-1 (point in time, never day d itself).",
  allow_override=True,
)


class RowProgress:
  """Shows the number of records read: one rewritten line on a terminal, else periodic lines."""

  def __init__(
    self, label: str, stream: Optional[TextIO] = None, every_seconds: Optional[float] = None
  ):
    self._label = label
    self._stream = stream or sys.stderr
    self._tty = getattr(self._stream, "isatty", lambda: False)()
    if every_seconds is None:
      # A log file gets a line every 10 s rather than a rewritten line every second.
      every_seconds = 1.0 if self._tty else 10.0
    self._every = every_seconds
    self._start = time.monotonic()
    self._last = 0.0
    self.rows = 0

  def _line(self) -> str:
    elapsed = max(time.monotonic() - self._start, 1e-9)
    return f"{self._label}: {self.rows:,} rows read ({self.rows / elapsed:,.0f} rows/s)"

  def __call__(self, rows: int) -> None:
    self.rows = rows
    now = time.monotonic()
    if now - self._last >= self._every:
      self._last = now
      self._stream.write(("\r" + self._line()) if self._tty else (self._line() + "\n"))
      self._stream.flush()

  def done(self) -> None:
    self._stream.write(("\r" if self._tty else "") + self._line() + " done\n")
    self._stream.flush()


def required(flag: flags.FlagHolder) -> str:
  """The value of a string flag that this job needs; a usage error naming it otherwise."""
  if not flag.value:
    raise app.UsageError(f"--{flag.name} is required")
  return flag.value


def stats_config_from_flags() -> stats_lib.StatsConfig:
  try:
    return stats_lib.StatsConfig(
      window_days=WINDOW_DAYS.value,
      end_day=END_DAY.value,
      read_batch_size=READ_BATCH_SIZE.value,
      skip_bad_records=SKIP_BAD_RECORDS.value,
      as_of=AS_OF.value,
    )
  except ValueError as e:
    raise app.UsageError(f"--{e}") from None


def load_schema() -> schema_lib.Schema:
  return schema_lib.Schema.load(required(SCHEMA))


def compute_from_flags(schema: schema_lib.Schema) -> stats_lib.ConversionStats:
  """Runs the statistics job on `--logs` with the window flags, showing progress."""
  config = stats_config_from_flags()
  progress = RowProgress("compute_stats")
  stats = stats_lib.compute_stats(required(LOGS), schema, config, progress=progress)
  progress.done()
  if stats.is_daily:
    logging.info(
      "daily statistics of %d ad tasks (%d (task, day) rows, window %d days) for "
      "days %d-%d from %d records",
      stats.num_ad_tasks,
      stats.num_rows,
      stats.window_days,
      stats.window_start,
      stats.window_end,
      stats.rows_read,
    )
  else:
    logging.info(
      "statistics of %d ad tasks over days %d-%d from %d records",
      stats.num_ad_tasks,
      stats.window_start,
      stats.window_end,
      stats.rows_read,
    )
  return stats


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  output = required(OUTPUT)
  required(LOGS)
  stats = compute_from_flags(load_schema())
  stats.save(output)
  logging.info("wrote %s", output)


if __name__ == "__main__":
  app.run(main)
