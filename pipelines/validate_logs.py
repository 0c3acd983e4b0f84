r"""Checks logs before training: what they hold, and every malformed record.

  python -m pipelines.validate_logs --logs='DIR/train-*' --schema=DIR/schema.json \
      [--output=DIR/validation.json]

Reads every record with every field of the schema and prints a markdown report: row count,
day range, ad tasks, the share of each target action (and "Other"), the reported (and true)
label rate of each action, and the malformed records by reason and field with their counts
and the first offending record (file and record index): corrupt or truncated files, records
that are not Examples, missing or mistyped fields, labels outside {0, 1}, targets outside
[-1, N), NaN or infinite dense values, empty files. `--output` also writes the report as JSON
(atomically). The exit code is 1 when anything is malformed or there is no record, so a
scheduler can gate training on it; 0 otherwise.
"""

import json
import sys

from absl import logging

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
from kaml_tf.logs import check as log_check
from kaml_tf import atomic
from pipelines import common
from pipelines import compute_stats
from pipelines import dataclass_flags

# Exit codes: 0 the logs are fit for training, 1 they are not.
EXIT_OK = 0
EXIT_BAD_LOGS = 1


dataclass_flags.use(common.LOGS, common.SCHEMA, common.OUTPUT, common.READ_BATCH_SIZE)


@common.job
def main(argv) -> int:
  del argv
  logs = dataclass_flags.required(common.LOGS)
  schema = compute_stats.load_schema()
  progress = compute_stats.RowProgress("validate_logs")
  check = log_check.check_logs(
    logs, schema, batch_size=common.READ_BATCH_SIZE.value, progress=progress
  )
  progress.done()
  if common.OUTPUT.value:
    atomic.write_text(common.OUTPUT.value, json.dumps(check.to_dict(), indent=2) + "\n")
    logging.info("wrote %s", common.OUTPUT.value)
  sys.stdout.write(check.to_markdown())
  sys.stdout.flush()
  return EXIT_OK if check.ok else EXIT_BAD_LOGS


if __name__ == "__main__":
  common.run(main)
