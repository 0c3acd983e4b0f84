"""Tests of the Table 1 report on hand-counted logs."""

import kaml_tf  # noqa: F401
import numpy as np
import pytest

from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.data import mask_report
from kaml_tf.data import masks
from kaml_tf.data import point_in_time
from kaml_tf.data import stats as stats_lib

SCHEMA = schema_lib.Schema(actions=("A", "B"), sparse_features=(schema_lib.SparseFeature("user"),))
ALPHA = (2, 3)
# Window counts (A, B) per ad task; task 9 is missing from the statistics.
COUNTS = {1: (5, 4), 2: (0, 3), 3: (2, 0), 4: (0, 0)}
# (ad_task_id, target_action) per record. ADM masks: task 1 -> [1, 1]; task 2 -> [0, 1];
# task 3 (Other) -> [1, 0]; task 4 (Other) -> [0, 0]; task 9 (unknown, target A) -> [1, 0].
SAMPLES = [(1, 0)] * 4 + [(2, 1)] * 2 + [(3, -1)] * 2 + [(4, -1), (9, 0)]


def _stats():
  ids = sorted(COUNTS)
  return stats_lib.ConversionStats(
    ad_task_ids=np.array(ids, np.int64),
    counts=np.array([COUNTS[i] for i in ids], np.int64),
    clicks=np.ones(len(ids), np.int64),
    actions=SCHEMA.actions,
    schema_fingerprint=SCHEMA.fingerprint(),
    window_start=3,
    window_end=9,
    source="s.parquet",
  )


def _write(tmp_path, samples=SAMPLES):
  a = np.asarray(samples, np.int64)
  n = len(a)
  cols = {
    "ad_task_id": a[:, 0],
    "target_action": a[:, 1],
    "day": np.zeros(n, np.int64),
    "user": np.arange(n, dtype=np.int64),
    "label_A": np.zeros(n, np.int64),
    "label_B": np.zeros(n, np.int64),
  }
  return records.write_logs(SCHEMA, str(tmp_path / "logs"), cols, num_shards=2, batch_rows=3)


@pytest.mark.parametrize("batch_size", [3, 1000])
def test_counts_and_shares(tmp_path, batch_size):
  seen = []
  report = mask_report.compute_mask_report(
    _write(tmp_path), SCHEMA, _stats(), ALPHA, batch_size=batch_size, progress=seen.append
  )
  assert seen[-1] == 10
  assert report.samples == 10
  assert report.base_samples == (5, 2)
  assert report.other_samples == 3
  assert report.adm_samples == (7, 6)
  assert report.other_adm_samples == 2
  assert report.unknown_ad_task_samples == 1
  assert report.base_shares == (0.5, 0.2)
  assert report.adm_shares == (0.7, 0.6)
  assert report.other_share == 0.3
  assert report.alpha == ALPHA


def test_markdown_and_json(tmp_path):
  report = mask_report.compute_mask_report(_write(tmp_path), SCHEMA, _stats(), ALPHA)
  lines = report.to_markdown().splitlines()
  assert lines[:4] == [
    "| Mask strategy | A | B | Other |",
    "|---|---|---|---|",
    "| Base | 50.00% | 20.00% | 30.00% |",
    "| With ADM | 70.00% | 60.00% | - |",
  ]
  assert "days 3-9 (s.parquet)" in lines[5] and "A=2, B=3" in lines[5]
  assert "ADM for at least one action: 2 (66.67% of them)" in lines[6]
  assert "missing from the statistics (base mask): 1." in lines[6]
  data = report.to_dict()
  assert data["base"] == {
    "samples": {"A": 5, "B": 2},
    "share": {"A": 0.5, "B": 0.2},
    "other_samples": 3,
    "other_share": 0.3,
  }
  assert data["adm"]["samples"] == {"A": 7, "B": 6}
  assert data["adm"]["other_share_of_other_used"] == pytest.approx(2 / 3)
  assert data["alpha"] == {"A": 2, "B": 3}
  assert data["window"] == {"start_day": 3, "end_day": 9}


def test_default_alpha_is_used_when_none(tmp_path):
  ids = np.array([1, 2], np.int64)
  stats = stats_lib.ConversionStats(
    ad_task_ids=ids,
    counts=np.array([[1, 2], [2, 1]], np.int64),
    clicks=np.ones(2, np.int64),
    actions=SCHEMA.actions,
    schema_fingerprint=SCHEMA.fingerprint(),
    window_start=0,
    window_end=0,
  )
  # With the fallback threshold 2 for unnamed actions, task 1 (Other) trains B only and
  # task 2 (Other) A only.
  report = mask_report.compute_mask_report(_write(tmp_path, [(1, -1), (2, -1)]), SCHEMA, stats)
  assert report.alpha == (2, 2) == masks.default_alpha(SCHEMA)
  assert report.adm_samples == (1, 1)


def test_target_out_of_range_names_file_and_record(tmp_path):
  # Rows go to the two shards in blocks of 3: the 7th row is record #3 of the first shard.
  files = _write(tmp_path, [(1, 0), (1, 0), (1, 0), (1, 0), (1, 0), (1, 0), (1, 5)])
  with pytest.raises(
    stats_lib.LogError, match=r"logs-00000-of-00002.tfrecord: record #3 field 'target_action' is 5"
  ):
    mask_report.compute_mask_report(files, SCHEMA, _stats(), ALPHA)


