"""The Beam Table 1 job gives the local job's report, and skips bad records as it does."""

import pytest

from kaml_tf import schema as schema_lib
from kaml_tf.beam import mask_report as beam_mask_report
from kaml_tf.data import mask_report
from kaml_tf.data import stats as stats_lib


@pytest.mark.parametrize("stats_key", ["stats", "stats_daily"])
def test_same_report_as_the_local_job(small_logs, beam_config, tmp_path, stats_key):
  schema = schema_lib.Schema.load(small_logs["schema"])
  stats = stats_lib.load_stats(small_logs[stats_key], schema)
  local = mask_report.compute_mask_report(small_logs["train"], schema, stats, batch_size=100)
  beam = beam_mask_report.compute_mask_report(
    small_logs["train"], schema, stats, beam_config, str(tmp_path / "r"), batch_size=100
  )
  assert local.samples > 0 and sum(local.extended_samples) > 0
  assert beam.to_dict() == local.to_dict()
  assert beam.to_markdown() == local.to_markdown()


def test_skipped_records_are_counted_as_by_the_local_job(
  small_logs, broken_logs, beam_config, tmp_path
):
  schema = schema_lib.Schema.load(broken_logs["schema"])
  stats = stats_lib.load_stats(small_logs["stats_daily"], schema)
  local = mask_report.compute_mask_report(
    broken_logs["train"], schema, stats, skip_bad_records=True
  )
  beam = beam_mask_report.compute_mask_report(
    broken_logs["train"], schema, stats, beam_config, str(tmp_path / "r"), skip_bad_records=True
  )
  assert beam.skipped_bad_records["total_records"] == 3
  assert beam.to_dict() == local.to_dict()
