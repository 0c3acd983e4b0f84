"""Tests of the KuaiRand conversion end to end: hand-made inputs, then the real log's excerpt."""

import csv
import datetime
import gzip
import json
import math
import os

import numpy as np
import pytest

from kaml_tf import schema as schema_lib
from kaml_tf.datasets.kuairand import conversion
from kaml_tf.datasets.incomplete import draws
from kaml_tf.logs import records
from tests.datasets.kuairand.conftest import ACTIONS
from tests.datasets.kuairand.conftest import FEEDBACK
from tests.datasets.kuairand.conftest import TINY_ROWS
from tests.datasets.kuairand.conftest import TINY_USERS
from tests.datasets.kuairand.conftest import USERS
from tests.datasets.kuairand.conftest import column
from tests.datasets.kuairand.conftest import excerpt_config
from tests.datasets.kuairand.conftest import output_rows
from tests.datasets.kuairand.conftest import tiny_config


def test_tiny_conversion_by_hand(tiny):
  converted = conversion.convert(tiny_config(tiny))
  train, test = converted.splits[conversion.TRAIN], converted.splits[conversion.TEST]
  # Train in time order: rows 0 (t 1000), 2 (2000), 1 (3000), 4 (4000); test: row 3.
  np.testing.assert_array_equal(converted.source_rows[conversion.TRAIN], [0, 2, 1, 4])
  np.testing.assert_array_equal(converted.source_rows[conversion.TEST], [3])
  np.testing.assert_array_equal(train[schema_lib.AD_TASK_ID], [100, 200, 200, 300])
  np.testing.assert_array_equal(train[schema_lib.DAY], [0, 1, 1, 2])
  np.testing.assert_array_equal(test[schema_lib.DAY], [3])
  np.testing.assert_array_equal(train["hour"], [13, 0, 23, 15])
  np.testing.assert_array_equal(test["hour"], [9])
  # Ids: 1 + rank among the sorted distinct raw ids (users 3 < 7, videos 100 < 200 < 300).
  np.testing.assert_array_equal(train["user_id"], [2, 2, 1, 2])
  np.testing.assert_array_equal(train["video_id"], [1, 2, 2, 3])
  np.testing.assert_array_equal(test["user_id"], [1])
  # Users 3 and 7: user_active_degree high_active / full_active among sorted
  # [UNKNOWN, full_active, high_active]; onehot_feat4 2.0 / empty among [1.0, 2.0].
  np.testing.assert_array_equal(train["user_active_degree"], [2, 2, 3, 2])
  np.testing.assert_array_equal(train["onehot_feat4"], [0, 0, 2, 0])
  np.testing.assert_array_equal(test["user_active_degree"], [3])
  # Dense: log(1 + x); train rows belong to users 7, 7, 3, 7.
  ln4, ln10 = math.log(4), math.log(10)
  np.testing.assert_allclose(train["follow_user_num"], [ln4, ln4, 0, ln4], rtol=1e-6)
  np.testing.assert_allclose(train["fans_user_num"], [0, 0, ln10, 0], atol=1e-6)
  np.testing.assert_allclose(test["register_days"], [math.log(31)], rtol=1e-6)
  truth = np.array([[r[8], r[5], r[6], r[7]] for r in TINY_ROWS])
  for j, action in enumerate(ACTIONS):
    np.testing.assert_array_equal(train["true_label_" + action], truth[[0, 2, 1, 4], j])
    np.testing.assert_array_equal(test["true_label_" + action], truth[[3], j])

  schema = converted.schema
  assert schema.actions == ACTIONS and schema.has_true_labels
  assert [f.name for f in schema.sparse_features] == [
    "user_id",
    "video_id",
    "hour",
    "user_active_degree",
    "onehot_feat4",
  ]
  assert [f.num_buckets for f in schema.sparse_features] == [3, 4, 24, 4, 3]
  dense = {f.name: (f.mean, f.std) for f in schema.dense_features}
  assert list(dense) == list(conversion.USER_NUMERIC_COLUMNS)
  # Moments over the 4 train rows: follow [ln4, ln4, 0, ln4], fans [0, 0, ln10, 0].
  np.testing.assert_allclose(dense["follow_user_num"], [0.75 * ln4, math.sqrt(3) / 4 * ln4])
  np.testing.assert_allclose(dense["fans_user_num"], [ln10 / 4, math.sqrt(3) / 4 * ln10])
  # friend_user_num is 1 for both users: a constant, so std falls back to 1.
  np.testing.assert_allclose(dense["friend_user_num"], [math.log(2), 1.0])
  assert set(train) == set(schema.record_dtypes())

  report = converted.report
  assert report["input"] == {
    "log_rows": 5,
    "users": 2,
    "videos": 3,
    "first_date": "2022-04-08",
    "last_date": "2022-04-11",
    "days": 4,
    "all_zero_rows": 1,
  }
  assert report["split"]["boundary_time_ms"] == 5000
  assert report["split"]["train_last_time_ms"] == 4000
  assert report["splits"]["train"]["rows"] == 4 and report["splits"]["test"]["rows"] == 1
  assert report["splits"]["train"]["true_positive_rate"] == {
    "like": 0.25,
    "follow": 0.0,
    "comment": 0.25,
    "forward": 0.25,
  }


