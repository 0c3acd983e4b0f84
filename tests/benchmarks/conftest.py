"""The settings of the section tests: the shared small logs, tiny sizes, one turn."""

import pytest

from benchmarks import config as config_lib


@pytest.fixture(name="bench_config")
def _bench_config(small_logs):
  """`bench_config(**overrides)`: a `BenchmarkConfig` on `small_logs` with tiny sizes."""

  def make(**overrides):
    values = {
      "logs": small_logs["train"],
      "schema": small_logs["schema"],
      "stats": small_logs["stats"],
      "batch_size": 32,
      "turns": 1,
      "throughput_steps": 2,
      "throughput_warmup_steps": 1,
      "shuffle_buffer": 64,
    }
    values.update(overrides)
    return config_lib.BenchmarkConfig(**values)

  return make


@pytest.fixture(name="parquet_train")
def _parquet_train(small_logs, tmp_path):
  """The train records of `small_logs` as 2 Parquet shards; returns their glob."""
  from kaml_tf import schema as schema_lib  # pylint: disable=g-import-not-at-top
  from kaml_tf.logs import conversion  # pylint: disable=g-import-not-at-top

  schema = schema_lib.Schema.load(small_logs["schema"])
  config = conversion.ConversionConfig(str(tmp_path / "pq" / "train"), num_shards=2)
  conversion.convert_logs(small_logs["train"], schema, config)
  return str(tmp_path / "pq" / "train-*")
