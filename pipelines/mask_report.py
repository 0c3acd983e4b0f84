r"""The paper's Table 1 for any logs: share of samples per action under the base and ADM masks.

  python -m pipelines.mask_report --logs='DIR/train-*' --schema=DIR/schema.json \
      [--stats=DIR/stats.parquet | --window_days=28 --end_day=D --as_of=end|daily] \
      [--stats_mode=static|point_in_time] [--alpha=10,5,5,3,3] \
      --output=DIR/table1.json [--markdown_output=DIR/table1.md]

Without `--stats` the statistics are computed from `--logs` first (same window and `--as_of`
flags as `pipelines.compute_stats`). Daily statistics are joined on (ad task, day) like
`pipelines.train` does (`--stats_mode`, empty: the statistics' kind). Besides Table 1 the
report gives, per action, the extended (ADM-only, non-target) cells' share of the samples,
P(mask | y = 1) over non-target cells and their positive rate, with the reported labels.
With `--runner` (and `--beam_pipeline_args`) the statistics and the report are computed by
Apache Beam pipelines (`kaml_tf.beam`), with the same result. Writes the JSON report to `--output` and the markdown table to `--markdown_output` (default:
`--output` with a `.md` suffix), both atomically, and prints the markdown table.
"""

import json
import os
import sys
from typing import Tuple

from absl import app
from absl import flags
from absl import logging

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
from kaml_tf import schema as schema_lib
from kaml_tf.data import mask_report
from kaml_tf.data import masks
from kaml_tf.data import point_in_time
from kaml_tf.data import stats as stats_lib
from kaml_tf import atomic
from pipelines import common
from pipelines import compute_stats
from pipelines import dataclass_flags

dataclass_flags.use(
  common.STATS, common.ALPHA, common.STATS_MODE, common.RUNNER, common.BEAM_PIPELINE_ARGS
)
_MARKDOWN = flags.DEFINE_string(
  "markdown_output", None, "Markdown report (default: --output with a .md suffix)."
)


def alpha_from_flags(schema: schema_lib.Schema) -> Tuple[int, ...]:
  """`--alpha` checked against the schema (the defaults when empty); errors name the flag."""
  values = common.ALPHA.value
  try:
    parsed = tuple(float(v) for v in values) if values else None
  except ValueError:
    raise app.UsageError(
      f"--alpha: expected comma-separated integers, got {','.join(values)!r}"
    ) from None
  try:
    return masks.resolve_alpha(parsed, schema)
  except masks.MaskError as e:
    raise app.UsageError(str(e)) from None


def stats_from_flags(schema: schema_lib.Schema, near: str) -> stats_lib.ConversionStats:
  """Loads `--stats` (checked against the schema), or computes them from `--logs`."""
  if common.STATS.value:
    return stats_lib.load_stats(common.STATS.value, schema)
  return compute_stats.compute_from_flags(schema, near)


def markdown_path(output: str) -> str:
  if _MARKDOWN.value:
    return _MARKDOWN.value
  return os.path.splitext(output)[0] + ".md"


@common.job
def main(argv):
  del argv
  output = dataclass_flags.required(common.OUTPUT)
  logs = dataclass_flags.required(common.LOGS)
  schema = compute_stats.load_schema()
  alpha = alpha_from_flags(schema)
  beam = common.beam_config()
  stats = stats_from_flags(schema, output)
  try:
    point_in_time.resolve_stats_mode(common.STATS_MODE.value, stats)
  except point_in_time.StatsModeError as e:
    raise app.UsageError(str(e)) from None
  settings = dict(
    alpha=alpha,
    batch_size=common.READ_BATCH_SIZE.value,
    skip_bad_records=common.SKIP_BAD_RECORDS.value,
    stats_mode=common.STATS_MODE.value,
  )
  if beam.enabled:
    from kaml_tf.beam import mask_report as beam_mask_report  # pylint: disable=g-import-not-at-top

    report = beam_mask_report.compute_mask_report(logs, schema, stats, beam, output, **settings)
  else:
    progress = compute_stats.RowProgress("mask_report")
    report = mask_report.compute_mask_report(logs, schema, stats, progress=progress, **settings)
    progress.done()
  text = report.to_markdown()
  atomic.write_text(output, json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n")
  atomic.write_text(markdown_path(output), text)
  sys.stdout.write(text)
  logging.info("wrote %s and %s", output, markdown_path(output))


if __name__ == "__main__":
  common.run(main)
