"""Tests of the KuaiRand conversion: hand-made inputs, then a 200-row excerpt of the real log."""

import collections
import csv
import datetime
import gzip
import math
import pathlib

import numpy as np
import pyarrow as pa
import pytest

from kaml_tf import schema as schema_lib
from kaml_tf.datasets.kuairand import conversion

REPO_ROOT = pathlib.Path(__file__).resolve().parents[3]
DATA = REPO_ROOT / ".." / "shared" / "data" / "kuairand"
LOG = DATA / "kuairand_27k_likehate_kcore15.tsv"
USERS = DATA / "user_features_pure.csv"
ACTIONS = conversion.DEFAULT_ACTIONS
FEEDBACK = [conversion.FEEDBACK_COLUMNS[a] for a in ACTIONS]

LOG_HEADER = (
  "user_id video_id date hourmin time_ms is_click is_follow is_comment is_forward "
  "long_view play_time_ms duration_ms comment_stay_time is_profile_enter label "
  "timestamp"
).split()
# A hand-made log in the real file's layout: (user, video, date, hourmin, time_ms,
# follow, comment, forward, like). With test_fraction 0.2 the 4 oldest rows (times
# 1000..4000) are train, the row at 5000 is test; row 1 is the only all-zero row.
TINY_ROWS = (
  (7, 100, 20220408, 1300, 1000, 0, 0, 0, 1),
  (3, 200, 20220409, 2300, 3000, 0, 0, 0, 0),
  (7, 200, 20220409, 0, 2000, 0, 1, 0, 0),
  (3, 100, 20220411, 900, 5000, 1, 0, 0, 1),
  (7, 300, 20220410, 1500, 4000, 0, 0, 1, 0),
)
TINY_USERS = """user_id,user_active_degree,follow_user_num,fans_user_num,friend_user_num,register_days,onehot_feat4
3,high_active,0,9,1,30,2.0
7,full_active,3,0,1,100,
5,UNKNOWN,10,99,0,8,1.0
"""


def write_tiny_log(path, rows=TINY_ROWS, header=LOG_HEADER):
  lines = ["\t".join(header)]
  for user, video, date, hourmin, time_ms, follow, comment, forward, like in rows:
    values = dict(
      user_id=user,
      video_id=video,
      date=date,
      hourmin=hourmin,
      time_ms=time_ms,
      is_click=1,
      is_follow=follow,
      is_comment=comment,
      is_forward=forward,
      long_view=0,
      play_time_ms=10,
      duration_ms=20,
      comment_stay_time=0,
      is_profile_enter=0,
      label=like,
      timestamp="2022-04-08 00:00:00",
    )
    lines.append("\t".join(str(values[k]) for k in header))
  path.write_text("\n".join(lines) + "\n")
  return str(path)


@pytest.fixture
def tiny(tmp_path):
  """(log path, user features path) of the hand-made inputs."""
  users = tmp_path / "users.csv"
  users.write_text(TINY_USERS)
  return write_tiny_log(tmp_path / "log.tsv"), str(users)


def tiny_config(tiny, **overrides):
  return conversion.ConversionConfig(log_path=tiny[0], user_features_path=tiny[1], **overrides)


