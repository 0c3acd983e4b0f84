"""A small simulated month through `experiments.month` (tiny model, a few hundred rows a day)."""

import json
import os

import pytest

from kaml_tf import configs
from kaml_tf.daily import config as daily_config
from kaml_tf.daily import production as production_lib
from kaml_tf.datasets.simulation import simulator
from kaml_tf.models import config as model_config_lib
from kaml_tf.training import config as config_lib
from experiments import month as month_lib
from tests.daily import simulated_days

# Days 0-1 are history; the loop runs on days 2, 3 and 4 and each is scored on the next day.
# Day 3's labels are shuffled: day 4's candidate trains on day 3 alone, and must be kept.
MONTH = dict(month_days=6, rows_per_day=500, first_run_day=2, corrupt_day=3)
WORLD = simulator.SimulationConfig(
  num_users=200,
  num_ad_tasks=40,
  seed=11,
  drift_day=3,
  new_task_share=0.25,
  report_switch_share=0.2,
)


def daily() -> daily_config.DailyConfig:
  return daily_config.DailyConfig(
    day=0,
    logs_root="",
    models_root="",
    exports_root="",
    train_days=1,
    window_days=2,
    auc_tolerance=0.0,
    logloss_tolerance=0.01,
    model=model_config_lib.ModelConfig(**simulated_days.TINY),
    optim=config_lib.OptimConfig(batch_size=64, epochs=2, seed=3, learning_rate=0.01),
  )


@pytest.fixture(scope="module")
def month(tmp_path_factory):
  config = month_lib.MonthConfig(output_dir=str(tmp_path_factory.mktemp("month")), **MONTH)
  return config, month_lib.run_month(config, WORLD, daily())


def test_every_run_day_is_scored_on_the_next_day(month):
  config, result = month
  assert [d["day"] for d in result["days"]] == [2, 3, 4]
  assert [d["test_day"] for d in result["days"]] == [3, 4, 5]
  assert [d["train_days"] for d in result["days"]] == [[1], [2], [3]]
  for d in result["days"]:
    for name in month_lib.MODELS:
      assert 0.0 < d[name]["auc"] < 1.0 and d[name]["logloss"] > 0.0, (d["day"], name)
  with open(os.path.join(config.output_dir, "month.json"), encoding="utf-8") as f:
    assert json.load(f) == result


def test_the_corrupted_day_is_blocked_and_served_stays(month):
  config, result = month
  day2, _, day4 = result["days"]
  assert day2["promoted"] and day2["served_from_day"] == 2
  # With no production yet, day 2's candidate is itself trained from scratch: the same run.
  for metric in ("auc", "logloss"):
    assert day2["candidate"][metric] == pytest.approx(day2["scratch"][metric], rel=1e-6)
  assert day4["promoted"] is False, day4["reasons"]
  assert result["summary"]["kept_days"][-1] == 4
  # Kept: the served model is older than day 4's candidate, and scores differently.
  assert day4["served_from_day"] < 4
  assert day4["served"] != day4["candidate"]
  production = production_lib.read(os.path.join(config.output_dir, "models", "production.json"))
  assert production.day == day4["served_from_day"]
  assert "| 4 | 3-3 | kept |" in open(os.path.join(config.output_dir, "month.md")).read()


def test_scratch_trains_on_the_candidates_days_without_warm_start(month):
  config, result = month
  scratch = config_lib.RunConfig.load(os.path.join(config.output_dir, "scratch", "4"))
  candidate = config_lib.RunConfig.load(os.path.join(config.output_dir, "models", "4"))
  assert scratch.data == candidate.data
  assert scratch.optim.warm_start_from == ""
  # Day 4's candidate warm-started from the production it was then gated against.
  served = str(result["days"][2]["served_from_day"])
  assert candidate.optim.warm_start_from == os.path.join(config.output_dir, "models", served)


def test_the_loop_reads_shuffled_labels_and_scores_on_the_clean_copy(month):
  config, _ = month
  data = os.path.join(config.output_dir, month_lib.DATA)
  assert sorted(os.listdir(os.path.join(data, month_lib.CLEAN))) == ["day=3"]
  assert month_lib._test_files(config, 3).startswith(os.path.join(data, month_lib.CLEAN))
  assert month_lib._test_files(config, 4).startswith(os.path.join(data, month_lib.LOGS))


def test_a_rerun_reads_back_and_other_settings_are_refused(month):
  config, result = month
  assert month_lib.run_month(config, WORLD, daily()) == result
  other = month_lib.MonthConfig(**{**configs.to_dict(config), "rows_per_day": 400})
  with pytest.raises(configs.ConfigError, match="other settings"):
    month_lib.run_month(other, WORLD, daily())
