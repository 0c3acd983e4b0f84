"""Tests of the training-throughput timer: the samples/s formula, the turns, a real runner."""

import time

import kaml_tf  # noqa: F401
import pytest

from kaml_tf import schema as schema_lib
from benchmarks import throughput
from kaml_tf.data import stats as stats_lib
from kaml_tf.training import config as config_lib


def test_samples_per_second_counts_batches_after_the_warmup():
  # Warm-up 1: the clock starts when batch 0 ends (t=0); batches 1-3 of 10 end by t=4.
  assert throughput.samples_per_second([0.0, 1.0, 2.0, 4.0], 10, 1) == pytest.approx(7.5)
  # Warm-up 2: from t=1 (batch 1 ends) to t=5, batches 2-4 of 5: 15 / 4 s.
  assert throughput.samples_per_second([0.0, 1.0, 2.0, 4.0, 5.0], 5, 2) == pytest.approx(3.75)


@pytest.mark.parametrize("times,warmup", [([0.0, 1.0], 2), ([0.0, 1.0], 0), ([0.0, 1.0, 1.0], 2)])
def test_samples_per_second_rejects_too_few_or_flat_times(times, warmup):
  with pytest.raises(ValueError):
    throughput.samples_per_second(times, 10, warmup)


@pytest.mark.parametrize("field", ["steps", "warmup_steps", "turns"])
def test_timing_config_rejects_non_positive(field):
  with pytest.raises(ValueError, match=field):
    throughput.TimingConfig(**{field: 0})


class _FakeRunner:
  """Ends `steps` batches 1 ms apart; records how many steps each fit asked for."""

  def __init__(self, name, batch_size):
    self.name = name
    self.batch_size = batch_size
    self.fits = []

  def fit(self, steps, callback):
    self.fits.append(steps)
    callback.on_train_begin()
    for step in range(steps):
      start = time.perf_counter()
      while time.perf_counter() - start < 1e-3:
        pass
      callback.on_train_batch_end(step)


def test_measure_alternates_turns_and_reports_ratios():
  a, b = _FakeRunner("a", 100), _FakeRunner("b", 50)
  result = throughput.measure([a, b], throughput.TimingConfig(steps=3, warmup_steps=2, turns=2))
  # One tracing fit of warmup + 1 steps, then 2 turns of warmup + steps.
  assert a.fits == b.fits == [3, 5, 5]
  assert (result["steps"], result["warmup_steps"], result["turns"]) == (3, 2, 2)
  for name, runner in (("a", a), ("b", b)):
    figures = result["runners"][name]
    assert figures["batch_size"] == runner.batch_size
    assert len(figures["turns"]) == 2 and min(figures["turns"]) > 0
    assert figures["samples_per_second_best"] == max(figures["turns"])
  assert result["ratio_to_first"]["a"] == 1.0
  assert result["ratio_to_first"]["b"] == pytest.approx(
    result["runners"]["b"]["samples_per_second_best"]
    / result["runners"]["a"]["samples_per_second_best"]
  )
  # The fake runners busy-wait, so their CPU time per sample is positive too.
  for name in ("a", "b"):
    assert len(result["runners"][name]["cpu_turns"]) == 2
    assert result["runners"][name]["samples_per_cpu_second_median"] > 0
  assert result["cpu_ratio_to_first"]["a"] == 1.0
  assert result["cpu_ratio_to_first"]["b"] == pytest.approx(
    result["runners"]["b"]["samples_per_cpu_second_median"]
    / result["runners"]["a"]["samples_per_cpu_second_median"]
  )


def test_measure_needs_distinct_names():
  with pytest.raises(ValueError, match="distinct"):
    throughput.measure([_FakeRunner("a", 1), _FakeRunner("a", 1)])


def test_paper_runners_train_through_the_pipeline(small_logs):
  schema = schema_lib.Schema.load(small_logs["schema"])
  stats = stats_lib.load_stats(small_logs["stats"], schema)
  data = config_lib.DataConfig(
    schema_path=small_logs["schema"],
    train_files=small_logs["train"],
    stats_path=small_logs["stats"],
    mask_policy="adm",
    shuffle_buffer=64,
  )
  runners = throughput.paper_runners(
    schema, data, 32, stats, {"expert_units": (8,), "tower_units": (4,)}
  )
  assert [r.name for r in runners] == ["mmoe", "kaml"]
  result = throughput.measure(runners, throughput.TimingConfig(steps=2, warmup_steps=1, turns=1))
  assert set(result["runners"]) == {"mmoe", "kaml"}
  for figures in result["runners"].values():
    assert figures["batch_size"] == 32 and figures["samples_per_second_best"] > 0
  # Every fit ran its steps: 2 traced + 3 timed.
  assert all(int(r.task.optimizer.iterations.numpy()) == 5 for r in runners)


def test_in_memory_runners_train_on_pipeline_batches(small_logs):
  schema = schema_lib.Schema.load(small_logs["schema"])
  stats = stats_lib.load_stats(small_logs["stats"], schema)
  data = config_lib.DataConfig(
    schema_path=small_logs["schema"],
    train_files=small_logs["train"],
    stats_path=small_logs["stats"],
    mask_policy="adm",
  )
  runners = throughput.in_memory_runners(
    schema,
    data,
    16,
    stats,
    num_batches=2,
    model_overrides={"expert_units": (8,), "tower_units": (4,)},
  )
  assert [(r.name, r.batch_size) for r in runners] == [
    ("mmoe_in_memory", 16),
    ("kaml_in_memory", 16),
  ]
  result = throughput.measure(runners, throughput.TimingConfig(steps=3, warmup_steps=1, turns=1))
  assert all(r["samples_per_second_best"] > 0 for r in result["runners"].values())
  # 2 + 4 steps on a repeated stream of 2 batches: more steps than batches.
  assert all(int(r.task.optimizer.iterations.numpy()) == 6 for r in runners)
