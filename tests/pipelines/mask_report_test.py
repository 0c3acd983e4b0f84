"""Runs the Table 1 report in-process on a few hand-made records."""

import json

import kaml_tf  # noqa: F401
from absl import app
from absl import flags
from absl.testing import flagsaver
import numpy as np
import pytest

from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from pipelines import compute_stats
from pipelines import mask_report

SCHEMA = schema_lib.Schema(actions=("A", "B"), sparse_features=(schema_lib.SparseFeature("u"),))


@pytest.fixture(autouse=True)
def _parsed_flags():
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


def _logs(tmp_path):
  # (ad_task_id, target_action, label_A, label_B), all on day 0. Window counts (A, B):
  # task 1 -> (2, 1); task 2 -> (0, 2); task 3 -> (1, 0).
  rows = np.array([(1, 0, 1, 0), (1, 0, 1, 1), (2, 1, 0, 1), (2, 1, 0, 1), (3, -1, 1, 0)], np.int64)
  n = len(rows)
  cols = {
    "ad_task_id": rows[:, 0],
    "target_action": rows[:, 1],
    "day": np.zeros(n, np.int64),
    "u": np.arange(n, dtype=np.int64),
    "label_A": rows[:, 2],
    "label_B": rows[:, 3],
  }
  SCHEMA.save(str(tmp_path / "schema.json"))
  records.write_logs(SCHEMA, str(tmp_path / "train"), cols)
  return str(tmp_path / "train-*")


def _flags(tmp_path, **overrides):
  values = {
    "logs": _logs(tmp_path),
    "schema": str(tmp_path / "schema.json"),
    "stats": "",
    "window_days": 1,
    "end_day": None,
    "alpha": ["1", "2"],
    "output": str(tmp_path / "table1.json"),
    "markdown_output": None,
    "as_of": "end",
    "stats_mode": "",
  }
  values.update(overrides)
  return flagsaver.flagsaver(**values)


def test_report_from_logs(tmp_path, capsys):
  with _flags(tmp_path):
    mask_report.main(["mask_report"])
  # ADM (alpha A=1, B=2): task 1 -> [1, 0]; task 2 -> [0, 1]; task 3 (Other) -> [1, 0].
  data = json.loads((tmp_path / "table1.json").read_text())
  assert data["base"]["samples"] == {"A": 2, "B": 2}
  assert data["base"]["other_samples"] == 1
  assert data["adm"]["samples"] == {"A": 3, "B": 2}
  assert data["adm"]["other_samples_used"] == 1
  markdown = (tmp_path / "table1.md").read_text()
  assert "| Base | 40.00% | 40.00% | 20.00% |" in markdown
  assert "| With ADM | 60.00% | 40.00% | - |" in markdown
  assert markdown in capsys.readouterr().out


def test_report_from_a_statistics_file(tmp_path):
  stats_path = str(tmp_path / "stats.parquet")
  with _flags(tmp_path, output=stats_path):
    compute_stats.main(["compute_stats"])
  md = str(tmp_path / "t.md")
  with _flags(tmp_path, stats=stats_path, alpha=["2", "1"], markdown_output=md):
    mask_report.main(["mask_report"])
  # alpha A=2, B=1: task 1 -> [1, 1]; task 2 -> [0, 1]; task 3 (Other) -> [0, 0].
  data = json.loads((tmp_path / "table1.json").read_text())
  assert data["adm"]["samples"] == {"A": 2, "B": 4}
  assert data["stats"] == stats_path
  assert "| With ADM | 40.00% | 80.00% | - |" in (tmp_path / "t.md").read_text()


@pytest.mark.parametrize(
  "alpha,message",
  [
    (["1"], r"--alpha has 1 value\(s\) \[1.0\] but the schema has 2 actions"),
    (["1", "x"], "--alpha: expected comma-separated integers"),
    (["1", "0"], "--alpha for action 'B' must be an integer >= 1"),
  ],
)
def test_bad_alpha_names_the_flag(tmp_path, alpha, message):
  with _flags(tmp_path, alpha=alpha):
    with pytest.raises(app.UsageError, match=message):
      mask_report.main(["mask_report"])


def _daily_logs(tmp_path):
  # (ad_task_id, day, target_action, label_A, label_B): task 1 targets B and reports an A
  # conversion on day 1; task 2 (target A) appears on day 2 only.
  rows = np.array([(1, 0, 1, 0, 0), (1, 1, 1, 1, 0), (1, 2, 1, 0, 1), (2, 2, 0, 0, 1)], np.int64)
  n = len(rows)
  cols = {
    "ad_task_id": rows[:, 0],
    "day": rows[:, 1],
    "target_action": rows[:, 2],
    "u": np.arange(n, dtype=np.int64),
    "label_A": rows[:, 3],
    "label_B": rows[:, 4],
  }
  SCHEMA.save(str(tmp_path / "schema.json"))
  records.write_logs(SCHEMA, str(tmp_path / "days"), cols)
  return str(tmp_path / "days-*")


def test_report_on_daily_statistics(tmp_path):
  logs = _daily_logs(tmp_path)
  stats_path = str(tmp_path / "daily.parquet")
  with _flags(tmp_path, logs=logs, window_days=2, as_of="daily", output=stats_path):
    compute_stats.main(["compute_stats"])
  with _flags(tmp_path, logs=logs, stats=stats_path, alpha=["1", "1"], stats_mode=""):
    mask_report.main(["mask_report"])
  # Day 0: cold start; day 1 (history: day 0, no conversion): base mask; day 2, task 1:
  # sees day 1's A conversion -> A extended (label 0); task 2 on day 2: cold start.
  data = json.loads((tmp_path / "table1.json").read_text())
  assert data["stats_mode"] == "point_in_time" and data["cold_start_samples"] == 2
  assert data["adm"]["samples"] == {"A": 2, "B": 3}
  assert data["extended"]["samples"] == {"A": 1, "B": 0}
  assert data["extended"]["positive_rate"] == {"A": 0.0, "B": 0.0}
  # Non-target positives: A on day 1 (task 1, not masked in), B of task 2 (cold start).
  assert data["extended"]["nontarget_positives"] == {"A": 1, "B": 1}
  assert data["extended"]["p_mask_given_positive"] == {"A": 0.0, "B": 0.0}
  # The same logs with static statistics (window 0-2): every cell is masked in.
  with _flags(tmp_path, logs=logs, window_days=3, as_of="end", alpha=["1", "1"], stats_mode=""):
    mask_report.main(["mask_report"])
  data = json.loads((tmp_path / "table1.json").read_text())
  assert data["stats_mode"] == "static"
  assert data["extended"]["samples"] == {"A": 3, "B": 1}
  assert data["extended"]["p_mask_given_positive"] == {"A": 1.0, "B": 1.0}


def test_stats_mode_that_does_not_fit_names_the_flag(tmp_path):
  logs = _daily_logs(tmp_path)
  with _flags(
    tmp_path, logs=logs, window_days=2, as_of="daily", alpha=["1", "1"], stats_mode="static"
  ):
    with pytest.raises(app.UsageError, match="--stats_mode=static: <memory> holds daily"):
      mask_report.main(["mask_report"])