def test_statistics_of_another_schema_are_rejected(tmp_path):
  other = schema_lib.Schema(actions=("A", "C"))
  stats = stats_lib.ConversionStats(
    ad_task_ids=np.zeros([0], np.int64),
    counts=np.zeros([0, 2], np.int64),
    clicks=np.zeros([0], np.int64),
    actions=other.actions,
    schema_fingerprint=other.fingerprint(),
    window_start=0,
    window_end=0,
    source="o.parquet",
  )
  with pytest.raises(stats_lib.StatsError, match="o.parquet.*" + other.fingerprint()):
    mask_report.compute_mask_report(_write(tmp_path), SCHEMA, stats, ALPHA)


# (ad_task_id, day, target_action, label_A, label_B): task 5 targets B and reports its only
# A conversion on day 4; task 7 targets A and appears on day 6 only.
LEAK_ROWS = [
  (5, 3, 1, 0, 0),
  (5, 4, 1, 1, 0),
  (5, 4, 1, 0, 1),
  (5, 5, 1, 0, 0),
  (5, 6, 1, 0, 0),
  (7, 6, 0, 1, 1),
]


def _write_days(tmp_path, rows=LEAK_ROWS):
  a = np.asarray(rows, np.int64)
  n = len(a)
  cols = {
    "ad_task_id": a[:, 0],
    "day": a[:, 1],
    "target_action": a[:, 2],
    "user": np.arange(n, dtype=np.int64),
    "label_A": a[:, 3],
    "label_B": a[:, 4],
  }
  return records.write_logs(SCHEMA, str(tmp_path / "days"), cols, num_shards=2, batch_rows=2)


def test_extended_cells_static_vs_point_in_time(tmp_path):
  files = _write_days(tmp_path)
  static = stats_lib.compute_stats(files, SCHEMA, stats_lib.StatsConfig(window_days=4))
  daily = stats_lib.compute_stats(
    files, SCHEMA, stats_lib.StatsConfig(window_days=2, as_of="daily")
  )
  # Static window 3-6 (alpha 1, 1): every cell is masked in. Extended cells: A on task 5's
  # five rows (one reported positive, day 4's), B on task 7's row (a positive).
  report = mask_report.compute_mask_report(files, SCHEMA, static, (1, 1), batch_size=2)
  assert report.stats_mode == "static"
  assert report.extended_samples == (5, 1)
  assert report.extended_positives == (1, 1)
  assert report.nontarget_positives == (1, 1)
  assert report.extended_recall == (1.0, 1.0)
  assert report.extended_positive_rates == (0.2, 1.0)
  assert report.extended_shares == (5 / 6, 1 / 6)
  assert (report.unknown_ad_task_samples, report.cold_start_samples) == (0, 0)
  # Point in time (T = 2): A is extended on days 5 and 6 only (they see day 4), never on day
  # 4 itself, so the day-4 positive is not masked in; task 7 is a cold start on day 6, and
  # so is task 5 on day 3.
  report = mask_report.compute_mask_report(files, SCHEMA, daily, (1, 1), batch_size=2)
  assert report.stats_mode == "point_in_time" and report.window_days == 2
  assert report.extended_samples == (2, 0)
  assert report.extended_positives == (0, 0)
  assert report.nontarget_positives == (1, 1)
  assert report.extended_recall == (0.0, 0.0)
  assert report.extended_positive_rates == (0.0, 0.0)
  assert (report.unknown_ad_task_samples, report.cold_start_samples) == (0, 2)
  assert report.adm_samples == (3, 5)
  data = report.to_dict()
  assert data["extended"]["labels"] == "reported (label_<action>)"
  assert data["extended"]["samples"] == {"A": 2, "B": 0}
  assert data["extended"]["p_mask_given_positive"] == {"A": 0.0, "B": 0.0}
  assert (data["stats_mode"], data["cold_start_samples"]) == ("point_in_time", 2)
  lines = report.to_markdown().splitlines()
  assert "a sample of day d uses days d-2..d-1, for days 3-7" in lines[5]
  assert "Cold-start samples (no statistics for their day, base mask): 2." in lines[6]
  assert lines[8:] == [
    "| Extended cells (reported labels) | A | B |",
    "|---|---|---|",
    "| Share of samples | 33.33% | 0.00% |",
    "| P(mask \\| y = 1), non-target | 0.0000 | 0.0000 |",
    "| Positive rate | 0.00% | 0.00% |",
  ]


def test_static_mode_refuses_daily_statistics(tmp_path):
  files = _write_days(tmp_path)
  daily = stats_lib.compute_stats(
    files, SCHEMA, stats_lib.StatsConfig(window_days=2, as_of="daily")
  )
  with pytest.raises(point_in_time.StatsModeError, match="--stats_mode=static"):
    mask_report.compute_mask_report(files, SCHEMA, daily, (1, 1), stats_mode="static")
