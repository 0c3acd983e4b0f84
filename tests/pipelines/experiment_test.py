"""Tests of `pipelines/experiment.py`: flags, usage errors, and the kuairand suite end to end.

The end-to-end test runs `main` in-process on the first 300 rows of the real KuaiRand log.
"""

import gzip
import importlib
import json
import os
import pathlib

from absl import app
from absl import flags
from absl.testing import flagsaver
import numpy as np
import pytest

from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.data import stats as stats_lib
from kaml_tf.datasets.kuairand import conversion
from kaml_tf.datasets.simulation import simulator
from kaml_tf.training import config as config_lib
from pipelines import dataclass_flags
from pipelines import experiment
from pipelines import train as train_job  # noqa: F401  (defines the training flags read below)

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = REPO_ROOT / "data" / "kuairand"
LOG = DATA / "kuairand_27k_likehate_kcore15.tsv.gz"
USERS = DATA / "user_features_pure.csv.gz"
TINY_MODEL = json.dumps(
  {"embedding_dim": 4, "expert_units": [8], "num_experts": 2, "tower_units": [4]}
)


@pytest.fixture(autouse=True)
def parsed_flags():
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


@pytest.fixture(scope="module")
def excerpt(tmp_path_factory):
  """The header and first 300 rows of the real log, as a TSV in a temporary folder."""
  path = tmp_path_factory.mktemp("kuairand") / "excerpt.tsv"
  with gzip.open(LOG, "rt") as f:
    lines = [next(f) for _ in range(301)]
  path.write_text("".join(lines))
  return str(path)


def test_every_entry_point_imports_into_one_process_with_the_same_shared_defaults():
  modules = sorted(p.stem for p in (REPO_ROOT / "pipelines").glob("*.py") if p.stem != "__init__")
  for name in modules:
    importlib.import_module(f"pipelines.{name}")
  for path in sorted((REPO_ROOT / "export").glob("*.py")):
    importlib.import_module(f"export.{path.stem}")
  assert "experiment" in modules and "train" in modules
  # The shared flags are defined once (pipelines.common) with the training config's defaults
  # (`repeats`: the experiment's and pipelines/benchmark.py's).
  defaults = {
    name: flags.FLAGS[name].default
    for name in (
      "seed",
      "output_dir",
      "batch_size",
      "learning_rate",
      "epochs",
      "steps_per_epoch",
      "stats",
      "shuffle_buffer",
      "repeats",
    )
  }
  assert defaults == {
    "seed": 0,
    "output_dir": None,
    "batch_size": 5000,
    "learning_rate": 1e-3,
    "epochs": 1,
    "steps_per_epoch": None,
    "stats": "",
    "shuffle_buffer": 100_000,
    "repeats": 3,
  }


@pytest.mark.parametrize(
  "values, message",
  [
    (dict(suite=None, output_dir="out"), "--suite is required"),
    (dict(suite="oracle", output_dir=""), "--output_dir is required"),
    (dict(suite="oracle", output_dir="out", data_dir=None), "--data_dir: suite 'oracle' needs"),
    (dict(suite="kuairand", output_dir="out", data_dir="d"), "--data_dir: not used by suite"),
    (dict(suite="kuairand", output_dir="out", stats="s"), "--stats: not used by suite"),
    (
      dict(suite="oracle", output_dir="out", data_dir="d", seed=-1),
      "--seed: must be an integer >= 0, got -1",
    ),
    (
      dict(suite="oracle", output_dir="out", data_dir="d", batch_size=0),
      "--batch_size: must be >= 1, got 0",
    ),
    (dict(suite="oracle", output_dir="out", data_dir="d", repeats=0), "--repeats: must be"),
    (
      dict(suite="oracle", output_dir="out", data_dir="d", configs=["MMoE"]),
      r"--configs: suite 'oracle' has no configuration\(s\) \['MMoE'\]",
    ),
    (
      dict(suite="oracle", output_dir="out", data_dir="d", model_overrides="{x"),
      "--model_overrides: not valid JSON",
    ),
    (
      dict(suite="oracle", output_dir="out", data_dir="d", model_overrides="[1]"),
      "--model_overrides: expected a JSON object",
    ),
    (
      dict(suite="oracle", output_dir="out", data_dir="d", model_overrides='{"hke": true}'),
      "--model_overrides: 'hke' is set by each configuration",
    ),
    (
      dict(suite="oracle", output_dir="out", data_dir="d", search_space='{"lr": [1]}'),
      r"--search_space: unknown field\(s\) \['lr'\]",
    ),
    (
      dict(suite="oracle", output_dir="out", data_dir="d", search_space="[1]"),
      "--search_space: expected a JSON object",
    ),
    (
      dict(suite="oracle", output_dir="out", data_dir="d", trials_per_config=0),
      "--trials_per_config: must be an integer >= 1, got 0",
    ),
    (
      dict(suite="oracle", output_dir="out", data_dir="d", min_test_positives=-1),
      "--min_test_positives: must be an integer >= 0, got -1",
    ),
    (
      dict(
        suite="oracle",
        output_dir="out",
        data_dir="d",
        protocol="fixed_epochs",
        search_space='{"dropout": [0.1]}',
      ),
      "--search_space: only the validation protocol searches settings",
    ),
  ],
)
def test_bad_flags_are_usage_errors_naming_the_flag(values, message):
  with flagsaver.flagsaver(**values):
    with pytest.raises(app.UsageError, match=message):
      experiment.main(["experiment"])