def test_tiny_reported_labels_follow_the_video_draws(tiny):
  converted = conversion.convert(tiny_config(tiny, seed=4))
  target, reported = draws.draw_reporting(np.array([100, 200, 300]), 4, 2, seed=4)
  columns, _ = output_rows(converted)
  video = {100: 0, 200: 1, 300: 2}
  v = np.array([video[x] for x in columns[schema_lib.AD_TASK_ID].tolist()])
  np.testing.assert_array_equal(columns[schema_lib.TARGET_ACTION], target[v])
  for j, action in enumerate(ACTIONS):
    np.testing.assert_array_equal(
      columns["label_" + action], columns["true_label_" + action] * reported[v, j]
    )


@pytest.mark.parametrize("rate,kept", [(0.5, 1), (0.49, 0)])
def test_tiny_negative_sampling_rounds_half_up(tiny, rate, kept):
  converted = conversion.convert(tiny_config(tiny, negative_keep_rate=rate))
  # Row 1 is the train split's only all-zero row: 0.5 * 1 rounds to 1, 0.49 * 1 to 0.
  assert (1 in converted.source_rows[conversion.TRAIN]) == bool(kept)
  assert converted.report["negative_sampling"]["train"] == {
    "sampled": True,
    "all_zero_rows": 1,
    "kept": kept,
    "dropped": 1 - kept,
  }
  assert converted.report["splits"]["train"]["rows_in"] == 4
  assert converted.report["splits"]["train"]["rows"] == 3 + kept


def test_missing_user_is_an_error_naming_user_row_and_files(tiny, tmp_path):
  users = tmp_path / "users_without_7.csv"
  users.write_text("\n".join(l for l in TINY_USERS.splitlines() if not l.startswith("7,")))
  config = conversion.ConversionConfig(log_path=tiny[0], user_features_path=str(users))
  with pytest.raises(
    conversion.ConversionError,
    match=r"users_without_7.csv: no row for user_id 7 of .*log.tsv data row 1",
  ):
    conversion.convert(config)


def test_allowed_missing_user_gets_missing_ids_and_mean_values(tiny, tmp_path):
  users = tmp_path / "users_without_7.csv"
  users.write_text("\n".join(l for l in TINY_USERS.splitlines() if not l.startswith("7,")))
  converted = conversion.convert(
    conversion.ConversionConfig(
      log_path=tiny[0], user_features_path=str(users), allow_missing_users=True
    )
  )
  train = converted.splits[conversion.TRAIN]
  # Without user 7 the sorted values are [UNKNOWN, high_active].
  np.testing.assert_array_equal(train["user_active_degree"], [0, 0, 2, 0])
  dense = {f.name: (f.mean, f.std) for f in converted.schema.dense_features}
  # Only user 3's row is known: mean log(10), one value so std falls back to 1; the three
  # missing rows hold that mean.
  np.testing.assert_allclose(dense["fans_user_num"], [math.log(10), 1.0])
  np.testing.assert_allclose(train["fans_user_num"], [math.log(10)] * 4, rtol=1e-6)
  assert converted.report["user_features"]["missing_users"] == 1
  assert converted.report["user_features"]["missing_user_rows"] == 3


