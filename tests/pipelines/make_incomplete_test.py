"""End-to-end tests of `pipelines/make_incomplete.py`, in-process on a tiny Parquet table.

Needs `kaml_tf.logs.inference` (schema inference), which comes from another branch.
"""

import json
import os

from absl import app
from absl import flags
from absl.testing import flagsaver
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kaml_tf import schema as schema_lib
from kaml_tf.datasets.incomplete import conversion
from kaml_tf.logs import records
from pipelines import kuairand  # noqa: F401  (both jobs' flags live in one process)
from pipelines import make_incomplete


@pytest.fixture(autouse=True)
def parsed_flags():
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


@pytest.fixture
def table(tmp_path):
  rng = np.random.default_rng(0)
  n = 200
  path = str(tmp_path / "table.parquet")
  pq.write_table(
    pa.table(
      {
        "campaign": rng.choice(["c1", "c2", "c3", "c4"], n),
        "user": rng.integers(0, 50, n),
        "price": rng.gamma(2.0, 10.0, n),
        "ts": np.sort(rng.integers(0, 10 * 86400, n)),
        "buy": rng.integers(0, 2, n),
        "cart": rng.integers(0, 2, n),
        "view": rng.integers(0, 2, n),
      }
    ),
    path,
  )
  return path


def run(output_dir, table, **overrides):
  values = dict(
    input=table,
    labels=["buy", "cart", "view"],
    group="campaign",
    output_dir=str(output_dir),
    reported_extra=1,
    seed=3,
  )
  values.update(overrides)
  with flagsaver.flagsaver(**values):
    make_incomplete.main(["make_incomplete"])
  with open(os.path.join(output_dir, conversion.REPORT_FILE)) as f:
    return json.load(f)


@pytest.mark.parametrize("time", [None, "ts"])
def test_writes_logs_schema_and_report(tmp_path, table, time):
  summary = run(tmp_path, table, time=time)
  schema = schema_lib.Schema.load(str(tmp_path / "schema.json"))
  assert schema.actions == ("buy", "cart", "view") and schema.has_true_labels
  assert "user" in schema.feature_names and "campaign" not in schema.feature_names
  train = records.read_columns(str(tmp_path / "train-*"), schema)
  test = records.read_columns(str(tmp_path / "test-*"), schema)
  assert len(train["day"]) + len(test["day"]) == 200
  assert summary["report"]["split"]["by"] == ("time" if time else "random")
  assert train["day"].max() < test["day"].min() or time
  assert summary["report"]["seed"] == 3
  # Each row's reported labels: its true ones on the 1 + K reported actions only.
  for a in schema.actions:
    assert np.all(train["label_" + a] <= train["true_label_" + a])


def test_same_seed_same_bytes(tmp_path, table):
  run(tmp_path / "a", table)
  run(tmp_path / "b", table)
  for name in ("train-00000-of-00001.tfrecord", "test-00000-of-00001.tfrecord", "schema.json"):
    assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.parametrize(
  "overrides,match",
  [
    (dict(reported_extra=3), r"--reported_extra: must be an integer in \[0, 2\]"),
    (dict(labels=["buy", "buy"]), "--labels: must not repeat a column"),
    (dict(test_fraction=1.0), "--test_fraction: must be a number in"),
    (dict(group=""), "--group is required"),
  ],
)
def test_bad_flag_names_the_flag(tmp_path, table, overrides, match):
  with pytest.raises(app.UsageError, match=match):
    run(tmp_path / "out", table, **overrides)
  assert not (tmp_path / "out").exists()


def test_missing_column_is_named_and_nothing_written(tmp_path, table):
  with pytest.raises(conversion.ConversionError, match=r"missing column\(s\) \['like'\]"):
    run(tmp_path / "out", table, labels=["buy", "like"])
  assert not (tmp_path / "out").exists()
