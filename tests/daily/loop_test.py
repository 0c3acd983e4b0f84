"""End to end: a few simulated days through `loop.run_day` (tiny model, a few hundred rows)."""

import json
import os
import shutil

import pytest

from kaml_tf.daily import config as daily_config
from kaml_tf.daily import errors
from kaml_tf.daily import layout
from kaml_tf.daily import lock
from kaml_tf.daily import loop
from kaml_tf.daily import production as production_lib
from kaml_tf.models import config as model_config_lib
from kaml_tf.training import config as config_lib
from tests.daily import simulated_days


def make_config(root: str, logs_root: str, day: int, **overrides) -> daily_config.DailyConfig:
  settings = dict(
    day=day,
    logs_root=logs_root,
    models_root=os.path.join(root, "models"),
    exports_root=os.path.join(root, "exports"),
    train_days=2,
    auc_tolerance=0.0,
    logloss_tolerance=0.0,
    model=model_config_lib.ModelConfig(**simulated_days.TINY),
    optim=config_lib.OptimConfig(batch_size=64, epochs=2, seed=3, learning_rate=0.01),
  )
  settings.update(overrides)
  return daily_config.DailyConfig(**settings)


def snapshot(root: str):
  """Every file under `root` with its size and mtime."""
  found = {}
  for folder, _, files in os.walk(root):
    for name in files:
      path = os.path.join(folder, name)
      found[os.path.relpath(path, root)] = (os.path.getsize(path), os.stat(path).st_mtime_ns)
  return found


@pytest.fixture(scope="module")
def first_day(world, tmp_path_factory):
  """Day 2 run once on days 0..2: trains on days 0-1 from scratch, evaluates on day 2."""
  root = str(tmp_path_factory.mktemp("first_day"))
  logs_root = os.path.join(root, "logs")
  shutil.copytree(world["logs_root"], logs_root)
  config = make_config(root, logs_root, day=2)
  return {"root": root, "config": config, "report": loop.run_day(config)}


def test_first_day_promotes(first_day):
  report, config = first_day["report"], first_day["config"]
  assert report["promoted"] is True
  assert report["reasons"] == ["no production model yet"]
  assert report["plan"] == {"run_day": 2, "eval_day": 2, "train_days": [0, 1], "stats_end_day": 1}
  assert report["train"]["warm_start_from"] == ""
  assert report["evaluation"]["production"] is None
  production = production_lib.read(os.path.join(config.models_root, "production.json"))
  assert production.day == 2 and production.version == 2
  assert production.model_dir == os.path.abspath(os.path.join(config.models_root, "2"))
  assert os.path.exists(os.path.join(config.exports_root, "2", "saved_model.pb"))
  model_dir = os.path.join(config.models_root, "2")
  assert sorted(os.listdir(os.path.join(model_dir, "steps"))) == [
    f"{s}.json" for s in ("evaluate", "promote", "stats", "train", "validate")
  ]
  with open(os.path.join(model_dir, "day_report.json"), encoding="utf-8") as f:
    assert json.load(f) == report
  with open(os.path.join(model_dir, "day_report.md"), encoding="utf-8") as f:
    assert f.readline() == "# Day 2: PROMOTED\n"


def test_rerun_of_a_finished_day_changes_nothing(first_day):
  before = snapshot(first_day["root"])
  assert loop.run_day(first_day["config"]) == first_day["report"]
  assert snapshot(first_day["root"]) == before


def test_second_loop_for_the_same_day_refuses(first_day):
  paths = layout.DayPaths(first_day["config"].models_root, 2)
  with lock.DayLock(paths.lock):
    with pytest.raises(lock.DayLockedError, match="another daily loop"):
      loop.run_day(first_day["config"])


def test_missing_day_is_bad_input(first_day):
  config = make_config(first_day["root"], first_day["config"].logs_root, day=7)
  with pytest.raises(errors.InputError, match="no logs for day 7"):
    loop.run_day(config)
  assert not os.path.exists(os.path.join(config.models_root, "7"))


