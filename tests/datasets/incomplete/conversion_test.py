"""End-to-end tests of the protocol on tiny tables, with a hand-written schema."""

import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kaml_tf import schema as schema_lib
from kaml_tf.datasets.incomplete import conversion
from kaml_tf.datasets.incomplete.config import IncompleteConfig
from kaml_tf.datasets.incomplete.errors import ConversionError
from kaml_tf.logs import records

ACTIONS = ("buy", "click")
# 10 rows: groups "x" / "y" / "z" (strings), a time t in seconds (day = t // 86400), labels.
CSV = """user,price,shop,t,buy,click
1,2.5,x,0,1,1
2,3.5,y,86400,0,1
3,1.0,x,90000,1,0
1,,z,172800,0,0
2,4.0,y,172801,1,1
3,5.0,x,259200,0,1
1,6.0,z,259300,1,0
2,7.0,x,345600,1,1
3,8.0,y,345601,0,0
1,9.0,z,432000,1,1
"""
SCHEMA = schema_lib.Schema(
  actions=ACTIONS,
  sparse_features=(schema_lib.SparseFeature(name="user", num_buckets=10, embedding_dim=4),),
  dense_features=(schema_lib.DenseFeature(name="price", mean=5.0, std=2.0),),
  has_true_labels=False,
)


@pytest.fixture
def table(tmp_path):
  path = tmp_path / "table.csv"
  path.write_text(CSV)
  return str(path)


class Inferred:
  """A schema function that keeps the tables it was given."""

  def __init__(self, schema=SCHEMA):
    self.schema, self.tables = schema, []

  def __call__(self, t: pa.Table) -> schema_lib.Schema:
    self.tables.append(t)
    return self.schema


def config(path, **overrides):
  values = dict(input_path=path, labels=ACTIONS, group="shop", reported_extra=0, seed=5)
  values.update(overrides)
  return IncompleteConfig(**values)


def expected_order(key, seed=5, n=2):
  """The group's permutation of the actions, computed straight from its SeedSequence."""
  return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key)).permutation(n)


def string_key(value):
  data = value.encode("utf-8")
  return (2, len(data), int.from_bytes(data, "big"))


def test_time_split_draws_days_and_records_by_hand(table):
  infer = Inferred()
  converted = conversion.convert(config(table, time="t", test_fraction=0.3), infer)
  targets = {g: int(expected_order(string_key(g))[0]) for g in "xyz"}
  # cut = round(0.7 * 10) = 7: boundary t = 345600, rows 7..9 are test; days t // 86400.
  train, test = converted.splits["train"], converted.splits["test"]
  np.testing.assert_array_equal(converted.source_rows["train"], np.arange(7))
  np.testing.assert_array_equal(converted.source_rows["test"], [7, 8, 9])
  np.testing.assert_array_equal(train["day"], [0, 1, 1, 2, 2, 3, 3])
  np.testing.assert_array_equal(test["day"], [4, 4, 5])
  shops = "xyxzyxzxyz"
  # String groups: ad_task_id is the index among the sorted values x, y, z.
  np.testing.assert_array_equal(
    np.concatenate([train["ad_task_id"], test["ad_task_id"]]), ["xyz".index(s) for s in shops]
  )
  target = np.array([targets[s] for s in shops])
  np.testing.assert_array_equal(
    np.concatenate([train["target_action"], test["target_action"]]), target
  )
  buy = np.array([1, 0, 1, 0, 1, 0, 1, 1, 0, 1])
  click = np.array([1, 1, 0, 0, 1, 1, 0, 1, 0, 1])
  for j, (a, truth) in enumerate(zip(ACTIONS, (buy, click))):
    got_true = np.concatenate([train["true_label_" + a], test["true_label_" + a]])
    got = np.concatenate([train["label_" + a], test["label_" + a]])
    np.testing.assert_array_equal(got_true, truth)
    np.testing.assert_array_equal(got, truth * (target == j))  # K = 0: the target only.
  # Row 3's empty price is the schema's missing value (the mean).
  np.testing.assert_array_equal(train["price"], np.float32([2.5, 3.5, 1.0, 5.0, 4.0, 5.0, 6.0]))
  assert converted.schema == SCHEMA.__class__(**{**SCHEMA.__dict__, "has_true_labels": True})
  # The schema function saw the canonical train rows only, group and time left out.
  seen = infer.tables[0]
  assert seen.num_rows == 7
  assert seen.column_names == [
    "ad_task_id",
    "target_action",
    "day",
    "user",
    "price",
    "label_buy",
    "label_click",
    "true_label_buy",
    "true_label_click",
  ]
  report = converted.report
  assert report["split"] == {"by": "time", "test_fraction": 0.3, "boundary": 345600}
  assert report["days"]["train_days"] == [0, 3] and report["days"]["test_days"] == [4, 5]
  assert report["positives"]["test"]["buy"] == {
    "true": 2,
    "reported": int(np.sum((buy * (target == 0))[7:])),
  }
  assert report["groups"]["count"] == 3 and report["seed"] == 5


def test_reported_extra_reports_the_first_k_plus_one_of_the_order(table):
  converted = conversion.convert(config(table, reported_extra=1), Inferred())
  # K = N - 1: every label is reported, so the reported labels are the complete ones.
  for split in ("train", "test"):
    for a in ACTIONS:
      np.testing.assert_array_equal(
        converted.splits[split]["label_" + a], converted.splits[split]["true_label_" + a]
      )


