"""The log conversion job run in-process, then training and evaluation on its Parquet logs."""

import json
import os

from absl import app
from absl.testing import flagsaver
import numpy as np
import pytest

from kaml_tf import schema as schema_lib
from kaml_tf.data import stats as stats_lib
from pipelines import convert_logs
from pipelines import evaluate
from pipelines import train
from tests.pipelines import train_test


@pytest.fixture(scope="module")
def parquet_logs(small_logs, tmp_path_factory):
  out = tmp_path_factory.mktemp("parquet_logs")
  for split in ("train", "test"):
    with flagsaver.flagsaver(
      logs=small_logs[split],
      schema=small_logs["schema"],
      output_prefix=str(out / split),
      num_shards=2,
      to_format="parquet",
    ):
      convert_logs.main([])
  return {
    **small_logs,
    "dir": str(out),
    "train": str(out / "train-*.parquet"),
    "test": str(out / "test-*.parquet"),
  }


def test_conversion_keeps_every_record_and_writes_the_schema(small_logs, parquet_logs):
  schema = schema_lib.Schema.load(small_logs["schema"])
  assert (
    schema_lib.Schema.load(os.path.join(parquet_logs["dir"], "schema.json")).fingerprint()
    == schema.fingerprint()
  )
  fields = schema.record_dtypes()
  read = lambda files: np.concatenate(  # noqa: E731
    [c["user_id"] for _, _, c in stats_lib.iter_log_batches(files, fields)]
  )
  np.testing.assert_array_equal(
    np.sort(read(parquet_logs["train"])), np.sort(read(small_logs["train"]))
  )
  # The same statistics from either format.
  config = stats_lib.StatsConfig(window_days=28)
  a = stats_lib.compute_stats(parquet_logs["train"], schema, config)
  b = stats_lib.compute_stats(small_logs["train"], schema, config)
  np.testing.assert_array_equal(a.counts, b.counts)
  np.testing.assert_array_equal(a.ad_task_ids, b.ad_task_ids)


def _evaluate(model_dir, test, output):
  with flagsaver.flagsaver(model_dir=model_dir, test=test, output=output):
    evaluate.main([])
  with open(output, encoding="utf-8") as f:
    return json.load(f)


def test_train_and_evaluate_on_parquet_logs(small_logs, parquet_logs, tmp_path, capsys):
  model_dir = str(tmp_path / "kaml")
  with flagsaver.flagsaver(**train_test._flags(parquet_logs, model_dir)):
    train.main([])
  assert "trained 1 epoch(s), 7 steps" in capsys.readouterr().out
  from_parquet = _evaluate(model_dir, parquet_logs["test"], str(tmp_path / "pq.json"))
  from_tfrecord = _evaluate(model_dir, small_logs["test"], str(tmp_path / "tf.json"))
  assert from_parquet["overall"]["count"] == from_tfrecord["overall"]["count"] > 0
  for name, block in from_tfrecord["actions"].items():
    assert from_parquet["actions"][name]["count"] == block["count"]
    if block["count"]:
      assert from_parquet["actions"][name]["logloss"] == pytest.approx(block["logloss"], rel=1e-6)
      assert from_parquet["actions"][name]["auc"] == pytest.approx(
        block["auc"], rel=1e-9, nan_ok=True
      )


def test_missing_output_prefix_is_a_usage_error(small_logs):
  with flagsaver.flagsaver(
    logs=small_logs["train"], schema=small_logs["schema"], output_prefix=None
  ):
    with pytest.raises(app.UsageError, match="--output_prefix is required"):
      convert_logs.main([])


@pytest.mark.parametrize(
  "values, message",
  [
    (dict(read_batch_size=0), r"^--read_batch_size: must be >= 1, got 0$"),
    (dict(num_shards=0), r"^--num_shards: must be >= 1, got 0$"),
    (
      dict(compression="gzip", to_format="parquet"),
      r"^--compression: applies to TFRecord output only",
    ),
  ],
)
def test_invalid_settings_are_usage_errors_naming_the_flag(values, message):
  with flagsaver.flagsaver(output_prefix="out", **values):
    with pytest.raises(app.UsageError, match=message):
      convert_logs.config_from_flags()


def test_flags_give_the_conversion_config():
  with flagsaver.flagsaver(
    output_prefix="out", to_format="tfrecord", compression="gzip", read_batch_size=7
  ):
    config = convert_logs.config_from_flags()
  assert (config.output_prefix, config.to_format, config.compression, config.batch_size) == (
    "out",
    "tfrecord",
    "GZIP",
    7,
  )
