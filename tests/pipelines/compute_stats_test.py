"""Runs the statistics job in-process on a few hand-made records."""

import dataclasses
import json

import kaml_tf  # noqa: F401
from absl import app
from absl import flags
from absl.testing import flagsaver
import numpy as np
import pyarrow.parquet as pq
import pytest

from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.data import stats as stats_lib
from pipelines import compute_stats

SCHEMA = schema_lib.Schema(actions=("A", "B"), sparse_features=(schema_lib.SparseFeature("u"),))


@pytest.fixture(autouse=True)
def _parsed_flags():
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


def _logs(tmp_path):
  # (ad_task_id, day, label_A, label_B)
  rows = np.array([(1, 0, 1, 0), (1, 1, 1, 1), (2, 1, 0, 1), (1, 2, 0, 1), (2, 2, 0, 0)], np.int64)
  n = len(rows)
  cols = {
    "ad_task_id": rows[:, 0],
    "day": rows[:, 1],
    "target_action": np.zeros(n, np.int64),
    "u": np.arange(n, dtype=np.int64),
    "label_A": rows[:, 2],
    "label_B": rows[:, 3],
  }
  SCHEMA.save(str(tmp_path / "schema.json"))
  return records.write_logs(SCHEMA, str(tmp_path / "train"), cols, num_shards=2, batch_rows=2)


def test_writes_statistics_with_metadata(tmp_path, capsys):
  _logs(tmp_path)
  output = str(tmp_path / "out" / "stats.parquet")
  with flagsaver.flagsaver(
    logs=str(tmp_path / "train-*"),
    schema=str(tmp_path / "schema.json"),
    window_days=2,
    end_day=None,
    output=output,
  ):
    compute_stats.main(["compute_stats"])
  stats = stats_lib.load_stats(output, SCHEMA)
  # Window 1..2 (last day 2): task 1 has 2 clicks (A 1, B 2), task 2 has 2 clicks (B 1).
  np.testing.assert_array_equal(stats.ad_task_ids, [1, 2])
  np.testing.assert_array_equal(stats.clicks, [2, 2])
  np.testing.assert_array_equal(stats.counts, [[1, 2], [0, 1]])
  meta = json.loads(pq.read_schema(output).metadata[b"kaml.stats"])
  assert meta["window"] == {"start_day": 1, "end_day": 2, "days": 2}
  assert meta["schema_fingerprint"] == SCHEMA.fingerprint()
  assert "compute_stats: 5 rows read" in capsys.readouterr().err


def test_explicit_end_day(tmp_path):
  _logs(tmp_path)
  output = str(tmp_path / "stats.parquet")
  with flagsaver.flagsaver(
    logs=str(tmp_path / "train-*"),
    schema=str(tmp_path / "schema.json"),
    window_days=1,
    end_day=0,
    output=output,
  ):
    compute_stats.main(["compute_stats"])
  stats = stats_lib.load_stats(output)
  np.testing.assert_array_equal(stats.counts, [[1, 0]])
  assert (stats.window_start, stats.window_end) == (0, 0)


@pytest.mark.parametrize("missing", ["logs", "output", "schema"])
def test_required_flags(tmp_path, missing):
  values = {
    "logs": str(tmp_path / "x-*"),
    "schema": str(tmp_path / "schema.json"),
    "output": str(tmp_path / "s.parquet"),
    "window_days": 2,
  }
  # Empty rather than None: another entry point may mark --schema required (a validator that
  # rejects None) in the same test process.
  values[missing] = ""
  with flagsaver.flagsaver(**values):
    with pytest.raises(app.UsageError, match=f"--{missing} is required"):
      compute_stats.main(["compute_stats"])


def test_bad_window(tmp_path):
  _logs(tmp_path)
  with flagsaver.flagsaver(
    logs=str(tmp_path / "train-*"),
    schema=str(tmp_path / "schema.json"),
    window_days=0,
    output=str(tmp_path / "s.parquet"),
  ):
    with pytest.raises(app.UsageError, match="--window_days: must be >= 1, got 0"):
      compute_stats.main(["compute_stats"])


def test_window_flags_are_the_stats_config_fields():
  # One declaration: the flags' defaults and help are StatsConfig's fields'.
  defaults = stats_lib.StatsConfig()
  fields = {f.name: f for f in dataclasses.fields(stats_lib.StatsConfig)}
  for name in ("window_days", "end_day", "read_batch_size", "as_of"):
    assert flags.FLAGS[name].default == getattr(defaults, name)
    assert flags.FLAGS[name].help.endswith(fields[name].metadata["help"])  # enum: "<a|b>: "
  assert flags.FLAGS["skip_bad_records"].default is False
  assert "compaction_rows" not in flags.FLAGS


def test_bad_read_batch_size(tmp_path):
  with flagsaver.flagsaver(read_batch_size=0):
    with pytest.raises(app.UsageError, match=r"^--read_batch_size: must be >= 1, got 0$"):
      compute_stats.stats_config_from_flags()


def test_progress_lines():
  class Stream:
    def __init__(self):
      self.text = ""

    def write(self, s):
      self.text += s

    def flush(self):
      pass

  stream = Stream()
  progress = compute_stats.RowProgress("job", stream=stream, every_seconds=0)
  progress(10)
  progress(20)
  progress.done()
  lines = stream.text.splitlines()
  assert [l.split(" rows read")[0] for l in lines] == ["job: 10", "job: 20", "job: 20"]
  assert lines[-1].endswith("done")


def test_daily_statistics(tmp_path):
  _logs(tmp_path)
  output = str(tmp_path / "daily.parquet")
  with flagsaver.flagsaver(
    logs=str(tmp_path / "train-*"),
    schema=str(tmp_path / "schema.json"),
    window_days=1,
    end_day=None,
    as_of="daily",
    output=output,
  ):
    compute_stats.main(["compute_stats"])
  stats = stats_lib.load_stats(output, SCHEMA)
  # Days 0-2 in the logs, T = 1: day d counts day d - 1 only. Day 0 has no history; day 3
  # (the day after the logs) counts day 2.
  assert stats.is_daily
  assert list(zip(stats.ad_task_ids.tolist(), stats.days.tolist())) == [
    (1, 1),
    (1, 2),
    (1, 3),
    (2, 2),
    (2, 3),
  ]
  np.testing.assert_array_equal(stats.clicks, [1, 1, 1, 1, 1])
  np.testing.assert_array_equal(stats.counts, [[1, 0], [1, 1], [0, 1], [0, 1], [0, 0]])
  meta = json.loads(pq.read_schema(output).metadata[b"kaml.stats"])
  assert (meta["as_of"], meta["window"], meta["days_covered"]) == (
    "daily",
    {"days": 1},
    {"first_day": 0, "last_day": 3},
  )


def test_bad_as_of_names_the_flag(tmp_path):
  with flagsaver.flagsaver(window_days=2):
    with pytest.raises(flags.IllegalFlagValueError, match="value should be one of <end|daily>"):
      flags.FLAGS["as_of"].parse("weekly")
