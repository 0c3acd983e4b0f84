"""Tests of schema inference (`kaml_tf.logs.inference`) on tiny tables with known answers."""

import kaml_tf  # noqa: F401
import numpy as np
import pyarrow as pa
import pytest

from kaml_tf import configs
from kaml_tf import schema as schema_lib
from kaml_tf.logs import inference


def _table(**override):
  columns = {
    "ad_task_id": pa.array([1, 1, 2, 2, 3, 3, 4, 4], pa.int64()),
    "target_action": pa.array([0, 0, 1, -1, 0, 1, 0, 0], pa.int64()),
    "day": pa.array([0, 0, 1, 1, 2, 2, 3, 3], pa.int64()),
    "label_buy": [0, 1, 0, 0, 1, 0, 0, 0],
    "label_click": [1, 1, 0, 1, 0, 0, 1, 0],
    "user": pa.array([5, 6, 7, 5, 6, 7, 5, 9], pa.int64()),
    "city": ["a", "b", "a", "b", "a", "c", "a", "a"],
    "price": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 100.0],
  }
  columns.update(override)
  return pa.table({k: v for k, v in columns.items() if v is not None})


def _config(**kwargs):
  return inference.InferenceConfig(actions=("buy", "click"), **kwargs)


def _by_name(schema):
  return {f.name: f for f in schema.sparse_features + schema.dense_features}


def test_canonical_table_gives_the_known_schema():
  result = inference.infer(_table(), _config())
  schema = result.schema
  assert schema.actions == ("buy", "click")
  assert [f.name for f in schema.sparse_features] == ["ad_task_id", "user", "city"]
  features = _by_name(schema)
  # 4 ad tasks (ids 1..4) and 4 users (5, 6, 7, 9): at most 100 distinct -> vocabularies.
  assert features["ad_task_id"].vocabulary == (1, 2, 3, 4)
  assert features["user"].vocabulary == (5, 6, 7, 9)
  assert features["city"].vocabulary == ("a", "b", "c")
  assert features["city"].dtype == "string"
  # Width round(6 * n ** 0.25): n = 4 -> round(8.49) = 8; n = 3 -> round(7.90) = 8.
  assert features["user"].embedding_dim == 8
  assert features["city"].embedding_dim == 8
  price = np.array([1, 2, 3, 4, 5, 6, 7, 100], np.float64)
  assert features["price"].mean == pytest.approx(price.mean())
  assert features["price"].std == pytest.approx(price.std())
  assert features["price"].transform == "identity"
  assert not schema.has_true_labels
  assert result.report["rows"] == 8
  assert result.report["columns"]["city"]["cardinality"] == 3
  assert result.report["columns"]["label_buy"]["rate"] == 0.25
  assert result.report["columns"]["target_action"]["encoding"] == "indices"
  assert result.report["columns"]["day"]["days"] == [0, 3]
  assert result.report["mapping"] == {
    "ad_task_id": "ad_task_id",
    "target_action": "target_action",
    "day": "day",
    "label_buy": "label_buy",
    "label_click": "label_click",
  }


def test_buckets_follow_the_distinct_count():
  table = _table(
    user=pa.array([0, 10, 20, 30, 40, 50, 60, 70], pa.int64()),
    city=["a", "b", "c", "d", "e", "f", "g", "h"],
  )
  features = _by_name(inference.infer(table, _config(vocabulary_max=3)).schema)
  # 8 distinct: budget ceil(2 * 8) = 16 < max id + 1 = 71 -> 16 buckets.
  assert features["user"].num_buckets == 16 and not features["user"].vocabulary
  assert features["city"].num_buckets == 16
  # Ad tasks 1..4: max + 1 = 5 <= ceil(2 * 4) = 8 -> every id its own bucket.
  assert features["ad_task_id"].num_buckets == 5


def test_embedding_width_rule_and_clipping():
  config = _config()
  assert inference.embedding_dim(16, config) == 12  # 6 * 2
  assert inference.embedding_dim(1, config) == 6
  assert inference.embedding_dim(10**8, config) == 64  # 6 * 100 clipped
  assert inference.embedding_dim(0, _config(embedding_min=8)) == 8


