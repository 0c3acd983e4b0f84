"""Fixtures of the Beam job tests: the runner they use, and logs with bad records.

Every Beam job runs on the DirectRunner with two worker threads, so that files are read by
different workers and their partial results merged.
"""

import os
import shutil

import pytest


@pytest.fixture(scope="session")
def beam_config():
  from kaml_tf.beam import options  # pylint: disable=g-import-not-at-top

  return options.BeamConfig(
    "DirectRunner", "--direct_num_workers=2 --direct_running_mode=multi_threading"
  )


@pytest.fixture(scope="session")
def broken_logs(small_logs, tmp_path_factory):
  """The small train logs, one of their shards again as Parquet, and four broken files.

  Files, in the order they are read: the two good TFRecord shards; `train-x1` (TFRecord,
  record 3 with label 2); `train-x2` (record 5 truncated, the rest unreadable); `train-x3`
  (record 2 not an Example); `train-x4` (empty); `train-x5.parquet` (good). Without
  --skip_bad_records the jobs must stop at `train-x1` record 3, though `train-x2` and
  `train-x3` are read at the same time.

  Returns:
    dict with `schema` (path), `train` (glob), `first_bad` (path of train-x1).
  """
  from tests.conftest import write_broken_log  # pylint: disable=g-import-not-at-top
  from kaml_tf import schema as schema_lib  # pylint: disable=g-import-not-at-top
  from kaml_tf.logs import parquet as parquet_logs  # pylint: disable=g-import-not-at-top
  from kaml_tf.logs import records  # pylint: disable=g-import-not-at-top

  out = str(tmp_path_factory.mktemp("broken_logs"))
  schema = schema_lib.Schema.load(small_logs["schema"])
  shutil.copy(small_logs["schema"], out)
  good = records.list_files(small_logs["train"])
  for path in good:
    shutil.copy(path, out)
  columns = records.read_columns(good[0], schema)
  head = {k: v[:40] for k, v in columns.items()}
  for name, breakage, record in [
    ("x1", "bad_label", 3),
    ("x2", "truncated", 5),
    ("x3", "unparsable", 2),
    ("x4", "empty_file", 0),
  ]:
    write_broken_log(os.path.join(out, f"train-{name}.tfrecord"), schema, head, breakage, record)
  with parquet_logs.LogWriter(schema, os.path.join(out, "train-x5")) as writer:
    writer.write({k: v[40:80] for k, v in columns.items()})
  os.rename(writer.paths[0], os.path.join(out, "train-x5.parquet"))
  return {
    "schema": os.path.join(out, "schema.json"),
    "train": os.path.join(out, "train-*"),
    "first_bad": os.path.join(out, "train-x1.tfrecord"),
  }