def test_unexpected_arguments_are_rejected():
  with pytest.raises(app.UsageError, match="unexpected arguments"):
    experiment.main(["experiment", "extra"])


def test_config_and_command_from_flags():
  values = dict(
    suite="ablation",
    data_dir="/d",
    output_dir="/o",
    repeats=5,
    seed=2,
    epochs=3,
    batch_size=1000,
    learning_rate=0.002,
    steps_per_epoch=None,
    stats="",
    shuffle_buffer=10,
    configs=["MMoE", "KAML"],
    model_overrides='{"dropout": 0.1}',
    trials_per_config=4,
    protocol_patience=3,
    search_space='{"dropout": [0.0, 0.2]}',
    min_test_positives=200,
  )
  with flagsaver.flagsaver(**values):
    config = experiment.config_from_flags()
  assert config.command == (
    "python -m pipelines.experiment --suite=ablation --data_dir=/d --output_dir=/o "
    "--repeats=5 --seed=2 --epochs=3 --batch_size=1000 --learning_rate=0.002 "
    "--shuffle_buffer=10 --configs=MMoE,KAML '--model_overrides={\"dropout\": 0.1}' "
    "--protocol=validation --protocol_validation_days=1 --protocol_patience=3 "
    "--protocol_eval_every_steps=0 --protocol_calibrate --trials_per_config=4 "
    "'--search_space={\"dropout\": [0.0, 0.2]}' --min_test_positives=200 "
    "--bootstrap_resamples=1000 --interval_method=bootstrap"
  )
  assert (config.protocol.trials_per_config, config.protocol.patience) == (4, 3)
  assert config.space.dropout == (0.0, 0.2)
  assert config.space.learning_rate == (5e-4, 1e-3, 2e-3)  # The default space's.
  assert config.min_test_positives == 200
  assert (
    config.suite,
    config.data_dir,
    config.output_dir,
    config.repeats,
    config.base_seed,
    config.epochs,
    config.batch_size,
    config.learning_rate,
    config.shuffle_buffer,
    config.configs,
    dict(config.model_overrides),
  ) == ("ablation", "/d", "/o", 5, 2, 3, 1000, 0.002, 10, ("MMoE", "KAML"), {"dropout": 0.1})


