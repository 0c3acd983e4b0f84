"""Tests of the peak-memory helper: the /proc reading and the child-process runner."""

import kaml_tf  # noqa: F401
import pytest

from benchmarks import memory


def test_peak_rss_is_positive_and_not_below_current():
  peak = memory.peak_rss_bytes()
  with open("/proc/self/status") as f:
    current_kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
  assert peak >= current_kb * 1024 > 0


def test_run_isolated_returns_result_and_child_peak():
  result, peak = memory.run_isolated("math:factorial", 5)
  assert result == 120
  assert peak > 0


def test_run_isolated_reports_the_child_error():
  with pytest.raises(memory.ChildError, match="math:sqrt failed.*ValueError: math domain error"):
    memory.run_isolated("math:sqrt", -1.0)


@pytest.mark.parametrize("target", ["math", "math:", ":sqrt"])
def test_bad_target_names_fail_in_the_parent(target):
  with pytest.raises(ValueError, match="package.module:function"):
    memory.run_isolated(target)


def test_run_isolated_reraises_the_expected_error_types_unchanged():
  # `int("x")` raises ValueError in the child: handed back as itself, not as a ChildError.
  with pytest.raises(ValueError, match="invalid literal for int") as raised:
    memory.run_isolated("builtins:int", "x", reraise=(ValueError,))
  assert type(raised.value) is ValueError
  with pytest.raises(memory.ChildError, match="ValueError: invalid literal"):
    memory.run_isolated("builtins:int", "x", reraise=(KeyError,))
