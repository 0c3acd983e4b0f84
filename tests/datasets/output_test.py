"""Tests of writing a dataset: the stale-shard guard, the shards, the schema and the report."""

import dataclasses
import json
import os

import numpy as np
import pytest

from kaml_tf import schema as schema_lib
from kaml_tf.datasets import fields
from kaml_tf.datasets import output
from kaml_tf.logs import records

SCHEMA = schema_lib.Schema(
  actions=("a",),
  sparse_features=(schema_lib.SparseFeature("x", "int64", 100, 4),),
  dense_features=(),
)


def rows(start, n):
  """n records whose fields all hold start, start + 1, ... (so rows are recognisable)."""
  values = np.arange(start, start + n, dtype=np.int64)
  return {k: values for k in SCHEMA.record_dtypes()}


@dataclasses.dataclass(frozen=True)
class _Config:
  seed: int = fields.field(0, "A seed.")

  def to_dict(self):
    return {"seed": self.seed}


@pytest.mark.parametrize(
  "num_shards,compression,match",
  [(0, "", "num_shards must be >= 1, got 0"), (1, "gzip", "compression must be '' or 'GZIP'")],
)
def test_check_destination_refuses_bad_arguments(tmp_path, num_shards, compression, match):
  with pytest.raises(ValueError, match=match):
    output.check_destination(str(tmp_path), num_shards, compression)


def test_check_destination_refuses_shards_of_another_run(tmp_path):
  output.check_destination(str(tmp_path / "missing"), 2, "")  # Nothing there yet.
  for name in ("train-00000-of-00002.tfrecord", "test-00001-of-00002.tfrecord", "notes.txt"):
    (tmp_path / name).write_text("")
  output.check_destination(str(tmp_path), 2, "")  # Shards this run overwrites.
  with pytest.raises(
    FileExistsError,
    match=r"holds log shards of another run \(test-00001-of-00002.tfrecord, "
    r"train-00000-of-00002.tfrecord\)",
  ):
    output.check_destination(str(tmp_path), 2, "GZIP")
  (tmp_path / "train-00000-of-00002.tfrecord").unlink()
  with pytest.raises(FileExistsError, match=r"\(test-00001-of-00002.tfrecord\); remove them"):
    output.check_destination(str(tmp_path), 1, "")


def test_write_splits_rotates_batches_over_each_split_s_shards(tmp_path):
  batches = [("train", rows(0, 3)), ("test", rows(10, 1)), ("train", rows(3, 2))]
  files = output.write_splits(SCHEMA, str(tmp_path / "out"), batches, num_shards=2)
  assert files == {
    "train": records.shard_paths(str(tmp_path / "out" / "train"), 2),
    "test": records.shard_paths(str(tmp_path / "out" / "test"), 2),
  }

  def read(path):
    return records.read_columns([path], SCHEMA)["x"].tolist()

  assert [read(p) for p in files["train"]] == [[0, 1, 2], [3, 4]]
  assert [read(p) for p in files["test"]] == [[10], []]


def test_write_splits_writes_nothing_when_a_batch_fails(tmp_path):
  def batches():
    yield "train", rows(0, 3)
    raise RuntimeError("the generator broke")

  with pytest.raises(RuntimeError, match="broke"):
    output.write_splits(SCHEMA, str(tmp_path), batches(), num_shards=2)
  assert os.listdir(tmp_path) == []  # No shard, and no temporary file left behind.


def test_spread_and_blocks_by_hand():
  columns = {"x": np.arange(10)}
  # linspace(0, 10, 4) = 0, 3.3, 6.7, 10 -> 0, 3, 6, 10.
  assert [p["x"].tolist() for p in output.spread(columns, 3)] == [
    [0, 1, 2],
    [3, 4, 5],
    [6, 7, 8, 9],
  ]
  # Fewer rows than parts: the empty slices are skipped.
  assert [p["x"].tolist() for p in output.spread({"x": np.arange(2)}, 4)] == [[0], [1]]
  # ceil(10 / 3) = 4 rows a block.
  assert [b["x"].tolist() for b in output.blocks(columns, 3)] == [
    [0, 1, 2, 3],
    [4, 5, 6, 7],
    [8, 9],
  ]
  assert list(output.blocks({"x": np.arange(0)}, 2)) == []


def test_write_summary_writes_the_schema_then_the_report(tmp_path):
  files = {
    "train": ["/x/train-00000-of-00001.tfrecord.gz"],
    "test": ["/x/test-00000-of-00001.tfrecord.gz"],
  }
  summary = output.write_summary(
    str(tmp_path), "data.json", SCHEMA, _Config(seed=4), {"rows": 3}, files, 1, "GZIP"
  )
  assert summary == {
    "config": {"seed": 4},
    "output": {
      "num_shards": 1,
      "compression": "gzip",
      "schema_fingerprint": SCHEMA.fingerprint(),
      "train_files": ["train-00000-of-00001.tfrecord.gz"],
      "test_files": ["test-00000-of-00001.tfrecord.gz"],
    },
    "report": {"rows": 3},
  }
  assert sorted(os.listdir(tmp_path)) == ["data.json", "schema.json"]
  text = (tmp_path / "data.json").read_text()
  assert text == json.dumps(summary, indent=2, sort_keys=True) + "\n"
  assert schema_lib.Schema.load(str(tmp_path / "schema.json")) == SCHEMA
