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
shown on stderr as the job streams the logs. With `--runner` (and `--beam_pipeline_args`) the
job runs as an Apache Beam pipeline and writes the same file (`kaml_tf.beam`).

The `--logs`, `--schema`, window and output flags are shared with `pipelines.mask_report` and
other jobs (`pipelines.common`).
"""

import sys
import time
from typing import Optional, TextIO

from absl import logging

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
from kaml_tf import schema as schema_lib
from kaml_tf.data import stats as stats_lib
from pipelines import common
from pipelines import dataclass_flags

dataclass_flags.use(
  common.LOGS, common.SCHEMA, common.OUTPUT, common.RUNNER, common.BEAM_PIPELINE_ARGS
)
# The statistics settings: pipelines.common's shared flags, reused field by field.
dataclass_flags.define(stats_lib.StatsConfig, exclude=("compaction_rows",))


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


def stats_config_from_flags() -> stats_lib.StatsConfig:
  """The `StatsConfig` of the window flags; a usage error naming the flag otherwise."""
  return dataclass_flags.build(stats_lib.StatsConfig)


def load_schema() -> schema_lib.Schema:
  return schema_lib.Schema.load(dataclass_flags.required(common.SCHEMA))


def compute_from_flags(schema: schema_lib.Schema, near: str) -> stats_lib.ConversionStats:
  """Runs the statistics job on `--logs` with the window flags, locally (showing progress)
  or on Beam (`--runner`; `near`: a path the workers can write next to, e.g. the output)."""
  config = stats_config_from_flags()
  beam = common.beam_config()
  logs = dataclass_flags.required(common.LOGS)
  if beam.enabled:
    from kaml_tf.beam import stats as beam_stats  # pylint: disable=g-import-not-at-top

    stats = beam_stats.compute_stats(logs, schema, config, beam, near)
  else:
    progress = RowProgress("compute_stats")
    stats = stats_lib.compute_stats(logs, schema, config, progress=progress)
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


@common.job
def main(argv):
  del argv
  output = dataclass_flags.required(common.OUTPUT)
  dataclass_flags.required(common.LOGS)
  stats = compute_from_flags(load_schema(), output)
  stats.save(output)
  logging.info("wrote %s", output)


if __name__ == "__main__":
  common.run(main)