def test_random_split_and_pseudo_days(table):
  converted = conversion.convert(config(table, pseudo_days=3, test_fraction=0.3), Inferred())
  rng = np.random.default_rng(np.random.SeedSequence(5, spawn_key=(4,)))
  order = rng.permutation(10)  # order[r] is the row of rank r.
  # Ranks 0..6 train, in rank order, pseudo-day floor(rank * 3 / 7); ranks 7..9 test, day 3.
  np.testing.assert_array_equal(converted.source_rows["train"], order[:7])
  np.testing.assert_array_equal(converted.source_rows["test"], order[7:])
  np.testing.assert_array_equal(converted.splits["train"]["day"], [0, 0, 0, 1, 1, 2, 2])
  np.testing.assert_array_equal(converted.splits["test"]["day"], [3, 3, 3])
  assert converted.report["split"]["by"] == "random"
  assert "floor(rank * 3 / train rows)" in converted.report["days"]["rule"]
  other = conversion.convert(config(table, pseudo_days=3, test_fraction=0.3, seed=6), Inferred())
  assert not np.array_equal(other.source_rows["train"], converted.source_rows["train"])


def test_int_groups_keep_their_raw_id_and_key(tmp_path):
  path = str(tmp_path / "t.parquet")
  pq.write_table(
    pa.table({"g": [40, 7, 40, 7, 9], "user": [1, 2, 3, 4, 5], "buy": [1, 0, 0, 1, 1]}), path
  )
  schema = schema_lib.Schema(
    actions=("buy",), sparse_features=(schema_lib.SparseFeature(name="user"),)
  )
  converted = conversion.convert(
    IncompleteConfig(input_path=path, labels=("buy",), group="g", reported_extra=0),
    Inferred(schema),
  )
  rows = np.concatenate([converted.source_rows[s] for s in ("train", "test")])
  ids = np.concatenate([converted.splits[s]["ad_task_id"] for s in ("train", "test")])
  np.testing.assert_array_equal(ids, np.array([40, 7, 40, 7, 9])[rows])


def test_write_incomplete_writes_logs_schema_and_report(tmp_path, table):
  out = tmp_path / "out"
  summary = conversion.write_incomplete(config(table, time="t"), Inferred(), str(out), 2)
  assert sorted(os.listdir(out)) == [
    "incomplete.json",
    "schema.json",
    "test-00000-of-00002.tfrecord",
    "test-00001-of-00002.tfrecord",
    "train-00000-of-00002.tfrecord",
    "train-00001-of-00002.tfrecord",
  ]
  schema = schema_lib.Schema.load(str(out / "schema.json"))
  assert schema.has_true_labels
  columns = records.read_columns(str(out / "train-*"), schema)
  expected = conversion.convert(config(table, time="t"), Inferred())
  for key, values in expected.splits["train"].items():
    np.testing.assert_array_equal(columns[key], values, err_msg=key)
  with open(out / "incomplete.json") as f:
    assert json.load(f) == json.loads(json.dumps(summary))
  assert IncompleteConfig.from_dict(summary["config"]) == config(table, time="t")


@pytest.mark.parametrize(
  "edit,match",
  [
    (("buy", "1", "2"), r"label column 'buy', data row 1 \(line 2\): expected 0 or 1, got 2"),
    (("shop", "y", ""), r"group column 'shop', data row 2 \(line 3\): empty value"),
    (("click", "1", "yes"), r"label column 'click', data row 1 \(line 2\): expected 0 or 1"),
  ],
)
def test_bad_table_names_the_column_and_writes_nothing(tmp_path, edit, match):
  column, old, new = edit
  lines = CSV.splitlines()
  header = lines[0].split(",")
  for i in range(1, len(lines)):
    cells = lines[i].split(",")
    if cells[header.index(column)] == old:
      cells[header.index(column)] = new
      lines[i] = ",".join(cells)
      break
  path = tmp_path / "bad.csv"
  path.write_text("\n".join(lines) + "\n")
  out = tmp_path / "out"
  with pytest.raises(ConversionError, match=match):
    conversion.write_incomplete(config(str(path)), Inferred(), str(out))
  assert not out.exists() or not os.listdir(out)


@pytest.mark.parametrize(
  "overrides,match",
  [
    (dict(labels=("buy", "view")), r"missing column\(s\) \['view'\]"),
    (dict(group="store"), r"missing column\(s\) \['store'\]"),
    (dict(time="when"), r"missing column\(s\) \['when'\]"),
  ],
)
def test_missing_named_column_is_named_and_nothing_written(tmp_path, table, overrides, match):
  out = tmp_path / "out"
  with pytest.raises(ConversionError, match=match):
    conversion.write_incomplete(config(table, **overrides), Inferred(), str(out))
  assert not out.exists() or not os.listdir(out)


def test_a_column_named_like_a_written_field_is_refused(tmp_path):
  path = tmp_path / "t.csv"
  path.write_text("shop,day,buy\nx,1,0\ny,2,1\n")
  with pytest.raises(ConversionError, match="column 'day' has the name of a field"):
    conversion.convert(IncompleteConfig(str(path), ("buy",), "shop", 0), Inferred())


def test_schema_of_other_actions_is_refused(table):
  other = schema_lib.Schema(actions=("buy",))
  with pytest.raises(ConversionError, match=r"schema's actions \['buy'\]"):
    conversion.convert(config(table), Inferred(other))
