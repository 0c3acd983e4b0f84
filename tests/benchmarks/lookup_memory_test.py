"""Tests of the lookup_memory section's statistics and measurement (in this process)."""

import kaml_tf  # noqa: F401
import numpy as np
import pytest

from benchmarks import lookup_memory


@pytest.mark.parametrize(
  "kind, tasks", [(lookup_memory.STATIC, [7919, 15838, 23757]), (lookup_memory.DAILY, [7919])]
)
def test_synthetic_stats_have_the_keys_asked_for(kind, tasks):
  stats = lookup_memory.synthetic_stats(kind, keys=3, actions=2, days=4)
  assert stats.num_rows == 3 and stats.counts.shape == (3, 2)
  assert sorted(set(stats.ad_task_ids.tolist())) == tasks
  if kind == lookup_memory.DAILY:
    np.testing.assert_array_equal(stats.days, [1, 2, 3])
    assert stats.lookback_days == 4


@pytest.mark.parametrize("kind", [lookup_memory.STATIC, lookup_memory.DAILY])
def test_measure_builds_and_probes_the_join(kind):
  figures = lookup_memory.measure(kind, keys=6000, actions=3, days=28)
  assert (figures["keys"], figures["actions"], figures["probe_rows"]) == (6000, 3, 5000)
  assert figures["counts_matrix_bytes"] == 6001 * 3 * 8
  assert figures["bytes_per_key"] == figures["resident_bytes"] / 6000


def test_summary_lines():
  f = {"keys": 1000, "resident_bytes": 2**20, "bytes_per_key": 1048.576}
  assert lookup_memory.summary({"static": f, "daily": f}) == [
    "lookup_memory (static): 1000 keys, 1 MiB resident, 1049 bytes per key",
    "lookup_memory (daily): 1000 keys, 1 MiB resident, 1049 bytes per key",
  ]
