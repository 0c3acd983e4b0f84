"""Tests of the serving section that need no export: its settings and its lines."""

import kaml_tf  # noqa: F401
import pytest

from benchmarks import config as config_lib
from benchmarks import serving


def test_needs_an_export(bench_config):
  with pytest.raises(config_lib.ConfigError, match="--export_dir is required by the serving"):
    serving.run(bench_config())


def test_summary_has_a_line_per_signature_and_batch_size():
  result = {"latency_ms": {"serving_default": {"1": {"p50": 1.234, "p99": 5.0}}}}
  assert serving.summary(result) == ["serving serving_default batch 1: p50 1.23 ms, p99 5.00 ms"]
