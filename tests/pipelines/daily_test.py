"""`pipelines.daily` in-process: the scheduler's contract (outputs and exit codes)."""

import dataclasses
import json
import os
import shutil

from absl.testing import flagsaver
import pytest

from kaml_tf import schema as schema_lib
from kaml_tf.daily import layout
from kaml_tf.daily import lock
from pipelines import daily
from tests.daily import simulated_days


@pytest.fixture(scope="module")
def world(tmp_path_factory):
  return simulated_days.make_world(str(tmp_path_factory.mktemp("logs")))


def _flags(root, logs_root, day, **overrides):
  values = dict(
    run_day=day,
    logs_root=logs_root,
    models_root=os.path.join(root, "models"),
    exports_root=os.path.join(root, "exports"),
    training_days=2,
    batch_size=64,
    epochs=1,
    seed=3,
    # List flags take strings, as on the command line.
    **{
      k: [str(x) for x in v] if isinstance(v, tuple) else v for k, v in simulated_days.TINY.items()
    },
  )
  values.update(overrides)
  return values


@pytest.fixture
def logs_root(world, tmp_path):
  path = str(tmp_path / "logs")
  shutil.copytree(world["logs_root"], path)
  return path


def _exit_code(capsys, root, logs_root, day, **overrides):
  with flagsaver.flagsaver(**_flags(root, logs_root, day, **overrides)):
    with pytest.raises(SystemExit) as e:
      daily.main([])
  return e.value.code, capsys.readouterr().err


def test_promotes_then_a_rerun_prints_the_same_decision(logs_root, tmp_path, capsys):
  for _ in range(2):
    with flagsaver.flagsaver(**_flags(str(tmp_path), logs_root, 2)):
      daily.main([])
    assert capsys.readouterr().out == "day 2: promoted; no production model yet\n"
  with open(tmp_path / "models" / "production.json", encoding="utf-8") as f:
    assert json.load(f)["version"] == 2


def test_missing_day_exits_2(logs_root, tmp_path, capsys):
  code, err = _exit_code(capsys, str(tmp_path), logs_root, 5)
  assert code == 2
  assert "FATAL bad input: no logs for day 5" in err


def test_logs_failing_validation_exit_2_and_production_stays(world, logs_root, tmp_path, capsys):
  root = str(tmp_path)
  with flagsaver.flagsaver(**_flags(root, logs_root, 2)):
    daily.main([])
  production = (tmp_path / "models" / "production.json").read_text()
  bad = {k: v.copy() for k, v in world["days"][3].items()}
  bad[world["schema"].label_keys[0]][5] = 2  # A label outside {0, 1}.
  simulated_days.write_day(world["schema"], bad, logs_root, 3)
  code, err = _exit_code(capsys, root, logs_root, 3)
  assert code == 2
  assert "fail validation" in err
  assert (tmp_path / "models" / "production.json").read_text() == production


def test_production_of_another_schema_exits_2(world, logs_root, tmp_path, capsys):
  root = str(tmp_path)
  with flagsaver.flagsaver(**_flags(root, logs_root, 2)):
    daily.main([])
  production = (tmp_path / "models" / "production.json").read_text()
  # Day 3 arrives with a schema of another vocabulary size: production cannot score it.
  schema = world["schema"]
  first = schema.sparse_features[0]
  other = dataclasses.replace(
    schema,
    sparse_features=(dataclasses.replace(first, num_buckets=first.num_buckets + 1),)
    + tuple(schema.sparse_features[1:]),
  )
  other.save(schema_lib.schema_path(logs_root))
  simulated_days.write_day(other, world["days"][3], logs_root, 3)
  code, err = _exit_code(capsys, root, logs_root, 3)
  assert code == 2
  assert "another schema" in err or "trained on schema" in err
  assert (tmp_path / "models" / "production.json").read_text() == production


def test_second_loop_for_the_same_day_exits_1(logs_root, tmp_path, capsys):
  with lock.DayLock(layout.DayPaths(str(tmp_path / "models"), 2).lock):
    code, err = _exit_code(capsys, str(tmp_path), logs_root, 2)
  assert code == 1
  assert "another daily loop" in err
  assert not os.path.exists(tmp_path / "models" / "production.json")
