"""The Beam conversion job writes the local job's rows, schema and shard names."""

import os

import numpy as np
import pyarrow.parquet as pq
import pytest

from kaml_tf import schema as schema_lib
from kaml_tf.beam import conversion as beam_conversion
from kaml_tf.data import stats as stats_lib
from kaml_tf.logs import conversion
from kaml_tf.logs import validation


def _rows(paths, schema):
  """The records of `paths` as a sorted list of tuples (every record field)."""
  fields = schema.record_dtypes()
  batches = [c for p in paths for _, _, c in stats_lib.iter_log_batches(p, fields, 1000, schema)]
  columns = {k: np.concatenate([b[k] for b in batches]) for k in sorted(fields)}
  return sorted(zip(*[columns[k].tolist() for k in sorted(fields)]))


def _config(tmp_path, name, **settings):
  return conversion.ConversionConfig(output_prefix=str(tmp_path / name / "train"), **settings)


@pytest.mark.parametrize(
  "settings",
  [dict(to_format="parquet", num_shards=3), dict(to_format="tfrecord", compression="GZIP")],
)
def test_same_rows_schema_and_shards_as_the_local_job(small_logs, beam_config, tmp_path, settings):
  schema = schema_lib.Schema.load(small_logs["schema"])
  local = conversion.convert_logs(
    small_logs["train"], schema, _config(tmp_path, "local", **settings)
  )
  beam = beam_conversion.convert_logs(
    small_logs["train"], schema, _config(tmp_path, "beam", **settings), beam_config
  )
  assert [os.path.basename(p) for p in beam.paths] == [os.path.basename(p) for p in local.paths]
  # Only the shards are left in the output folder.
  assert sorted(os.listdir(tmp_path / "beam")) == sorted(os.path.basename(p) for p in beam.paths)
  assert beam.records == local.records > 0
  assert _rows(beam.paths, schema) == _rows(local.paths, schema)
  for b, a in zip(beam.paths, local.paths):
    # Every shard gets rows (a third each, within a batch's remainder), as locally.
    assert len(_rows([b], schema)) == pytest.approx(local.records / len(local.paths), abs=2)
    if settings["to_format"] == "parquet":
      assert pq.read_schema(b) == pq.read_schema(a)


def test_bad_records_fail_or_are_skipped_as_by_the_local_job(broken_logs, beam_config, tmp_path):
  schema = schema_lib.Schema.load(broken_logs["schema"])
  with pytest.raises(validation.BadRecordError) as local_error:
    conversion.convert_logs(broken_logs["train"], schema, _config(tmp_path, "local"))
  with pytest.raises(validation.BadRecordError) as beam_error:
    beam_conversion.convert_logs(
      broken_logs["train"], schema, _config(tmp_path, "beam"), beam_config
    )
  assert str(beam_error.value) == str(local_error.value)
  assert not os.listdir(tmp_path / "beam")  # no output left behind
  skip = dict(skip_bad_records=True, num_shards=2)
  local = conversion.convert_logs(broken_logs["train"], schema, _config(tmp_path, "l2", **skip))
  beam = beam_conversion.convert_logs(
    broken_logs["train"], schema, _config(tmp_path, "b2", **skip), beam_config
  )
  assert beam.skipped["total_records"] == 3
  assert beam.skipped == local.skipped
  assert _rows(beam.paths, schema) == _rows(local.paths, schema)
