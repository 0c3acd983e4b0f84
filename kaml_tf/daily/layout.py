"""Where the daily loop reads and writes (the layout of `kaml_tf.daily`'s docstring)."""

import dataclasses
import os
import re
from typing import List

from kaml_tf import schema as schema_lib

PRODUCTION_FILE = "production.json"
STATS_FILE = "stats_daily.parquet"
STEPS_DIR = "steps"
REPORT_JSON = "day_report.json"
REPORT_MD = "day_report.md"
LOCK_FILE = ".daily_lock"
_DAY_FOLDER = re.compile(r"^day=(\d+)$")


def day_folder(logs_root: str, day: int) -> str:
  """logs_root/day=<day>."""
  return os.path.join(logs_root, f"day={day}")


def day_logs(logs_root: str, day: int) -> str:
  """The glob of day `day`'s log files."""
  return os.path.join(day_folder(logs_root, day), "*")


def available_days(logs_root: str) -> List[int]:
  """The days with a day=<D> folder under `logs_root`, sorted."""
  if not os.path.isdir(logs_root):
    return []
  found = (_DAY_FOLDER.match(name) for name in os.listdir(logs_root))
  return sorted(int(m.group(1)) for m in found if m)


def finished_days(models_root: str) -> List[int]:
  """The run days under `models_root` whose loop finished (their day report exists), sorted."""
  if not os.path.isdir(models_root):
    return []
  days = (name for name in os.listdir(models_root) if name.isdigit())
  return sorted(int(d) for d in days if os.path.exists(os.path.join(models_root, d, REPORT_JSON)))


@dataclasses.dataclass(frozen=True)
class DayPaths:
  """The files of one run day under `models_root`."""

  models_root: str
  day: int

  @property
  def model_dir(self) -> str:
    return os.path.join(self.models_root, str(self.day))

  @property
  def stats(self) -> str:
    return os.path.join(self.model_dir, STATS_FILE)

  @property
  def steps(self) -> str:
    return os.path.join(self.model_dir, STEPS_DIR)

  @property
  def report_json(self) -> str:
    return os.path.join(self.model_dir, REPORT_JSON)

  @property
  def report_md(self) -> str:
    return os.path.join(self.model_dir, REPORT_MD)

  @property
  def lock(self) -> str:
    return os.path.join(self.model_dir, LOCK_FILE)

  @property
  def production(self) -> str:
    return os.path.join(self.models_root, PRODUCTION_FILE)


def schema_file(logs_root: str) -> str:
  return schema_lib.schema_path(logs_root)
