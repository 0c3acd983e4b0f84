"""Tests of the determinism section on the shared small logs."""

import kaml_tf  # noqa: F401
import pytest

from benchmarks import determinism


def test_times_both_cases_in_alternating_children(bench_config):
  result = determinism.run(bench_config(steps=2, turns=2))
  assert result["variant"] == "kaml" and result["batch_size"] == 32 and result["steps"] == 2
  cases = result["cases"]
  assert set(cases) == {"nondeterministic", "deterministic"}
  assert cases["deterministic"]["op_determinism"] is True
  assert cases["nondeterministic"]["op_determinism"] is False
  for figures in cases.values():
    assert len(figures["turns"]) == 2 and all(t > 0 for t in figures["turns"])
    assert figures["step_seconds_best"] == min(figures["turns"])
  assert result["ratio_best"] == pytest.approx(
    cases["deterministic"]["step_seconds_best"] / cases["nondeterministic"]["step_seconds_best"]
  )
  assert result["ratio_cpu_median"] == pytest.approx(
    cases["deterministic"]["cpu_seconds_median"] / cases["nondeterministic"]["cpu_seconds_median"]
  )


def test_summary_lines():
  case = {"step_seconds_best": 0.1, "step_seconds_median": 0.12, "cpu_seconds_median": 0.2}
  result = {
    "cases": {"nondeterministic": case},
    "ratio_best": 1.5,
    "ratio_median": 1.25,
    "ratio_cpu_median": 1.125,
  }
  assert determinism.summary(result) == [
    "determinism nondeterministic: best 100.0 ms/step (median 120.0; CPU 200.0 ms/step)",
    "determinism: deterministic / non-deterministic KAML step = 1.500 (median 1.250, "
    "CPU time 1.125)",
  ]
