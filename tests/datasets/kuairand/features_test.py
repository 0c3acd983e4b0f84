"""Tests of the converted features: ids, days, dense values and their moments, the schema."""

import math

import numpy as np
import pytest

from kaml_tf import schema as schema_lib
from kaml_tf.datasets.kuairand import features as features_lib
from kaml_tf.datasets.kuairand import reading
from tests.datasets.kuairand.conftest import ACTIONS


def tiny_features(tiny, **kwargs):
  log = reading.read_log(tiny[0], ACTIONS, kwargs.get("play_time_features", False))
  users = reading.read_user_features(tiny[1])
  return features_lib.build_features(log, users, tiny[0], **kwargs)


def test_build_features_by_hand(tiny):
  features = tiny_features(tiny)
  # Input rows: users 7, 3, 7, 3, 7; videos 100, 200, 200, 100, 300 (see TINY_ROWS).
  assert list(features.ids) == ["user_id", "video_id", "hour", "user_active_degree", "onehot_feat4"]
  np.testing.assert_array_equal(features.ids["user_id"], [2, 1, 2, 1, 2])
  np.testing.assert_array_equal(features.ids["video_id"], [1, 2, 2, 1, 3])
  np.testing.assert_array_equal(features.ids["hour"], [13, 23, 0, 9, 15])
  np.testing.assert_array_equal(features.ids["user_active_degree"], [2, 3, 2, 3, 2])
  np.testing.assert_array_equal(features.ids["onehot_feat4"], [0, 2, 0, 2, 0])
  assert features.num_buckets == {
    "user_id": 3,
    "video_id": 4,
    "hour": 24,
    "user_active_degree": 4,
    "onehot_feat4": 3,
  }
  np.testing.assert_array_equal(features.day, [0, 1, 1, 3, 2])
  assert features.first_date.isoformat() == "2022-04-08"
  assert features.num_users == 2 and not features.missing_user.any()
  assert list(features.dense) == list(reading.USER_NUMERIC_COLUMNS)
  ln4 = math.log(4)
  np.testing.assert_allclose(features.dense["follow_user_num"], [ln4, 0, ln4, 0, ln4])
  np.testing.assert_array_equal(features.user_numeric["follow_user_num"], [3, 0, 3, 0, 3])


def test_play_time_features_are_optional_dense_log1p(tiny):
  assert not set(reading.PLAY_TIME_COLUMNS) & set(tiny_features(tiny).dense)
  kept = tiny_features(tiny, play_time_features=True)
  assert list(kept.dense) == list(reading.USER_NUMERIC_COLUMNS) + list(reading.PLAY_TIME_COLUMNS)
  np.testing.assert_allclose(kept.dense["play_time_ms"], [math.log(11)] * 5)


@pytest.mark.parametrize(
  "values,expected",
  [
    ([1.0, np.nan, 3.0], (2.0, 1.0)),  # NaN ignored; std of [1, 3] is 1.
    ([5.0, 5.0], (5.0, 1.0)),  # A constant: std falls back to 1.
    ([np.nan], (0.0, 1.0)),  # Nothing known.
    ([0.0, 4.0, 4.0, 4.0], (3.0, math.sqrt(3))),
  ],
)
def test_moments_by_hand(values, expected):
  assert features_lib.moments(np.array(values)) == pytest.approx(expected)


def test_schema_and_columns_use_the_train_moments(tiny):
  features = tiny_features(tiny)
  train = np.array([0, 2, 1])  # users 7, 7, 3: follow_user_num ln4, ln4, 0.
  moments = features_lib.dense_moments(features, train)
  ln4 = math.log(4)
  assert moments["follow_user_num"] == pytest.approx((2 / 3 * ln4, math.sqrt(2) / 3 * ln4))
  schema = features_lib.build_schema(ACTIONS, features, moments, embedding_dim=8)
  assert schema.actions == ACTIONS and schema.has_true_labels
  assert schema.sparse_features[1] == schema_lib.SparseFeature("video_id", "int64", 4, 8)
  assert schema.dense_features[0].mean == moments["follow_user_num"][0]
  columns = features_lib.feature_columns(features, np.array([4, 3]), moments)
  np.testing.assert_array_equal(columns["video_id"], [3, 1])
  assert columns["follow_user_num"].dtype == np.float32
  np.testing.assert_allclose(columns["follow_user_num"], [ln4, 0], rtol=1e-6)


def test_missing_dense_value_is_written_as_the_train_mean(tiny, tmp_path):
  users = tmp_path / "users_without_7.csv"
  users.write_text(
    "user_id,follow_user_num,fans_user_num,friend_user_num,register_days\n3,1,1,1,\n"
  )
  log = reading.read_log(tiny[0], ACTIONS)
  features = features_lib.build_features(
    log, reading.read_user_features(str(users)), tiny[0], allow_missing_users=True
  )
  np.testing.assert_array_equal(features.missing_user, [True, False, True, False, True])
  # register_days is empty for the one known user too: no row knows it.
  assert np.isnan(features.dense["register_days"]).all()
  moments = features_lib.dense_moments(features, np.arange(5))
  assert moments["register_days"] == (0.0, 1.0)
  assert moments["fans_user_num"] == pytest.approx((math.log(2), 1.0))
  columns = features_lib.feature_columns(features, np.arange(5), moments)
  np.testing.assert_allclose(columns["fans_user_num"], [math.log(2)] * 5, rtol=1e-6)
  np.testing.assert_array_equal(columns["register_days"], [0.0] * 5)