def test_log1p_auto_transforms_a_skewed_column_only():
  result = inference.infer(
    _table(tame=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]), _config(log1p="auto")
  )
  features = _by_name(result.schema)
  price = np.array([1, 2, 3, 4, 5, 6, 7, 100], np.float64)
  centred = price - price.mean()
  skewness = np.mean(centred**3) / np.mean(centred**2) ** 1.5  # 2.25 > 2
  assert result.report["columns"]["price"]["skewness"] == pytest.approx(skewness)
  assert features["price"].transform == "log1p"
  assert features["price"].mean == pytest.approx(np.log1p(price).mean())
  assert features["price"].std == pytest.approx(np.log1p(price).std())
  assert features["tame"].transform == "identity"  # symmetric: skewness 0


def test_constant_columns_are_dropped_with_a_warning():
  table = _table(const=[3] * 8, flat=[0.5] * 8, empty=pa.nulls(8, pa.float64()))
  result = inference.infer(table, _config())
  assert "const" not in result.schema.feature_names
  assert result.report["dropped_constant"] == ["const", "empty", "flat"]
  assert "column 'const' dropped: it is constant" in result.warnings
  assert result.report["columns"]["empty"]["null_share"] == 1.0


def test_list_column_becomes_multivalued_with_the_longest_list():
  tags = pa.array([[1, 2], [3], [], None, [1, 2, 3], [4], [5], [1]], pa.list_(pa.int64()))
  result = inference.infer(_table(tags=tags), _config(combiner="sqrtn"))
  feature = _by_name(result.schema)["tags"]
  assert feature.max_values == 3 and feature.combiner == "sqrtn"
  assert feature.vocabulary == (1, 2, 3, 4, 5)
  entry = result.report["columns"]["tags"]
  assert entry["max_values_rule"] == "the longest list observed"
  assert entry["null_share"] == 0.125


def test_list_column_with_fixed_max_values_counts_longer_lists():
  tags = pa.array([["x", "y", "z"], ["x"], ["", "y"]] + [["x"]] * 5, pa.list_(pa.string()))
  result = inference.infer(_table(tags=tags), _config(max_values=2))
  feature = _by_name(result.schema)["tags"]
  assert feature.max_values == 2 and feature.dtype == "string"
  assert feature.vocabulary == ("x", "y", "z")  # the pad value "" is no id
  entry = result.report["columns"]["tags"]
  assert entry["lists_longer_than_max_values"] == 1
  assert entry["pad_value_ids"] == 1


def test_single_long_lists_still_get_two_values():
  tags = pa.array([[i] for i in range(8)], pa.list_(pa.int64()))
  assert _by_name(inference.infer(_table(tags=tags), _config()).schema)["tags"].max_values == 2


def test_undecidable_columns_are_said():
  table = _table(
    vectors=pa.array([[0.5]] * 8, pa.list_(pa.float64())),
    when=pa.array(np.arange(8).astype("datetime64[s]")),
    label_other=[0] * 8,
  )
  result = inference.infer(table, _config(ignore=("label_other",)))
  assert result.report["undecided"] == ["vectors", "when"]
  assert result.report["columns"]["label_other"]["role"] == "ignored"
  assert "only lists of ids" in result.report["columns"]["vectors"]["reason"]


def test_a_key_field_name_among_features_is_left_out():
  table = _table(tgt=pa.array([0, 0, 1, -1, 0, 1, 0, 0], pa.int64()))
  result = inference.infer(table, _config(target="tgt"))
  assert result.report["undecided"] == ["target_action"]
  assert "target_action" not in result.schema.feature_names


def test_true_labels_for_every_action():
  table = _table(true_label_buy=[1] * 8, true_label_click=[0, 1] * 4)
  result = inference.infer(table, _config())
  assert result.schema.has_true_labels
  assert result.report["mapping"]["true_label_click"] == "true_label_click"


def test_true_labels_of_some_actions_only_are_not_used():
  result = inference.infer(_table(true_label_buy=[1] * 8), _config())
  assert not result.schema.has_true_labels
  assert result.report["undecided"] == ["true_label_buy"]


