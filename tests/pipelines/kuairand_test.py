"""End-to-end tests of `pipelines/kuairand.py`, run in-process on 200 rows of the real log."""

import csv
import gzip
import json
import os
import pathlib

from absl import app
from absl import flags
from absl.testing import flagsaver
import numpy as np
import pytest

from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.datasets.kuairand import conversion
from pipelines import kuairand

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = REPO_ROOT / "data" / "kuairand"
LOG = DATA / "kuairand_27k_likehate_kcore15.tsv.gz"
USERS = DATA / "user_features_pure.csv.gz"


@pytest.fixture(autouse=True)
def parsed_flags():
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


@pytest.fixture(scope="module")
def excerpt(tmp_path_factory):
  """The header and first 200 rows of the real log, as a TSV in a temporary folder."""
  path = tmp_path_factory.mktemp("kuairand") / "excerpt.tsv"
  with gzip.open(LOG, "rt") as f:
    lines = [next(f) for _ in range(201)]
  path.write_text("".join(lines))
  return str(path)


def run(output_dir, log, users=str(USERS), **overrides):
  """Runs the job's `main` with the given flags; returns conversion.json."""
  values = dict(log=log, user_features=users, output_dir=str(output_dir))
  values.update(overrides)
  with flagsaver.flagsaver(**values):
    kuairand.main(["kuairand"])
  with open(os.path.join(output_dir, conversion.REPORT_FILE)) as f:
    return json.load(f)


def file_bytes(folder):
  out = {}
  for name in sorted(os.listdir(folder)):
    with open(os.path.join(folder, name), "rb") as f:
      out[name] = f.read()
  return out


def test_writes_the_converted_records_schema_and_report(tmp_path, excerpt):
  summary = run(tmp_path, excerpt, seed=3, num_shards=2)
  assert sorted(os.listdir(tmp_path)) == [
    "conversion.json",
    "schema.json",
    "test-00000-of-00002.tfrecord",
    "test-00001-of-00002.tfrecord",
    "train-00000-of-00002.tfrecord",
    "train-00001-of-00002.tfrecord",
  ]
  config = conversion.ConversionConfig.from_dict(summary["config"])
  assert config == conversion.ConversionConfig(
    log_path=excerpt, user_features_path=str(USERS), seed=3
  )
  expected = conversion.convert(config)
  schema = schema_lib.Schema.load(str(tmp_path / "schema.json"))
  assert schema == expected.schema
  assert summary["output"]["schema_fingerprint"] == schema.fingerprint()
  assert summary["report"] == json.loads(json.dumps(expected.report))
  for split in conversion.SPLITS:
    paths = [str(tmp_path / name) for name in summary["output"][split + "_files"]]
    # Each shard holds one contiguous block of the split's time-ordered rows.
    assert all(len(records.read_columns([p], schema)[schema_lib.DAY]) > 0 for p in paths)
    columns = records.read_columns(paths, schema)
    assert set(columns) == set(schema.record_dtypes())
    for key, values in expected.splits[split].items():
      np.testing.assert_array_equal(columns[key], values, err_msg=f"{split} {key}")
  rows = summary["report"]["splits"]
  assert rows["train"]["rows"] + rows["test"]["rows"] == 200


@pytest.mark.parametrize("compression,suffix", [("none", ".tfrecord"), ("gzip", ".tfrecord.gz")])
def test_same_seed_same_bytes(tmp_path, excerpt, compression, suffix):
  outputs = {}
  for name, seed in (("a", 0), ("b", 0), ("c", 1)):
    run(tmp_path / name, excerpt, compression=compression, seed=seed)
    outputs[name] = file_bytes(tmp_path / name)
  shard = "train-00000-of-00001" + suffix
  assert shard in outputs["a"]
  assert outputs["a"] == outputs["b"]
  assert outputs["c"][shard] != outputs["a"][shard]


def test_protocol_flags_reach_the_config(tmp_path, excerpt):
  summary = run(
    tmp_path,
    excerpt,
    actions=["click", "long_view", "profile_enter"],
    extra_reported_actions=1,
    negative_keep_rate=0.5,
    sample_test_negatives=False,
    play_time_features=True,
    test_fraction=0.25,
  )
  config = summary["config"]
  assert config["actions"] == ["click", "long_view", "profile_enter"]
  assert (config["extra_reported_actions"], config["negative_keep_rate"]) == (1, 0.5)
  assert not config["sample_test_negatives"] and config["play_time_features"]
  schema = schema_lib.Schema.load(str(tmp_path / "schema.json"))
  assert schema.actions == ("click", "long_view", "profile_enter")
  assert "play_time_ms" in schema.feature_names
  report = summary["report"]
  assert report["videos"]["reported_actions_per_video"] == 2
  with open(excerpt) as f:
    times = np.array([int(r["time_ms"]) for r in csv.DictReader(f, delimiter="\t")])
  boundary = np.sort(times)[150]  # round(0.75 * 200)
  assert report["split"]["boundary_time_ms"] == boundary
  assert report["splits"]["train"]["rows_in"] == np.sum(times < boundary)
  test = report["negative_sampling"]["test"]
  assert not test["sampled"] and test["kept"] == test["all_zero_rows"]


@pytest.mark.parametrize(
  "overrides,match",
  [
    (dict(actions=["like", "share"]), r"--actions: unknown feedback\(s\) \['share'\]"),
    (dict(extra_reported_actions=4), r"--extra_reported_actions: must be an integer in \[0, 3\]"),
    (dict(negative_keep_rate=-0.1), "--negative_keep_rate: must be a number in"),
    (dict(test_fraction=0.0), "--test_fraction: must be a number in"),
    (dict(seed=-2), "--seed: must be an integer >= 0"),
    (dict(log=""), "--log is required"),
    (dict(user_features=""), "--user_features is required"),
    (dict(output_dir=""), "--output_dir is required"),
    (dict(num_shards=0), "--num_shards: must be >= 1"),
  ],
)
def test_bad_flag_names_the_flag(tmp_path, excerpt, overrides, match):
  out = tmp_path / "out"
  with pytest.raises(app.UsageError, match=match):
    run(overrides.pop("output_dir", out), overrides.pop("log", excerpt), **overrides)
  assert not out.exists()


def test_missing_user_fails_unless_allowed(tmp_path, excerpt):
  with open(excerpt) as f:
    first_user = next(csv.DictReader(f, delimiter="\t"))["user_id"]
  users = tmp_path / "users.csv"
  with gzip.open(USERS, "rt") as f:
    users.write_text("".join(line for line in f if line.split(",", 1)[0] != first_user))
  with pytest.raises(conversion.ConversionError, match=f"no row for user_id {first_user} "):
    run(tmp_path / "strict", excerpt, users=str(users))
  assert not (tmp_path / "strict").exists()
  summary = run(tmp_path / "lenient", excerpt, users=str(users), allow_missing_users=True)
  missing = summary["report"]["user_features"]
  assert missing["missing_users"] == 1 and missing["missing_user_rows"] > 0


def test_refuses_to_mix_with_shards_of_another_run(tmp_path, excerpt):
  run(tmp_path, excerpt, num_shards=2)
  with pytest.raises(FileExistsError, match="train-00000-of-00002.tfrecord"):
    run(tmp_path, excerpt, num_shards=1)