def test_corrupted_day_is_blocked_and_production_stays(world, tmp_path):
  root = str(tmp_path)
  logs_root = os.path.join(root, "logs")
  shutil.copytree(world["logs_root"], logs_root)
  loop.run_day(make_config(root, logs_root, day=2))
  production_file = os.path.join(root, "models", "production.json")
  with open(production_file, encoding="utf-8") as f:
    promoted = f.read()
  schema = world["schema"]
  simulated_days.write_day(
    schema, simulated_days.shuffled_labels(schema, world["days"][3]), logs_root, 3
  )
  simulated_days.write_day(schema, world["days"][4], logs_root, 4)
  # Day 4 trains on day 3 alone (shuffled labels), warm-started from day 2's model.
  config = make_config(root, logs_root, day=4, train_days=1, logloss_tolerance=0.01)
  report = loop.run_day(config)
  assert report["train"]["warm_start_from"] == os.path.abspath(os.path.join(root, "models", "2"))
  assert report["promoted"] is False, report["reasons"]
  assert any(
    "higher than production's" in r or "lower than production's" in r for r in report["reasons"]
  )
  with open(production_file, encoding="utf-8") as f:
    assert f.read() == promoted
  assert sorted(os.listdir(os.path.join(root, "exports"))) == ["2"]


def test_label_delay_and_a_killed_loop_resuming(world, tmp_path):
  root = str(tmp_path)
  logs_root = os.path.join(root, "logs")
  shutil.copytree(world["logs_root"], logs_root)
  simulated_days.write_day(world["schema"], world["days"][3], logs_root, 3)
  config = make_config(root, logs_root, day=3, label_delay_days=1)
  report = loop.run_day(config)
  # Day 3's labels are not final yet: evaluate on day 2, train and count on days 0-1.
  assert report["plan"] == {"run_day": 3, "eval_day": 2, "train_days": [0, 1], "stats_end_day": 1}
  assert report["stats"]["days"] == [0, 1]
  # Killed after training, before the evaluation finished: the rerun keeps the training.
  model_dir = os.path.join(config.models_root, "3")
  for name in ("steps/evaluate.json", "steps/promote.json", "day_report.json", "day_report.md"):
    os.remove(os.path.join(model_dir, name))
  os.remove(os.path.join(config.models_root, "production.json"))
  checkpoints = snapshot(os.path.join(model_dir, "checkpoints"))
  assert loop.run_day(config) == report
  assert snapshot(os.path.join(model_dir, "checkpoints")) == checkpoints


def day_after_first(world, first_day, tmp_path):
  """A copy of the first day's logs and models in `tmp_path`, plus day 3's logs."""
  root = str(tmp_path)
  logs_root = os.path.join(root, "logs")
  shutil.copytree(first_day["config"].logs_root, logs_root)
  shutil.copytree(first_day["config"].models_root, os.path.join(root, "models"))
  simulated_days.write_day(world["schema"], world["days"][3], logs_root, 3)
  return root, logs_root


def test_production_of_another_architecture_is_bad_input(world, first_day, tmp_path):
  root, logs_root = day_after_first(world, first_day, tmp_path)
  production = os.path.join(root, "models", "production.json")
  with open(production, encoding="utf-8") as f:
    before = f.read()
  wider = model_config_lib.ModelConfig(**{**simulated_days.TINY, "num_experts": 3})
  with pytest.raises(errors.InputError, match="another architecture .*num_experts"):
    loop.run_day(make_config(root, logs_root, day=3, model=wider))
  with open(production, encoding="utf-8") as f:
    assert f.read() == before
  assert not os.path.exists(os.path.join(root, "models", "3", "steps"))


def test_production_falling_far_below_its_last_evaluation_alerts(world, first_day, tmp_path):
  root, logs_root = day_after_first(world, first_day, tmp_path)
  # Day 2's report says its model scored 0.99 when promoted: day 3 scores it far lower.
  paths = layout.DayPaths(os.path.join(root, "models"), 2)
  day2 = json.loads(open(paths.report_json, encoding="utf-8").read())
  day2["evaluation"]["candidate"]["auc"] = 0.99
  with open(paths.report_json, "w", encoding="utf-8") as f:
    json.dump(day2, f)
  report = loop.run_day(make_config(root, logs_root, day=3, auc_alert_drop=0.05))
  (alert,) = report["alerts"]
  assert alert.startswith("production's AUC fell from 0.9900 (day 2) to ")
  assert "ALERTS:" in open(os.path.join(root, "models", "3", "day_report.md")).read()
  assert first_day["report"]["alerts"] == []
