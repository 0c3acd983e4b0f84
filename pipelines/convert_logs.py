r"""Converts logs between TFRecord and Parquet (every record field, in record order).

  python -m pipelines.convert_logs --logs='DIR/train-*' --schema=DIR/schema.json \
      --output_prefix=PQ/train --to_format=parquet --num_shards=4 [--skip_bad_records]

Parquet logs are the fast input of `pipelines.train` (less CPU per record to read than
TFRecord; measured: docs/results/timings/config.md); TFRecord logs are what the export's
warm-up reads. The schema's `schema.json` is copied next to the output shards, so the other
jobs find it as for the simulator's logs. Records are checked on the way: a malformed one
stops the job naming its file, record and field, or is skipped and counted under
`--skip_bad_records`. Shards are written atomically (a killed job leaves none behind).
With `--runner` (and `--beam_pipeline_args`) the conversion runs as an Apache Beam pipeline
writing through Beam's Parquet / TFRecord sinks (`kaml_tf.beam.conversion`): the same rows,
schema and shard names, in another row order.
"""

import os

from absl import logging

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
from kaml_tf import schema as schema_lib
from kaml_tf.logs import conversion as log_conversion
from pipelines import common
from pipelines import compute_stats
from pipelines import dataclass_flags

dataclass_flags.use(
  common.LOGS, common.SCHEMA, common.COMPRESSION, common.RUNNER, common.BEAM_PIPELINE_ARGS
)
# Every ConversionConfig setting; --num_shards, --read_batch_size and --skip_bad_records are
# pipelines.common's. The compression is --compression's `tf.io` type.
dataclass_flags.define(log_conversion.ConversionConfig, exclude=("compression",))


def config_from_flags() -> log_conversion.ConversionConfig:
  """The conversion config of the flags; a usage error naming the flag otherwise."""
  return dataclass_flags.build(
    log_conversion.ConversionConfig, compression=common.compression_type()
  )


@common.job
def main(argv):
  del argv
  logs = dataclass_flags.required(common.LOGS)
  schema = compute_stats.load_schema()
  config = config_from_flags()
  beam = common.beam_config()
  if beam.enabled:
    from kaml_tf.beam import conversion as beam_conversion  # pylint: disable=g-import-not-at-top

    result = beam_conversion.convert_logs(logs, schema, config, beam)
  else:
    progress = compute_stats.RowProgress("convert_logs")
    result = log_conversion.convert_logs(logs, schema, config, progress=progress)
    progress.done()
  folder = os.path.dirname(os.path.abspath(config.output_prefix))
  schema.save(schema_lib.schema_path(folder))
  logging.info(
    "wrote %d records to %d %s shard(s): %s",
    result.records,
    len(result.paths),
    config.to_format,
    ", ".join(result.paths),
  )


if __name__ == "__main__":
  common.run(main)