def select_excerpt(rows):
  """200 rows of the real log, in file order: whole videos, rare feedbacks, then the head.

  All rows of the first six videos that have 12 to 20 rows (so videos recur and span the
  split), the first ten rows with a follow and ten with a forward (rare actions), 40 rows
  whose feedbacks are all 0 evenly spread over the file (the head of the file has almost
  none), then the first rows of the file up to 200.
  """
  per_video = collections.Counter(r["video_id"] for r in rows)
  videos = set()
  for r in rows:
    if len(videos) < 6 and 12 <= per_video[r["video_id"]] <= 20:
      videos.add(r["video_id"])
  chosen = {i for i, r in enumerate(rows) if r["video_id"] in videos}
  for name in ("is_follow", "is_forward"):
    chosen |= set([i for i, r in enumerate(rows) if r[name] == "1" and i not in chosen][:10])
  zero = [i for i, r in enumerate(rows) if all(r[c] == "0" for c in FEEDBACK)]
  chosen |= set(zero[:: len(zero) // 40][:40])
  head = (i for i in range(len(rows)) if i not in chosen)
  while len(chosen) < 200:
    chosen.add(next(head))
  return sorted(chosen)


@pytest.fixture(scope="module")
def excerpt(tmp_path_factory):
  """(path of the 200-row excerpt TSV, its rows as dicts of strings)."""
  with open(LOG, newline="") as f:
    reader = csv.DictReader(f, delimiter="\t")
    header = reader.fieldnames
    rows = list(reader)
  picked = [rows[i] for i in select_excerpt(rows)]
  assert len(picked) == 200
  path = tmp_path_factory.mktemp("kuairand") / "excerpt.tsv"
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=header, delimiter="\t", lineterminator="\n")
    writer.writeheader()
    writer.writerows(picked)
  return str(path), picked


def excerpt_config(excerpt, **overrides):
  return conversion.ConversionConfig(
    log_path=excerpt[0], user_features_path=str(USERS), **overrides
  )


def column(rows, name):
  return np.array([int(r[name]) for r in rows], np.int64)


def output_rows(converted):
  """Train then test records as one dict of columns, with the input row of each record."""
  columns = {
    k: np.concatenate([converted.splits[s][k] for s in conversion.SPLITS])
    for k in converted.splits[conversion.TRAIN]
  }
  source = np.concatenate([converted.source_rows[s] for s in conversion.SPLITS])
  return columns, source


# ---------------------------------------------------------------------------------------------
# Building blocks on hand-made inputs.
# ---------------------------------------------------------------------------------------------


def test_category_ids_sort_values_and_keep_zero_for_missing():
  ids, buckets = conversion.category_ids(pa.chunked_array([["b", "a", None, "b", "B"]]))
  np.testing.assert_array_equal(ids, [3, 2, 0, 3, 1])  # "B" < "a" < "b" by code point.
  assert buckets == 4
  ids, buckets = conversion.category_ids(pa.chunked_array([[10, -124, 10, 7]]))
  np.testing.assert_array_equal(ids, [3, 1, 3, 2])  # Numerically, not as text.
  assert buckets == 4


@pytest.mark.parametrize(
  "times,test_fraction,expected_test,boundary",
  [
    # cut = round(0.8 * 10) = 8; sorted times [1 2 3 3 3 5 6 7 8 9] -> boundary 8.
    ([5, 1, 3, 3, 9, 7, 3, 2, 8, 6], 0.2, [4, 8], 8),
    # cut = round(0.6 * 5) = 3; sorted [1 2 2 2 3] -> boundary 2: the tied rows stay together.
    ([1, 2, 2, 2, 3], 0.4, [1, 2, 3, 4], 2),
    # cut = floor(0.75 * 6 + 0.5) = 5 (half up); boundary = 6th smallest = 60.
    ([60, 10, 20, 30, 40, 50], 0.25, [0], 60),
  ],
)
def test_split_by_time_by_hand(times, test_fraction, expected_test, boundary):
  is_test, got_boundary = conversion.split_by_time(np.array(times, np.int64), test_fraction)
  np.testing.assert_array_equal(np.flatnonzero(is_test), expected_test)
  assert got_boundary == boundary


@pytest.mark.parametrize(
  "times,test_fraction,match",
  [
    ([1, 2, 3], 0.1, "leaves no test rows"),
    ([4, 4, 4, 4], 0.5, "train split would be empty"),
  ],
)
def test_split_by_time_refuses_an_empty_split(times, test_fraction, match):
  with pytest.raises(conversion.ConversionError, match=match):
    conversion.split_by_time(np.array(times, np.int64), test_fraction)


@pytest.mark.parametrize(
  "rate,kept_zero_rows", [(0.0, 0), (0.5, 2), (0.3, 1), (0.375, 2), (1.0, 4)]
)
def test_sample_negatives_keeps_round_half_up_of_the_all_zero_rows(rate, kept_zero_rows):
  all_zero = np.array([True, False, True, True, False, True])
  keep = conversion.sample_negatives(all_zero, rate, np.random.default_rng(3))
  assert keep[~all_zero].all()
  assert keep[all_zero].sum() == kept_zero_rows  # 4 rows: 0.3 -> 1.2 -> 1, 0.375 -> 1.5 -> 2.


def test_draw_reporting_is_per_video_and_reports_the_target_plus_k():
  videos = np.array([5, 17, 3_381_812, 0, 44], np.int64)
  target, reported = conversion.draw_reporting(videos, 4, 2, seed=0)
  assert reported.shape == (5, 4)
  np.testing.assert_array_equal(reported.sum(axis=1), [3] * 5)
  assert reported[np.arange(5), target].all()
  # A video's draw depends on the seed and its id only, not on the other videos.
  sub_target, sub_reported = conversion.draw_reporting(videos[[3, 1]], 4, 2, seed=0)
  np.testing.assert_array_equal(sub_target, target[[3, 1]])
  np.testing.assert_array_equal(sub_reported, reported[[3, 1]])
  many = np.arange(200, dtype=np.int64)
  seed0, _ = conversion.draw_reporting(many, 4, 0, seed=0)
  seed1, _ = conversion.draw_reporting(many, 4, 0, seed=1)
  assert np.any(seed0 != seed1)
  assert set(seed0.tolist()) == {0, 1, 2, 3}
  _, only_target = conversion.draw_reporting(many, 4, 0, seed=0)
  np.testing.assert_array_equal(only_target, np.arange(4)[None, :] == seed0[:, None])


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
  target, reported = conversion.draw_reporting(np.array([100, 200, 300]), 4, 2, seed=4)
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


def test_play_time_features_are_optional_dense_log1p(tiny):
  dropped = conversion.convert(tiny_config(tiny))
  kept = conversion.convert(tiny_config(tiny, play_time_features=True))
  assert not set(conversion.PLAY_TIME_COLUMNS) & set(dropped.schema.feature_names)
  names = [f.name for f in kept.schema.dense_features]
  assert names == list(conversion.USER_NUMERIC_COLUMNS) + list(conversion.PLAY_TIME_COLUMNS)
  np.testing.assert_allclose(
    kept.splits[conversion.TRAIN]["play_time_ms"], [math.log(11)] * 4, rtol=1e-6
  )


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


def test_gzipped_and_comma_separated_logs_read_the_same(tiny, tmp_path):
  plain = conversion.convert(tiny_config(tiny))
  text = pathlib.Path(tiny[0]).read_text()
  gzipped = tmp_path / "log.tsv.gz"
  gzipped.write_bytes(gzip.compress(text.encode()))
  comma = tmp_path / "log.csv"
  comma.write_text(text.replace("\t", ","))
  for path in (gzipped, comma):
    other = conversion.convert(
      conversion.ConversionConfig(log_path=str(path), user_features_path=tiny[1])
    )
    for split in conversion.SPLITS:
      for key, values in plain.splits[split].items():
        np.testing.assert_array_equal(other.splits[split][key], values, err_msg=f"{path} {key}")


def replace_cell(path, row, name, value):
  lines = pathlib.Path(path).read_text().splitlines()
  header = lines[0].split("\t")
  cells = lines[row + 1].split("\t")
  cells[header.index(name)] = value
  lines[row + 1] = "\t".join(cells)
  pathlib.Path(path).write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
  "name,value,match",
  [
    ("time_ms", "12x", r"column 'time_ms', data row 3 \(line 4\): expected an integer, got '12x'"),
    ("is_follow", "", r"column 'is_follow', data row 3 \(line 4\): expected an integer, got ''"),
    ("label", "2", r"column 'label', data row 3 \(line 4\): a feedback must be 0 or 1, got 2"),
    ("hourmin", "2460", r"column 'hourmin', data row 3 \(line 4\): expected a time of day"),
    ("date", "20220230", r"column 'date', data row 3 \(line 4\): expected a date YYYYMMDD"),
    ("video_id", "-5", r"column 'video_id', data row 3 \(line 4\): ids must be >= 0"),
  ],
)
def test_bad_log_value_names_file_column_and_row(tiny, name, value, match):
  replace_cell(tiny[0], 2, name, value)
  with pytest.raises(conversion.ConversionError, match=r"log.tsv: " + match):
    conversion.convert(tiny_config(tiny))


