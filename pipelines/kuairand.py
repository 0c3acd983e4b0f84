"""Converts the KuaiRand log into this project's schema and TFRecord logs (paper section 4.1.1).

  python -m pipelines.kuairand --log=data/kuairand/kuairand_27k_likehate_kcore15.tsv.gz \
      --user_features=data/kuairand/user_features_pure.csv.gz --output_dir=DIR --seed=0 \
      [--actions=like,follow,comment,forward] [--extra_reported_actions=2] \
      [--negative_keep_rate=1] [--nosample_test_negatives] [--play_time_features] \
      [--allow_missing_users] [--test_fraction=0.2] [--num_shards=1] [--compression=none]

Outputs `DIR/schema.json`, `DIR/train-*.tfrecord[.gz]`, `DIR/test-*.tfrecord[.gz]` and
`DIR/conversion.json` (resolved config, files and the data report). The protocol, and what the
shared KuaiRand slice is and is not, are documented in `kaml_tf.datasets.kuairand.conversion`.
"""

from absl import app
from absl import logging

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
from kaml_tf.datasets.kuairand import conversion
from pipelines import common
from pipelines import dataclass_flags

# Every ConversionConfig field is a flag (its help and default), `--seed` the shared one; the
# schema's embedding width is not (the models set their own, --embedding_dim of training).
# Shared: pipelines.make_incomplete takes --test_fraction and --negative_keep_rate too.
dataclass_flags.define(conversion.ConversionConfig, exclude=("embedding_dim",), shared=True)
dataclass_flags.use(common.OUTPUT_DIR, common.NUM_SHARDS, common.COMPRESSION)


def config_from_flags() -> conversion.ConversionConfig:
  """Turns the flags into a `ConversionConfig` (errors name the flag)."""
  return dataclass_flags.build(conversion.ConversionConfig)


@common.job
def main(argv):
  del argv
  config = config_from_flags()
  output_dir = dataclass_flags.required(common.OUTPUT_DIR)
  if common.NUM_SHARDS.value < 1:
    raise app.UsageError(f"--num_shards: must be >= 1, got {common.NUM_SHARDS.value}")
  logging.info("converting %s into %s", config.log_path, output_dir)
  conversion.write_conversion(
    config,
    output_dir,
    num_shards=common.NUM_SHARDS.value,
    compression=common.compression_type(),
  )


if __name__ == "__main__":
  common.run(main)