def test_other_feedbacks_as_actions(tiny):
  converted = conversion.convert(
    tiny_config(tiny, actions=("click", "long_view"), extra_reported_actions=1)
  )
  assert converted.schema.actions == ("click", "long_view")
  train = converted.splits[conversion.TRAIN]
  # Every video reports both actions (K = N - 1): reported labels are the complete ones.
  np.testing.assert_array_equal(train["label_click"], [1, 1, 1, 1])
  np.testing.assert_array_equal(train["true_label_long_view"], [0, 0, 0, 0])
  # No row has a click of 0 here, so none is all-zero.
  assert converted.report["input"]["all_zero_rows"] == 0


def test_excerpt_has_one_target_and_one_reported_set_per_video(excerpt):
  columns, source = output_rows(conversion.convert(excerpt_config(excerpt, seed=7)))
  rows = excerpt[1]
  assert source.size == 200
  videos = columns[schema_lib.AD_TASK_ID]
  np.testing.assert_array_equal(videos, column(rows, "video_id")[source])
  labels = np.stack([columns["label_" + a] for a in ACTIONS], axis=1)
  truth = np.stack([columns["true_label_" + a] for a in ACTIONS], axis=1)
  recurring = 0
  for video in np.unique(videos):
    of_video = videos == video
    recurring += of_video.sum() > 1
    assert np.unique(columns[schema_lib.TARGET_ACTION][of_video]).size == 1
    # An action the video does not report hides its positives on every row of the video, and
    # one it reports shows them on every row: never both.
    hidden = np.any((truth[of_video] == 1) & (labels[of_video] == 0), axis=0)
    shown = np.any(labels[of_video] == 1, axis=0)
    assert not np.any(hidden & shown), video
  assert recurring >= 6
  # The same through the per-video draws: labels are the feedbacks of the reported actions.
  distinct, index = np.unique(videos, return_inverse=True)
  target, reported = draws.draw_reporting(distinct, 4, 2, seed=7)
  np.testing.assert_array_equal(columns[schema_lib.TARGET_ACTION], target[index])
  np.testing.assert_array_equal(labels, truth * reported[index])


def test_excerpt_no_unreported_label_is_one(excerpt):
  columns, source = output_rows(conversion.convert(excerpt_config(excerpt)))
  rows = excerpt[1]
  labels = np.stack([columns["label_" + a] for a in ACTIONS], axis=1)
  truth = np.stack([columns["true_label_" + a] for a in ACTIONS], axis=1)
  raw = np.stack([column(rows, c)[source] for c in FEEDBACK], axis=1)
  np.testing.assert_array_equal(truth, raw)
  assert np.all(labels <= truth)
  on_target = np.arange(4)[None, :] == columns[schema_lib.TARGET_ACTION][:, None]
  np.testing.assert_array_equal(labels[on_target], truth[on_target])
  # The incompleteness is really exercised: some positives are hidden.
  assert np.sum(truth - labels) > 0
  assert truth[:, 1].sum() >= 10 and truth[:, 3].sum() >= 10  # follows and forwards present.


def test_excerpt_split_is_by_time(excerpt):
  converted = conversion.convert(excerpt_config(excerpt))
  times = column(excerpt[1], "time_ms")
  train_t = times[converted.source_rows[conversion.TRAIN]]
  test_t = times[converted.source_rows[conversion.TEST]]
  assert train_t.max() < test_t.min()
  assert np.all(np.diff(train_t) >= 0) and np.all(np.diff(test_t) >= 0)
  boundary = np.sort(times)[160]  # round(0.8 * 200)
  assert test_t.min() == boundary
  assert train_t.size == np.sum(times < boundary) and test_t.size == np.sum(times >= boundary)
  assert 150 <= train_t.size <= 160
  # `day` counts days from the excerpt's first date.
  dates = [datetime.datetime.strptime(str(d), "%Y%m%d").date() for d in column(excerpt[1], "date")]
  for split in conversion.SPLITS:
    expected = [(dates[i] - min(dates)).days for i in converted.source_rows[split]]
    np.testing.assert_array_equal(converted.splits[split][schema_lib.DAY], expected)