def test_missing_log_column_is_named(tmp_path, tiny):
  header = [h for h in LOG_HEADER if h != "is_comment"]
  path = write_tiny_log(tmp_path / "no_comment.tsv", header=header)
  config = conversion.ConversionConfig(log_path=path, user_features_path=tiny[1])
  with pytest.raises(
    conversion.ConversionError,
    match=r"no_comment.tsv: missing column\(s\) "
    r"\['is_comment'\]",
  ):
    conversion.convert(config)


@pytest.mark.parametrize(
  "content,match",
  [
    (
      TINY_USERS + "3,low_active,1,1,1,1,1.0\n",
      r"user_id 3 appears on 2 rows \(data row 1 \(line 2\) and data row 4",
    ),
    (
      TINY_USERS.replace("7,full_active,3,", "7,full_active,-3,"),
      r"column 'follow_user_num', data row 2 \(line 3\) \(user_id 7\): expected a count >= 0",
    ),
    (TINY_USERS.replace(",register_days,", ",days,"), r"missing column\(s\) \['register_days'\]"),
    (TINY_USERS.replace("0,9,1,30", "0,many,1,30"), r"numeric column 'fans_user_num' has type"),
  ],
)
def test_bad_user_features_name_the_problem(tiny, content, match):
  pathlib.Path(tiny[1]).write_text(content)
  with pytest.raises(conversion.ConversionError, match=r"users.csv: " + match):
    conversion.convert(tiny_config(tiny))


