"""The Beam statistics job writes the local job's bytes, and fails or skips as it does."""

import numpy as np
import pytest

from kaml_tf import schema as schema_lib
from kaml_tf.beam import stats as beam_stats
from kaml_tf.data import stats as stats_lib
from kaml_tf.logs import validation


def _bytes(stats, path):
  stats.save(str(path))
  with open(path, "rb") as f:
    return f.read()


@pytest.mark.parametrize(
  "as_of, delay, end_day",
  [("end", 0, None), ("end", 2, 20), ("daily", 0, None), ("daily", 3, 20)],
)
def test_same_file_as_the_local_job(small_logs, beam_config, tmp_path, as_of, delay, end_day):
  schema = schema_lib.Schema.load(small_logs["schema"])
  config = stats_lib.StatsConfig(
    window_days=5, end_day=end_day, as_of=as_of, label_delay_days=delay, read_batch_size=128
  )
  local = stats_lib.compute_stats(small_logs["train"], schema, config)
  beam = beam_stats.compute_stats(
    small_logs["train"], schema, config, beam_config, str(tmp_path / "stats.parquet")
  )
  assert local.num_rows > 20  # windows with something in them
  assert _bytes(beam, tmp_path / "beam.parquet") == _bytes(local, tmp_path / "local.parquet")
  # The result file handed back by the workers is gone.
  assert sorted(p.name for p in tmp_path.iterdir()) == ["beam.parquet", "local.parquet"]


def test_the_first_bad_record_in_file_order_stops_it(broken_logs, beam_config, tmp_path):
  schema = schema_lib.Schema.load(broken_logs["schema"])
  config = stats_lib.StatsConfig(window_days=5)
  with pytest.raises(validation.BadRecordError) as local:
    stats_lib.compute_stats(broken_logs["train"], schema, config)
  with pytest.raises(validation.BadRecordError) as beam:
    beam_stats.compute_stats(broken_logs["train"], schema, config, beam_config, str(tmp_path / "s"))
  assert str(beam.value) == str(local.value)
  assert f"{broken_logs['first_bad']}: record #3 field 'label_" in str(beam.value)


def test_skipped_records_are_counted_as_by_the_local_job(broken_logs, beam_config, tmp_path):
  schema = schema_lib.Schema.load(broken_logs["schema"])
  config = stats_lib.StatsConfig(window_days=5, as_of="daily", skip_bad_records=True)
  local = stats_lib.compute_stats(broken_logs["train"], schema, config)
  beam = beam_stats.compute_stats(
    broken_logs["train"], schema, config, beam_config, str(tmp_path / "s")
  )
  skipped = beam.skipped_bad_records
  assert skipped["by_reason"] == {"bad_label": 1, "corrupt": 1, "unparsable": 1, "empty_file": 1}
  assert skipped == local.skipped_bad_records
  assert _bytes(beam, tmp_path / "beam.parquet") == _bytes(local, tmp_path / "local.parquet")


def test_day_sums_merge_in_any_grouping():
  parts = []
  for rows in ([(1, 3, 1), (1, 3, 0), (2, 4, 1)], [(1, 3, 1), (2, 5, 0)]):
    part = beam_stats.DaySums(("label_a",))
    part.add(
      {
        "ad_task_id": np.array([r[0] for r in rows], np.int64),
        "day": np.array([r[1] for r in rows], np.int64),
        "label_a": np.array([r[2] for r in rows], np.int64),
      }
    )
    parts.append(part)
  merged = parts[0].merge(parts[1])
  table = merged.table().sort_by([("ad_task_id", "ascending"), ("day", "ascending")])
  # (1, 3): 3 clicks, 2 conversions; (2, 4): 1, 1; (2, 5): 1, 0.
  assert table.to_pydict() == {
    "ad_task_id": [1, 2, 2],
    "day": [3, 4, 5],
    "clicks": [3, 1, 1],
    "label_a": [2, 1, 0],
  }
  assert (merged.min_day, merged.max_day) == (3, 5)
  assert len(parts[0].parts) == 1  # merging made a new object
