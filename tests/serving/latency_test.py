"""measure_latency: the shape and consistency of its report (not the timings themselves)."""

import json

import kaml_tf  # noqa: F401
import numpy as np
import pytest

from kaml_tf import schema as schema_lib
from kaml_tf.serving import latency


def test_report_shape(exported, log_files):
  _, columns = log_files
  rows = dict(columns)
  rows[schema_lib.TARGET_ACTION] = np.array(columns[schema_lib.TARGET_ACTION])
  rows[schema_lib.TARGET_ACTION][0] = -1  # Skipped, not an error.
  report = latency.measure_latency(exported.path, rows, batch_sizes=(1, 5), iterations=4, warmup=1)
  assert report["export_dir"] == exported.path
  assert (report["iterations"], report["warmup"], report["batch_sizes"]) == (4, 1, [1, 5])
  assert sorted(report["latency_ms"]) == ["predict_all", "serving_default"]
  for signature in report["latency_ms"].values():
    assert sorted(signature) == ["1", "5"]
    for figures in signature.values():
      assert sorted(figures) == ["mean", "p50", "p99"]
      assert 0 < figures["p50"] <= figures["p99"]
  assert sorted(report["ratio_to_predict_all"]) == ["1", "5"]
  for size, ratio in report["ratio_to_predict_all"].items():
    select = report["latency_ms"]["serving_default"][size]
    every = report["latency_ms"]["predict_all"][size]
    assert ratio == {"p50": select["p50"] / every["p50"], "p99": select["p99"] / every["p99"]}
  json.dumps(report)  # Ready for the benchmark's JSON output.


@pytest.mark.parametrize(
  "kwargs, match",
  [
    ({"batch_sizes": ()}, "batch_sizes: expected positive integers"),
    ({"batch_sizes": (1, 0)}, "batch_sizes: expected positive integers"),
    ({"iterations": 0}, "iterations: must be >= 1"),
    ({"warmup": -1}, "warmup: must be >= 0"),
  ],
)
def test_bad_arguments(exported, log_files, kwargs, match):
  with pytest.raises(ValueError, match=match):
    latency.measure_latency(exported.path, log_files[1], **kwargs)


def test_bad_records(exported, log_files):
  _, columns = log_files
  with pytest.raises(ValueError, match=r"records: missing field\(s\) \['bid'\]"):
    latency.measure_latency(exported.path, {k: v for k, v in columns.items() if k != "bid"})
  other = dict(columns)
  other[schema_lib.TARGET_ACTION] = np.full(len(columns["bid"]), -1)
  with pytest.raises(ValueError, match=r"no row with a target action in \[0, 3\)"):
    latency.measure_latency(exported.path, other)
