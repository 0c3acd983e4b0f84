r"""Infers a schema.json from logs with column names of their own.

  python -m pipelines.infer_schema --logs='DIR/*.parquet' --log_actions=buy,click=clicked \
      [--ad_task=COL] [--target=COL] [--day=COL | --timestamp=COL --timestamp_unit=ms] \
      [--log1p=auto] [--sample_rows=N] --output=DIR/schema.json [--report=DIR/report.json]

Reads Parquet, CSV (with a header row) or TFRecord logs (`kaml_tf.logs.tables`, the first
`--sample_rows` rows when given) and infers every feature (`kaml_tf.logs.inference`: ids
become sparse features with a vocabulary or hash buckets, floats dense features with their
mean and std, lists of ids multi-valued features). The schema maps the key and label fields to
the logs' own columns (`--ad_task`, `--target`, `--day` / `--timestamp`, `--log_actions=NAME=COLUMN`),
so the other jobs read the logs as they are (Parquet; TFRecord logs need the record field
names). Writes the schema and a JSON report (per column: role, type, null share, cardinality;
dropped constant and undecided columns, with reasons) atomically, and logs a warning for every
dropped or undecided column. A missing column, a label that is not 0/1 or a null key value ends
the job naming the column, with nothing written.
"""

import json
import os
from typing import Optional

from absl import flags
from absl import logging

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
from kaml_tf import atomic
from kaml_tf import configs
from kaml_tf.logs import inference
from kaml_tf.logs import tables
from pipelines import common
from pipelines import dataclass_flags

dataclass_flags.use(common.LOGS, common.OUTPUT)
dataclass_flags.define(inference.InferenceConfig)
_REPORT = flags.DEFINE_string(
  "report", None, "The inference report (JSON); default: inference_report.json beside --output."
)


def report_path(output: str, report: Optional[str] = None) -> str:
  """`report`, or `inference_report.json` in the folder of the schema `output`."""
  return report or os.path.join(os.path.dirname(os.path.abspath(output)), "inference_report.json")


@common.job
def main(argv):
  del argv
  output = dataclass_flags.required(common.OUTPUT)
  logs = dataclass_flags.required(common.LOGS)
  config = dataclass_flags.build(inference.InferenceConfig)
  log_table = tables.read_table(logs, config.sample_rows)
  result = inference.infer(log_table.table, config)
  for warning in result.warnings:
    logging.warning("%s", warning)
  report = dict(result.report, logs=log_table.to_dict(), config=configs.to_dict(config))
  # Both files are complete before either is published: the report first, then the schema
  # the other jobs look for.
  report_file = report_path(output, _REPORT.value)
  atomic.write_text(report_file, json.dumps(report, indent=2, sort_keys=True) + "\n")
  result.schema.save(output)
  logging.info(
    "wrote %s (%d sparse, %d dense features) and %s",
    output,
    len(result.schema.sparse_features),
    len(result.schema.dense_features),
    report_file,
  )


if __name__ == "__main__":
  common.run(main)