def test_missing_file_is_named(tiny):
  config = conversion.ConversionConfig(log_path=tiny[0] + ".nope", user_features_path=tiny[1])
  with pytest.raises(
    conversion.ConversionError,
    match=r"log.tsv.nope: KuaiRand log file not "
    "found",
  ):
    conversion.convert(config)


@pytest.mark.parametrize(
  "overrides,match",
  [
    (dict(actions=("like", "share")), r"actions: unknown feedback\(s\) \['share'\]"),
    (dict(actions=("like", "like")), "actions: must not repeat"),
    (dict(actions=()), "actions: needs at least one"),
    (dict(extra_reported_actions=4), r"extra_reported_actions: must be an integer in \[0, 3\]"),
    (dict(extra_reported_actions=-1), "extra_reported_actions"),
    (dict(negative_keep_rate=1.5), r"negative_keep_rate: must be a number in \[0, 1\]"),
    (dict(test_fraction=1.0), r"test_fraction: must be a number in \(0, 1\)"),
    (dict(seed=-1), "seed: must be an integer >= 0"),
    (dict(log_path=""), "log_path: must be a non-empty path"),
    (dict(embedding_dim=0), "embedding_dim"),
  ],
)
def test_config_validation_names_the_field(overrides, match):
  params = dict(log_path="log.tsv", user_features_path="users.csv")
  params.update(overrides)
  with pytest.raises(ValueError, match=match):
    conversion.ConversionConfig(**params)


def test_config_dict_round_trip():
  config = conversion.ConversionConfig(
    log_path="a.tsv",
    user_features_path="u.csv",
    seed=3,
    actions=("click", "like"),
    extra_reported_actions=1,
  )
  assert conversion.ConversionConfig.from_dict(config.to_dict()) == config
  with pytest.raises(ValueError, match=r"unknown ConversionConfig field\(s\) \['bogus'\]"):
    conversion.ConversionConfig.from_dict(dict(config.to_dict(), bogus=1))


# ---------------------------------------------------------------------------------------------
# The 200-row excerpt of the real log.
# ---------------------------------------------------------------------------------------------


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
  target, reported = conversion.draw_reporting(distinct, 4, 2, seed=7)
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
  with open(USERS, newline="") as f:
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


def test_excerpt_report_matches_the_records(excerpt):
  converted = conversion.convert(excerpt_config(excerpt, seed=1))
  report = converted.report
  for split in conversion.SPLITS:
    columns = converted.splits[split]
    got = report["splits"][split]
    rows = columns[schema_lib.DAY].size
    assert got["rows"] == rows
    for j, a in enumerate(ACTIONS):
      target = columns[schema_lib.TARGET_ACTION] == j
      assert got["target_share"][a] == pytest.approx(target.mean(), abs=1e-12)
      assert got["true_positive_rate"][a] == pytest.approx(
        columns["true_label_" + a].mean(), abs=1e-12
      )
      assert got["reported_positive_rate"][a] == pytest.approx(
        columns["label_" + a].mean(), abs=1e-12
      )
  assert report["splits"]["all"]["rows"] == 200
  assert sum(report["videos"]["target_share"].values()) == pytest.approx(1.0)
  assert conversion.format_report(report).count("\n| ") == len(ACTIONS) + 1