def test_kuairand_suite_end_to_end(tmp_path, excerpt, capsys):
  out = tmp_path / "out"
  values = dict(
    suite="kuairand",
    output_dir=str(out),
    data_dir=None,
    stats="",
    kuairand_log=excerpt,
    kuairand_user_features=str(USERS),
    repeats=2,
    seed=3,
    epochs=1,
    batch_size=64,
    steps_per_epoch=None,
    configs=["KAML"],
    model_overrides=TINY_MODEL,
    shuffle_buffer=1000,
    protocol="fixed_epochs",
    min_test_positives=0,
  )
  with flagsaver.flagsaver(**values):
    experiment.main(["experiment"])
  printed = capsys.readouterr().out
  assert "[1/2] KAML seed-0 (seed 3): training in " in printed
  assert "[2/2] KAML seed-1 (seed 4): done in " in printed
  assert "Every action against the true labels (oracle evaluation)" in printed

  # Each seed has its own conversion (seed 3, then 4) with statistics of its train split.
  targets = []
  for run, seed in ((0, 3), (1, 4)):
    folder = out / "data" / f"seed-{run}"
    with open(folder / conversion.REPORT_FILE) as f:
      assert json.load(f)["config"]["seed"] == seed
    schema = schema_lib.Schema.load(str(folder / "schema.json"))
    train = records.read_columns(str(folder / "train-*"), schema)
    targets.append(train["target_action"])
    stats = stats_lib.load_stats(str(folder / "stats.parquet"), schema)
    # The window spans every train day.
    assert (stats.window_start, stats.window_end) == (train["day"].min(), train["day"].max())
    kaml = config_lib.RunConfig.load(str(out / "runs" / "KAML" / f"seed-{run}" / "model"))
    assert (
      kaml.optim.seed,
      kaml.data.mask_policy,
      kaml.data.alpha,
      kaml.model.hke,
      kaml.loss.gamma,
    ) == (seed, "adm", (1, 1, 1, 1), False, 0.9)
    assert kaml.data.stats_path == str(folder / "stats.parquet")
  # Redrawing the targets: the two seeds give the same rows different target actions.
  assert len(targets[0]) == len(targets[1])
  assert not np.array_equal(targets[0], targets[1])

  with open(out / "results.json") as f:
    results = json.load(f)
  assert results["blocks"] == ["per_target", "oracle"]
  assert results["actions"] == ["like", "follow", "comment", "forward"]
  assert list(results["configurations"]) == ["KAML"]
  assert [r["seed"] for r in results["configurations"]["KAML"]["runs"]] == [3, 4]
  # Every run was evaluated on every action against the true labels.
  assert all(
    "oracle" in r["metrics"] for c in results["configurations"].values() for r in c["runs"]
  )
  markdown = (out / "results.md").read_text().splitlines()
  assert markdown[5] == (
    f"python -m pipelines.experiment --suite=kuairand --kuairand_log={excerpt} "
    f"--kuairand_user_features={USERS} --output_dir={out} --repeats=2 --seed=3 --epochs=1 "
    f"--batch_size=64 --learning_rate=0.001 --shuffle_buffer=1000 --configs=KAML "
    f"'--model_overrides={TINY_MODEL}' --protocol=fixed_epochs --min_test_positives=0 "
    "--bootstrap_resamples=1000 --interval_method=bootstrap"
  )
  assert "| KAML | kaml | mmoe | adm | 1, 1, 1, 1 | no | 0.9 |" in markdown
  for name in ("auc.png", "logloss.png", "oracle_auc.png", "oracle_logloss.png"):
    assert os.path.getsize(out / name) > 0


def test_too_few_test_positives_end_the_job_before_training(tmp_path):
  data = tmp_path / "data"
  simulator.write_simulation(
    simulator.SimulationConfig(num_rows=200, train_days=2, num_ad_tasks=20, num_users=50),
    str(data),
  )
  values = dict(suite="oracle", data_dir=str(data), output_dir=str(tmp_path / "out"), stats="")
  with flagsaver.flagsaver(**values):
    with pytest.raises(app.UsageError, match=r"action 'activation' has \d+ positives .*=300"):
      experiment.main(["experiment"])
  assert not (tmp_path / "out" / "runs").exists()


def test_embedding_optimizer_flags_reach_the_config_and_the_command():
  values = dict(
    suite="oracle",
    data_dir="/d",
    output_dir="/o",
    embedding_optimizer="adagrad",
    embedding_learning_rate=0.1,
  )
  with flagsaver.flagsaver(**values):
    config = experiment.config_from_flags()
  assert (config.embedding_optimizer, config.embedding_learning_rate) == ("adagrad", 0.1)
  assert (
    "--learning_rate=0.001 --embedding_optimizer=adagrad --embedding_learning_rate=0.1 "
    in config.command
  )
  # pipelines.train reads the same flags into its run config.
  with flagsaver.flagsaver(schema="s.json", train="t", **values):
    optim = dataclass_flags.build(config_lib.RunConfig).optim
  assert (optim.embedding_optimizer, optim.embedding_learning_rate) == ("adagrad", 0.1)
