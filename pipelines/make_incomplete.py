"""Turns any multi-label table into incomplete logs by the paper's public-data protocol.

  python -m pipelines.make_incomplete --input=TABLE --labels=l1,l2,... --group=COL \
      --output_dir=DIR --reported_extra=K --seed=S [--time=COL [--time_unit=s]] \
      [--test_fraction=0.2] [--pseudo_days=28] [--negative_keep_rate=1] [--num_shards=1] \
      [--compression=none]

The table is Parquet or CSV with a header and 0/1 label columns. Each group (an ad task) gets
a random target among the labels and K more reported labels; `true_label_*` keep the complete
labels. The split is by time with --time, at random otherwise, with pseudo-days (see
`kaml_tf.datasets.incomplete.days`). Outputs `DIR/schema.json` (schema inference on the train
rows), `DIR/train-*.tfrecord[.gz]`, `DIR/test-*.tfrecord[.gz]` and `DIR/incomplete.json`
(resolved config, files and the report). Nothing is written when the table is refused.
"""

from absl import app
from absl import logging

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
from kaml_tf.datasets.incomplete import conversion
from kaml_tf.datasets.incomplete.config import IncompleteConfig
from kaml_tf.logs import inference
from pipelines import common
from pipelines import dataclass_flags

# Shared: pipelines.kuairand takes --test_fraction and --negative_keep_rate too; --seed is
# the common one.
dataclass_flags.define(IncompleteConfig, shared=True)
dataclass_flags.use(common.OUTPUT_DIR, common.NUM_SHARDS, common.COMPRESSION)


def infer_schema(config: IncompleteConfig) -> conversion.SchemaFn:
  """The schema of the canonical train table, by schema inference over the labels."""

  def infer(table):
    return inference.infer(table, inference.InferenceConfig(actions=config.labels)).schema

  return infer


@common.job
def main(argv):
  del argv
  config = dataclass_flags.build(IncompleteConfig)
  output_dir = dataclass_flags.required(common.OUTPUT_DIR)
  if common.NUM_SHARDS.value < 1:
    raise app.UsageError(f"--num_shards: must be >= 1, got {common.NUM_SHARDS.value}")
  logging.info("making incomplete logs of %s in %s", config.input_path, output_dir)
  conversion.write_incomplete(
    config,
    infer_schema(config),
    output_dir,
    num_shards=common.NUM_SHARDS.value,
    compression=common.compression_type(),
  )


if __name__ == "__main__":
  common.run(main)
