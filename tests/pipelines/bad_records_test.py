"""Every job that reads logs names a malformed record, or skips and counts it when asked.

One copy of the shared small logs is broken: train shard 0 gets a label 2 at record 3, test
shard 0 a NaN dense value at record 2. Each job runs in-process twice: by default it fails with
an error naming file, record and field; with --skip_bad_records it finishes, logs the count and
writes it to its output metadata.
"""

import json
import os
import shutil

from absl.testing import flagsaver
import numpy as np
import pyarrow.parquet as pq
import pytest

from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.data import stats as stats_lib
from kaml_tf.logs import validation
from pipelines import compute_stats
from pipelines import evaluate
from pipelines import mask_report
from pipelines import train
from pipelines import validate_logs

TINY = dict(
  expert_units=["8"],
  num_experts=2,
  tower_units=["4"],
  embedding_dim=4,
  batch_size=128,
  shuffle_buffer=500,
  mask="base",
  hke=False,
  rank_gamma=1.0,
  stats="",
)


def _break(source, target, schema, breakage, record, broken_log):
  columns = records.read_columns(source, schema)
  broken_log(target, schema, columns, breakage, record)
  return len(columns[schema_lib.DAY])


@pytest.fixture(scope="module")
def broken(small_logs, tmp_path_factory):
  """The small logs with one bad train record and one bad test record."""
  from tests.conftest import write_broken_log  # pylint: disable=g-import-not-at-top

  out = str(tmp_path_factory.mktemp("broken"))
  schema = schema_lib.Schema.load(small_logs["schema"])
  shutil.copy(small_logs["schema"], out)
  train_files = records.list_files(small_logs["train"])
  test_files = records.list_files(small_logs["test"])
  rows = _break(
    train_files[0],
    os.path.join(out, os.path.basename(train_files[0])),
    schema,
    "bad_label",
    3,
    write_broken_log,
  )
  for path in train_files[1:] + test_files[1:]:
    shutil.copy(path, out)
    rows += len(records.read_columns(path, schema)[schema_lib.DAY]) if "train" in path else 0
  _break(
    test_files[0],
    os.path.join(out, os.path.basename(test_files[0])),
    schema,
    "nan",
    2,
    write_broken_log,
  )
  return {
    "schema": os.path.join(out, "schema.json"),
    "train": f"{out}/train-*",
    "test": f"{out}/test-*",
    "bad_train": os.path.join(out, os.path.basename(train_files[0])),
    "bad_test": os.path.join(out, os.path.basename(test_files[0])),
    "train_rows": rows,
    "label": schema.label_keys[-1],
    "dense": schema.dense_features[0].name,
    "dir": out,
  }


def _stats_flags(broken, output, skip):
  return dict(
    logs=broken["train"],
    schema=broken["schema"],
    window_days=28,
    end_day=None,
    output=output,
    skip_bad_records=skip,
  )


def test_statistics_job_names_the_record(broken, tmp_path):
  output = str(tmp_path / "stats.parquet")
  with flagsaver.flagsaver(**_stats_flags(broken, output, False)):
    with pytest.raises(validation.BadRecordError) as e:
      compute_stats.main(["compute_stats"])
  assert str(e.value).startswith(
    f"{broken['bad_train']}: record #3 field {broken['label']!r} is 2, expected 0 or 1"
  )
  assert not os.path.exists(output)


def test_statistics_job_skips_counts_and_records_it(broken, tmp_path):
  output = str(tmp_path / "stats.parquet")
  with flagsaver.flagsaver(**_stats_flags(broken, output, True)):
    compute_stats.main(["compute_stats"])
  meta = json.loads(pq.read_schema(output).metadata[b"kaml.stats"])
  assert meta["rows_read"] == broken["train_rows"] - 1
  assert meta["skipped_bad_records"]["total_records"] == 1
  assert meta["skipped_bad_records"]["by_reason"] == {"bad_label": 1}
  loaded = stats_lib.load_stats(output)
  assert loaded.skipped_bad_records == meta["skipped_bad_records"]