@pytest.mark.parametrize("sample_test", [True, False])
def test_excerpt_all_zero_rows_are_sampled_at_the_rate(excerpt, sample_test):
  rate = 0.3
  converted = conversion.convert(
    excerpt_config(excerpt, negative_keep_rate=rate, sample_test_negatives=sample_test, seed=2)
  )
  full = conversion.convert(excerpt_config(excerpt))
  raw = np.stack([column(excerpt[1], c) for c in FEEDBACK], axis=1)
  all_zero = raw.sum(axis=1) == 0
  for split in conversion.SPLITS:
    before = full.source_rows[split]  # The split does not depend on the sampling.
    after = converted.source_rows[split]
    assert set(after) <= set(before)
    zeros_before = int(all_zero[before].sum())
    assert zeros_before >= 5
    expected = (
      zeros_before
      if split == conversion.TEST and not sample_test
      else math.floor(rate * zeros_before + 0.5)
    )
    assert all_zero[after].sum() == expected
    # Every row with a positive survives.
    assert set(before[~all_zero[before]]) <= set(after)
    counts = converted.report["negative_sampling"][split]
    assert counts["all_zero_rows"] == zeros_before and counts["kept"] == expected
    assert converted.report["splits"][split]["rows"] == after.size


def test_excerpt_user_features_join_the_real_user_file(excerpt):
  converted = conversion.convert(excerpt_config(excerpt))
  columns, source = output_rows(converted)
  with gzip.open(USERS, "rt", newline="") as f:
    users = {r["user_id"]: r for r in csv.DictReader(f)}
  user_of_row = [excerpt[1][i]["user_id"] for i in source]
  assert len(set(user_of_row)) >= 5
  degree = sorted({u["user_active_degree"] for u in users.values()})
  feat2 = sorted({int(u["onehot_feat2"]) for u in users.values()})
  expected_degree = [1 + degree.index(users[u]["user_active_degree"]) for u in user_of_row]
  expected_feat2 = [1 + feat2.index(int(users[u]["onehot_feat2"])) for u in user_of_row]
  np.testing.assert_array_equal(columns["user_active_degree"], expected_degree)
  np.testing.assert_array_equal(columns["onehot_feat2"], expected_feat2)
  fans = [math.log1p(int(users[u]["fans_user_num"])) for u in user_of_row]
  np.testing.assert_allclose(columns["fans_user_num"], fans, rtol=1e-6)
  buckets = {f.name: f.num_buckets for f in converted.schema.sparse_features}
  assert buckets["user_active_degree"] == len(degree) + 1
  assert buckets["onehot_feat2"] == len(feat2) + 1
  assert buckets["user_id"] == len(set(r["user_id"] for r in excerpt[1])) + 1
  train_fans = np.log1p(
    [
      int(users[excerpt[1][i]["user_id"]]["fans_user_num"])
      for i in converted.source_rows[conversion.TRAIN]
    ]
  )
  dense = {f.name: f for f in converted.schema.dense_features}
  assert dense["fans_user_num"].mean == pytest.approx(train_fans.mean(), rel=1e-12)
  assert dense["fans_user_num"].std == pytest.approx(train_fans.std(), rel=1e-12)


def test_write_conversion_writes_the_converted_split_in_blocks(tmp_path, tiny):
  config = tiny_config(tiny, seed=2)
  summary = conversion.write_conversion(config, str(tmp_path), num_shards=3)
  with open(tmp_path / conversion.REPORT_FILE) as f:
    assert json.load(f) == json.loads(json.dumps(summary))
  expected = conversion.convert(config)
  schema = schema_lib.Schema.load(str(tmp_path / "schema.json"))
  assert schema == expected.schema
  assert summary["report"] == json.loads(json.dumps(expected.report))
  # 4 train rows in blocks of ceil(4 / 3) = 2: shards hold 2, 2 and 0 rows, in time order.
  paths = [str(tmp_path / name) for name in summary["output"]["train_files"]]
  sizes = [len(records.read_columns([p], schema)[schema_lib.DAY]) for p in paths]
  assert sizes == [2, 2, 0]
  train = records.read_columns(paths, schema)
  for key, values in expected.splits[conversion.TRAIN].items():
    np.testing.assert_array_equal(train[key], values, err_msg=key)


def test_write_conversion_refuses_bad_arguments_before_reading(tmp_path, tiny):
  config = tiny_config(tiny)
  with pytest.raises(ValueError, match="compression must be '' or 'GZIP', got 'zip'"):
    conversion.write_conversion(config, str(tmp_path / "out"), compression="zip")
  assert not os.path.exists(tmp_path / "out")
