"""Helpers shared by the job entry points: logging set-up and list-valued flags."""

import logging
import sys
from typing import Optional, Sequence, Tuple

from absl import flags


def setup_logging() -> None:
  """INFO-level logs on stderr with a timestamp, once per process."""
  logging.basicConfig(
    level=logging.INFO,
    stream=sys.stderr,
    format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    force=True,
  )


def floats(values: Optional[Sequence[str]], flag: str) -> Tuple[float, ...]:
  """Parses a list flag into floats; errors name the flag."""
  try:
    return tuple(float(v) for v in values or ())
  except ValueError:
    raise flags.ValidationError(f"--{flag}: expected numbers, got {list(values)}") from None


def ints(values: Optional[Sequence[str]], flag: str) -> Tuple[int, ...]:
  """Parses a list flag into ints; errors name the flag."""
  try:
    return tuple(int(v) for v in values or ())
  except ValueError:
    raise flags.ValidationError(f"--{flag}: expected integers, got {list(values)}") from None


SKIP_BAD_RECORDS_HELP = (
  "Skip malformed log records (bad CRC or truncation, missing or mistyped fields, labels "
  "outside {0, 1}, targets outside [-1, N), NaN or infinite dense values, empty files), "
  "count them, log the total at the end and write it to the job's output metadata. "
  "Default: fail on the first one with an error naming its file, record and field."
)


def define_skip_bad_records() -> flags.FlagHolder:
  """The `--skip_bad_records` flag, shared by every job that reads logs."""
  return flags.DEFINE_bool("skip_bad_records", False, SKIP_BAD_RECORDS_HELP, allow_override=True)


def define_checkpoint() -> flags.FlagHolder:
  """The `--checkpoint=best|latest` flag of the jobs that restore a trained model."""
  return flags.DEFINE_enum(
    "checkpoint",
    "best",
    ["best", "latest"],
    "Which checkpoint of --model_dir: best (the "
    "best on validation, kept in MODEL_DIR/best/; the latest if the run kept none) or "
    "latest.",
    allow_override=True,
  )