@pytest.mark.parametrize("skip", [False, True])
def test_mask_report_names_or_skips_a_bad_target(small_logs, tmp_path, broken_log, skip):
  # The report reads ad task and target only, so it is given a bad target.
  schema = schema_lib.Schema.load(small_logs["schema"])
  source = records.list_files(small_logs["train"])[0]
  logs = str(tmp_path / "logs.tfrecord")
  rows = _break(source, logs, schema, "bad_target", 1, broken_log)
  output = str(tmp_path / "table1.json")
  flags = dict(
    logs=logs,
    schema=small_logs["schema"],
    window_days=28,
    end_day=None,
    output=output,
    skip_bad_records=skip,
    stats=small_logs["stats"],
    alpha=[],
  )
  with flagsaver.flagsaver(**flags):
    if not skip:
      with pytest.raises(
        validation.BadRecordError, match="logs.tfrecord: record #1 field 'target_action' is 5"
      ):
        mask_report.main(["mask_report"])
      return
    mask_report.main(["mask_report"])
  with open(output) as f:
    report = json.load(f)
  assert report["samples"] == rows - 1
  assert report["skipped_bad_records"]["by_reason"] == {"bad_target": 1}


def test_training_names_the_record(broken, tmp_path):
  with flagsaver.flagsaver(
    schema=broken["schema"],
    train=broken["train"],
    model_dir=str(tmp_path / "m"),
    skip_bad_records=False,
    **TINY,
  ):
    with pytest.raises(
      validation.BadRecordError, match=f"record #3 field '{broken['label']}' is 2, expected 0 or 1"
    ):
      train.main([])


@pytest.fixture(scope="module")
def skipped_model(broken, tmp_path_factory):
  directory = str(tmp_path_factory.mktemp("skip") / "model")
  with flagsaver.flagsaver(
    schema=broken["schema"],
    train=broken["train"],
    model_dir=directory,
    skip_bad_records=True,
    **TINY,
  ):
    train.main([])
  return directory


def test_training_skips_counts_and_records_it(broken, skipped_model):
  with open(os.path.join(skipped_model, "train_summary.json")) as f:
    summary = json.load(f)
  skipped = summary["skipped_bad_records"]
  assert skipped["total_records"] == 1 and skipped["by_reason"] == {"bad_label": 1}
  assert skipped["first"]["bad_label"].startswith(f"{broken['bad_train']}: record #3")
  assert summary["history"][-1]["samples_read"] == broken["train_rows"] - 1


@pytest.mark.parametrize("skip", [False, True])
def test_evaluation_names_or_skips_the_record(broken, skipped_model, tmp_path, skip):
  output = str(tmp_path / "metrics.json")
  flags = dict(
    model_dir=skipped_model,
    test=broken["test"],
    output=output,
    oracle=False,
    base_metrics="",
    skip_bad_records=skip,
  )
  with flagsaver.flagsaver(**flags):
    if not skip:
      with pytest.raises(
        validation.BadRecordError,
        match=f"record #2 field '{broken['dense']}' is nan, expected a finite",
      ):
        evaluate.main([])
      assert not os.path.exists(output)
      return
    evaluate.main([])
  with open(output) as f:
    metrics = json.load(f)
  assert metrics["skipped_bad_records"]["by_reason"] == {"not_finite": 1}
  assert list(metrics)[:3] == ["actions", "overall", "skipped_other"]


def test_validate_logs_passes_good_logs(small_logs, tmp_path, capsys):
  output = str(tmp_path / "check.json")
  with flagsaver.flagsaver(logs=small_logs["test"], schema=small_logs["schema"], output=output):
    assert validate_logs.main(["validate_logs"]) == validate_logs.EXIT_OK
  with open(output) as f:
    report = json.load(f)
  assert report["ok"] and report["problems"]["total_records"] == 0
  assert "No malformed records." in capsys.readouterr().out


def test_validate_logs_fails_broken_logs_with_counts_and_first_record(broken, tmp_path, capsys):
  output = str(tmp_path / "check.json")
  with flagsaver.flagsaver(
    logs=f"{broken['dir']}/*.tfrecord", schema=broken["schema"], output=output
  ):
    assert validate_logs.main(["validate_logs"]) == validate_logs.EXIT_BAD_LOGS
  with open(output) as f:
    report = json.load(f)
  assert not report["ok"]
  by_field = {(p["reason"], p["field"]): p for p in report["problems"]["by_field"]}
  assert set(by_field) == {("bad_label", broken["label"]), ("not_finite", broken["dense"])}
  assert by_field[("bad_label", broken["label"])]["count"] == 1
  assert by_field[("not_finite", broken["dense"])]["first"].startswith(
    f"{broken['bad_test']}: record #2"
  )
  assert "FAILED" in capsys.readouterr().out
  assert np.isclose(sum(report["target_share"].values()), 1.0)
