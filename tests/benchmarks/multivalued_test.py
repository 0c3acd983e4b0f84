"""Tests of the multi-valued feature's input cost benchmark (`benchmarks.multivalued`)."""

from benchmarks import multivalued


def test_measure_times_both_pipelines_and_gives_their_ratio(tmp_path):
  config = multivalued.MultivaluedConfig(num_rows=300, interest_tags=3, batch_size=64, repeats=1)
  result = multivalued.measure(config, str(tmp_path))
  assert set(result["cpu_ms_per_batch"]) == {"with", "without"}
  assert result["batches_per_pass"] >= 1
  ratio = result["cpu_ms_per_batch"]["with"] / result["cpu_ms_per_batch"]["without"]
  assert result["ratio_with_to_without"] == ratio