def test_foreign_names_targets_by_name_and_timestamps():
  table = _table(
    ad_task_id=None,
    target_action=None,
    day=None,
    label_buy=None,
    campaign=pa.array([1, 1, 2, 2, 3, 3, 4, 4], pa.int64()),
    goal=["buy", "buy", "click", "view", "buy", "click", "view", "buy"],
    ts_ms=pa.array([0, 86_399_999, 86_400_000, 2, 3 * 86_400_000, 5, 6, 7], pa.int64()),
    bought=[0, 1, 0, 0, 1, 0, 0, 0],
    true_bought=[1] * 8,
    true_label_click=[0] * 8,
  )
  config = inference.InferenceConfig(
    actions=("buy=bought", "click"),
    ad_task="campaign",
    target="goal",
    timestamp="ts_ms",
    timestamp_unit="ms",
  )
  result = inference.infer(table, config)
  assert result.schema.has_true_labels
  assert [f.name for f in result.schema.sparse_features][0] == "ad_task_id"
  assert result.report["mapping"] == {
    "ad_task_id": "campaign",
    "target_action": "goal",
    "day": "ts_ms",
    "label_buy": "bought",
    "label_click": "label_click",
    "true_label_buy": "true_bought",
    "true_label_click": "true_label_click",
  }
  goal = result.report["columns"]["goal"]
  assert goal["encoding"] == "names" and goal["unknown_names"] == {"view": 2}
  assert result.report["columns"]["ts_ms"]["days"] == [0, 3]


def test_timestamp_days_floor_in_utc():
  column = pa.chunked_array([pa.array([-1, 0, 86399, 86400], pa.int64())])
  assert inference.timestamp_days(column, "s", "ts").tolist() == [-1, 0, 0, 1]
  stamps = pa.chunked_array([pa.array(np.array([86400, 172799], "datetime64[s]"))])
  assert inference.timestamp_days(stamps, "s", "ts").tolist() == [1, 1]


@pytest.mark.parametrize(
  "override, config, message",
  [
    ({"label_buy": [0, 2, 0, 0, 0, 0, 0, 0]}, {}, "column 'label_buy' (label of buy)"),
    ({"label_buy": ["0"] * 8}, {}, "column 'label_buy' (label of buy): labels must be 0/1"),
    ({"label_click": pa.array([0, None] * 4)}, {}, "column 'label_click' (label of click): 4 null"),
    ({"ad_task_id": pa.array([1, None] * 4)}, {}, "column 'ad_task_id' (ad task): 4 null"),
    ({"ad_task_id": ["a"] * 8}, {}, "column 'ad_task_id' (--ad_task): ad task ids must be"),
    ({"target_action": pa.array([2] * 8)}, {}, "column 'target_action' (target): 2 in row 0"),
    ({"day": [0.5] * 8}, {}, "column 'day' (day): expected integer day indices"),
    ({}, {"ad_task": "campaign"}, "no column 'campaign' (--ad_task)"),
    ({"label_click": None}, {}, "no column 'label_click' (--log_actions)"),
    ({}, {"timestamp": "ts"}, "no column 'ts' (--timestamp)"),
  ],
)
def test_bad_input_names_the_column(override, config, message):
  with pytest.raises(
    inference.InferenceError, match=message.replace("(", r"\(").replace(")", r"\)")
  ):
    inference.infer(_table(**override), _config(**config))


def test_config_errors_name_the_field():
  with pytest.raises(configs.ConfigError, match="actions"):
    inference.InferenceConfig()
  with pytest.raises(configs.ConfigError, match="actions: names must be distinct"):
    inference.InferenceConfig(actions=("a", "a=x"))
  with pytest.raises(configs.ConfigError, match="max_values"):
    _config(max_values=1)


def test_action_columns_default_to_label_prefix():
  config = inference.InferenceConfig(actions=["buy", "click = clicked"])
  assert config.label_columns == (("buy", "label_buy"), ("click", "clicked"))
  assert config.action_names == ("buy", "click")
  assert isinstance(config.actions, tuple)


def test_inferred_schema_round_trips_through_json():
  tags = pa.array([[1, 2], [3]] * 4, pa.list_(pa.int64()))
  schema = inference.infer(_table(tags=tags), _config(log1p="auto")).schema
  assert schema_lib.Schema.from_dict(schema.to_dict()) == schema
