"""Runs the schema inference job in-process on a Parquet and a CSV file."""

import json
import os

import kaml_tf  # noqa: F401
from absl import flags
from absl.testing import flagsaver
import pyarrow as pa
import pyarrow.csv  # noqa: F401  (pa.csv)
import pyarrow.parquet as pq
import pytest

from kaml_tf import schema as schema_lib
from kaml_tf.logs import inference
from kaml_tf.logs import parquet as parquet_logs
from pipelines import infer_schema

CSV = """campaign,goal,ts,bought,clicked,city,price,const
7,buy,0,1,0,a,0.5,1
7,click,86400,0,1,b,1.5,1
8,view,172800,0,0,a,2.5,1
9,buy,172801,1,1,c,3.5,1
"""


@pytest.fixture(autouse=True)
def _parsed_flags():
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


def _run(logs, output, **extra):
  values = dict(
    log_actions=["buy=bought", "click=clicked"], ad_task="campaign", target="goal", timestamp="ts"
  )
  values.update(extra)
  with flagsaver.flagsaver(logs=logs, output=output, **values):
    infer_schema.main(["infer_schema"])


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_writes_a_schema_that_reads_the_logs(tmp_path, kind):
  csv = tmp_path / "logs.csv"
  csv.write_text(CSV)
  logs = str(csv)
  if kind == "parquet":
    logs = str(tmp_path / "logs.parquet")
    pq.write_table(pa.csv.read_csv(str(csv)), logs)
  output = str(tmp_path / "out" / "schema.json")
  _run(logs, output)
  schema = schema_lib.Schema.load(output)
  assert schema.actions == ("buy", "click")
  assert [f.name for f in schema.sparse_features] == ["ad_task_id", "city"]
  assert [f.name for f in schema.dense_features] == ["price"]
  assert schema.columns.target_names and schema.columns.timestamp_unit == "s"
  report = json.loads((tmp_path / "out" / "inference_report.json").read_text())
  assert report["dropped_constant"] == ["const"]
  assert report["columns"]["goal"]["unknown_names"] == {"view": 1}
  assert report["logs"]["rows"] == 4 and not report["logs"]["truncated"]
  assert report["config"]["ad_task"] == "campaign"
  if kind == "parquet":
    (batch,) = parquet_logs.read_batches(logs, schema.record_dtypes(), 10, schema=schema)
    assert batch.columns["day"].tolist() == [0, 1, 2, 2]
    assert batch.columns["target_action"].tolist() == [0, 1, -1, 0]


def test_sample_rows_and_report_path(tmp_path):
  (tmp_path / "logs.csv").write_text(CSV)
  output = str(tmp_path / "schema.json")
  report = str(tmp_path / "r.json")
  _run(str(tmp_path / "logs.csv"), output, sample_rows=3, report=report)
  data = json.loads(open(report).read())
  assert data["rows"] == 3 and data["logs"]["truncated"]
  assert data["logs"]["rows_used"] == "the first 3 rows of the files in sorted order"


def test_bad_labels_name_the_column_and_write_nothing(tmp_path):
  (tmp_path / "logs.csv").write_text(CSV.replace("9,buy,172801,1", "9,buy,172801,2"))
  output = str(tmp_path / "schema.json")
  with pytest.raises(inference.InferenceError, match="column 'bought'"):
    _run(str(tmp_path / "logs.csv"), output)
  assert os.listdir(tmp_path) == ["logs.csv"]


def test_missing_column_names_it(tmp_path):
  (tmp_path / "logs.csv").write_text(CSV)
  with pytest.raises(inference.InferenceError, match=r"no column 'task' \(--ad_task\)"):
    _run(str(tmp_path / "logs.csv"), str(tmp_path / "schema.json"), ad_task="task")
