"""The three data jobs with --runner: run in-process, they write what they write without it."""

import json
import os

from absl import app
from absl.testing import flagsaver
import pytest

from kaml_tf import schema as schema_lib
from kaml_tf.data import stats as stats_lib
from pipelines import compute_stats
from pipelines import convert_logs
from pipelines import mask_report

BEAM_ARGS = "--direct_num_workers=2 --direct_running_mode=multi_threading"


def _run(main, runner, **flag_values):
  beam = dict(runner="DirectRunner", beam_pipeline_args=BEAM_ARGS) if runner else {}
  with flagsaver.flagsaver(**flag_values, **beam):
    main([])


def test_compute_stats_writes_the_same_bytes(small_logs, tmp_path):
  for runner in (False, True):
    _run(
      compute_stats.main,
      runner,
      logs=small_logs["train"],
      schema=small_logs["schema"],
      window_days=7,
      end_day=None,
      as_of="daily",
      output=str(tmp_path / f"stats-{runner}.parquet"),
    )
  read = lambda runner: (tmp_path / f"stats-{runner}.parquet").read_bytes()  # noqa: E731
  assert read(True) == read(False)
  assert stats_lib.load_stats(str(tmp_path / "stats-True.parquet")).is_daily


def test_mask_report_from_logs_writes_the_same_report(small_logs, tmp_path):
  for runner in (False, True):
    _run(
      mask_report.main,
      runner,
      logs=small_logs["train"],
      schema=small_logs["schema"],
      stats="",
      window_days=28,
      end_day=None,
      output=str(tmp_path / f"table1-{runner}.json"),
    )
  read = lambda runner, suffix: (tmp_path / f"table1-{runner}.{suffix}").read_text()  # noqa: E731
  assert json.loads(read(True, "json")) == json.loads(read(False, "json"))
  assert read(True, "md") == read(False, "md")


def test_convert_logs_writes_the_shards_and_the_schema(small_logs, tmp_path):
  out = tmp_path / "pq"
  _run(
    convert_logs.main,
    True,
    logs=small_logs["train"],
    schema=small_logs["schema"],
    output_prefix=str(out / "train"),
    to_format="parquet",
    num_shards=2,
  )
  assert sorted(os.listdir(out)) == [
    "schema.json",
    "train-00000-of-00002.parquet",
    "train-00001-of-00002.parquet",
  ]
  schema = schema_lib.Schema.load(small_logs["schema"])
  config = stats_lib.StatsConfig(window_days=28)
  a = stats_lib.compute_stats(str(out / "train-*"), schema, config)
  b = stats_lib.compute_stats(small_logs["train"], schema, config)
  assert (a.to_table().equals(b.to_table()), a.rows_read) == (True, b.rows_read)


def test_pipeline_args_without_a_runner_name_the_flag(small_logs, tmp_path):
  with flagsaver.flagsaver(
    logs=small_logs["train"],
    schema=small_logs["schema"],
    output=str(tmp_path / "s.parquet"),
    runner="",
    beam_pipeline_args=BEAM_ARGS,
  ):
    with pytest.raises(app.UsageError, match="^--beam_pipeline_args: needs --runner"):
      compute_stats.main([])
  assert not os.listdir(tmp_path)
