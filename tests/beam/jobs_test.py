"""The three data jobs with --runner: run in-process, they write what they write without it."""

import json
import os
import subprocess
import sys

from absl import app
from absl.testing import flagsaver
import pytest

from kaml_tf import schema as schema_lib
from kaml_tf.data import stats as stats_lib
from pipelines import compute_stats
from pipelines import convert_logs
from pipelines import mask_report
from tests.pipelines import flags_test

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


def test_without_beam_installed_the_jobs_import_and_run_locally(small_logs, tmp_path):
  """In a process where `import apache_beam` fails: every job imports, compute_stats runs
  locally, and with --runner it ends with one line saying how to install Beam."""
  output = str(tmp_path / "stats.parquet")
  code = (
    "import importlib, sys\n"
    "sys.modules['apache_beam'] = None  # import apache_beam raises ImportError\n"
    f"for name in {flags_test.JOBS!r}:\n"
    "  importlib.import_module(name)\n"
    "from absl import flags\n"
    "from pipelines import common, compute_stats\n"
    f"flags.FLAGS(['x', '--logs={small_logs['train']}', '--schema={small_logs['schema']}',"
    f" '--output={output}'])\n"
    "compute_stats.main([])\n"
    "flags.FLAGS.runner = 'DirectRunner'\n"
    "common.exits_cleanly(compute_stats.main)([])\n"
  )
  env = dict(os.environ, PYTHONPATH=flags_test.ROOT, TF_CPP_MIN_LOG_LEVEL="3")
  result = subprocess.run(
    [sys.executable, "-c", code],
    cwd=flags_test.ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
    check=False,
  )
  assert result.returncode == 1, result.stderr[-2000:]
  assert (
    "FATAL --runner: needs Apache Beam, which is not installed: pip install kaml-tf[beam]"
    in result.stderr
  )
  assert stats_lib.load_stats(output).rows_read > 0  # the local run, before
