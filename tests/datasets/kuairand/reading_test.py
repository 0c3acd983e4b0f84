"""Tests of reading the KuaiRand inputs: values, ids, the user join and the error messages."""

import gzip
import pathlib

import numpy as np
import pyarrow as pa
import pytest

from kaml_tf.datasets.kuairand import reading
from kaml_tf.datasets.kuairand.config import ConversionError
from tests.datasets.kuairand.conftest import ACTIONS
from tests.datasets.kuairand.conftest import LOG_HEADER
from tests.datasets.kuairand.conftest import TINY_ROWS
from tests.datasets.kuairand.conftest import TINY_USERS
from tests.datasets.kuairand.conftest import replace_cell
from tests.datasets.kuairand.conftest import write_tiny_log


def test_read_log_by_hand(tiny):
  log = reading.read_log(tiny[0], ACTIONS)
  columns = list(zip(*TINY_ROWS))
  for name, index in (("user_id", 0), ("video_id", 1), ("date", 2), ("hourmin", 3)):
    np.testing.assert_array_equal(log[name], columns[index], err_msg=name)
  np.testing.assert_array_equal(log["time_ms"], columns[4])
  np.testing.assert_array_equal(log["label"], columns[8])  # like
  np.testing.assert_array_equal(log["is_comment"], columns[6])
  assert "play_time_ms" not in log and "is_click" not in log
  with_play_time = reading.read_log(tiny[0], ("click",), play_time_features=True)
  np.testing.assert_array_equal(with_play_time["is_click"], [1] * 5)
  np.testing.assert_array_equal(with_play_time["duration_ms"], [20] * 5)


def test_dates_to_days_counts_from_the_first_date():
  days, first = reading.dates_to_days(np.array([20220410, 20220331, 20220401]), "log.tsv")
  np.testing.assert_array_equal(days, [10, 0, 1])  # Across the end of March.
  assert first.isoformat() == "2022-03-31"


def test_category_ids_sort_values_and_keep_zero_for_missing():
  ids, buckets = reading.category_ids(pa.chunked_array([["b", "a", None, "b", "B"]]))
  np.testing.assert_array_equal(ids, [3, 2, 0, 3, 1])  # "B" < "a" < "b" by code point.
  assert buckets == 4
  ids, buckets = reading.category_ids(pa.chunked_array([[10, -124, 10, 7]]))
  np.testing.assert_array_equal(ids, [3, 1, 3, 2])  # Numerically, not as text.
  assert buckets == 4


def test_read_user_features_by_hand(tiny):
  users = reading.read_user_features(tiny[1])
  np.testing.assert_array_equal(users.user_ids, [3, 7, 5])
  assert list(users.categorical) == ["user_active_degree", "onehot_feat4"]
  # Sorted values [UNKNOWN, full_active, high_active] and [1.0, 2.0]; an empty cell is 0.
  np.testing.assert_array_equal(users.categorical["user_active_degree"], [3, 2, 1])
  np.testing.assert_array_equal(users.categorical["onehot_feat4"], [2, 0, 1])
  assert users.num_buckets == {"user_active_degree": 4, "onehot_feat4": 3}
  assert list(users.numeric) == list(reading.USER_NUMERIC_COLUMNS)
  np.testing.assert_array_equal(users.numeric["fans_user_num"], [9, 0, 99])


def test_join_users_looks_up_each_row(tiny):
  users = reading.read_user_features(tiny[1])
  categorical, numeric, missing = reading.join_users(users, np.array([7, 3, 7]), "log.tsv")
  np.testing.assert_array_equal(categorical["user_active_degree"], [2, 3, 2])
  np.testing.assert_array_equal(numeric["register_days"], [100, 30, 100])
  assert not missing.any()
  categorical, numeric, missing = reading.join_users(
    users, np.array([3, 8]), "log.tsv", allow_missing=True
  )
  np.testing.assert_array_equal(missing, [False, True])
  np.testing.assert_array_equal(categorical["onehot_feat4"], [2, reading.MISSING_INDEX])
  assert np.isnan(numeric["follow_user_num"][1])


def test_missing_user_is_an_error_naming_user_row_and_files(tiny):
  users = reading.read_user_features(tiny[1])
  with pytest.raises(
    ConversionError, match=r"users.csv: no row for user_id 8 of log.tsv data row 2 \(line 3\)"
  ):
    reading.join_users(users, np.array([3, 8, 8, 9]), "log.tsv")


def test_gzipped_and_comma_separated_logs_read_the_same(tiny, tmp_path):
  plain = reading.read_log(tiny[0])
  text = pathlib.Path(tiny[0]).read_text()
  gzipped = tmp_path / "log.tsv.gz"
  gzipped.write_bytes(gzip.compress(text.encode()))
  comma = tmp_path / "log.csv"
  comma.write_text(text.replace("\t", ","))
  for path in (gzipped, comma):
    other = reading.read_log(str(path))
    assert other.keys() == plain.keys()
    for key, values in plain.items():
      np.testing.assert_array_equal(other[key], values, err_msg=f"{path} {key}")


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
  with pytest.raises(ConversionError, match=r"log.tsv: " + match):
    reading.read_log(tiny[0])


def test_missing_log_column_is_named(tmp_path):
  header = [h for h in LOG_HEADER if h != "is_comment"]
  path = write_tiny_log(tmp_path / "no_comment.tsv", header=header)
  with pytest.raises(
    ConversionError, match=r"no_comment.tsv: missing column\(s\) \['is_comment'\]"
  ):
    reading.read_log(path)


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
  with pytest.raises(ConversionError, match=r"users.csv: " + match):
    reading.read_user_features(tiny[1])


def test_missing_file_is_named(tiny):
  with pytest.raises(ConversionError, match=r"log.tsv.nope: KuaiRand log file not found"):
    reading.read_log(tiny[0] + ".nope")
