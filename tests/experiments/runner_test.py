"""Runs a 2-configuration suite in-process on 400 simulated rows: files, mean / std, resume,
under both protocols (fixed epochs; settings chosen on validation), and the test-positives
check."""

import json
import math
import os

import numpy as np
import pytest

from kaml_tf import schema as schema_lib
from kaml_tf.data import stats as stats_lib
from kaml_tf.logs import records
from experiments import protocol
from experiments import runner
from kaml_tf.datasets.simulation import simulator
from kaml_tf.training import config as config_lib
from kaml_tf.training import trainer

# A model small enough to build and trace in a few seconds.
TINY_MODEL = {
  "embedding_dim": 4,
  "expert_units": [8],
  "num_experts": 2,
  "tower_units": [4],
  "hke_sub_tower_units": [4],
  "hke_final_units": [],
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  """400 simulated rows: train days 0-2, test day 3, with true labels."""
  folder = str(tmp_path_factory.mktemp("simulated"))
  simulator.write_simulation(
    simulator.SimulationConfig(
      num_rows=400,
      train_days=3,
      test_days=1,
      num_ad_tasks=40,
      num_users=200,
      num_apps=30,
      num_advertisers=10,
      num_categories=5,
      num_slots=10,
    ),
    folder,
  )
  return folder


def _config(data, out, **overrides):
  values = dict(
    suite="oracle",
    output_dir=str(out),
    data_dir=data,
    repeats=2,
    base_seed=5,
    batch_size=128,
    configs=("Vanilla", "KAML"),
    model_overrides=TINY_MODEL,
    command="python -m pipelines.experiment --x",
    protocol=protocol.ProtocolConfig(protocol=protocol.FIXED_EPOCHS),
    min_test_positives=0,
    bootstrap_resamples=50,
  )
  values.update(overrides)
  return runner.ExperimentConfig(**values)


# Only the learning rate is searched: 2 settings for every configuration.
LEARNING_RATES = {
  "learning_rate": [1e-3, 2e-3],
  "dropout": [],
  "embedding_l2": [],
  "rank_gamma": [],
  "extended_weight": [],
  "alpha": [],
}


def _validation_config(data, out, trials=2, **overrides):
  return _config(
    data,
    out,
    protocol=protocol.ProtocolConfig(trials_per_config=trials, patience=1),
    search_space=LEARNING_RATES,
    **dict(dict(repeats=1), **overrides),
  )


@pytest.fixture
def train_calls(monkeypatch):
  """Records the model_dir of every trainer call."""
  calls = []
  real = trainer.train

  def counting(run_config, model_dir, **kwargs):
    calls.append(os.path.relpath(model_dir))
    return real(run_config, model_dir, **kwargs)

  monkeypatch.setattr(trainer, "train", counting)
  return calls


def _metrics(out, name, run):
  with open(os.path.join(runner.run_dir(out, name, run), runner.METRICS_FILE)) as f:
    return json.load(f)


def test_runs_reports_and_resumes(data_dir, tmp_path, train_calls):
  out = str(tmp_path / "out")
  lines = []
  # First start: one seed only (as if the job had been stopped after it).
  runner.run_experiment(_config(data_dir, out, repeats=1), progress=lines.append, verbose=0)
  assert len(train_calls) == 2
  assert sorted(os.listdir(out)) == [
    "auc.png",
    "experiment.json",
    "logloss.png",
    "oracle_auc.png",
    "oracle_logloss.png",
    "results.json",
    "results.md",
    "runs",
    "stats.parquet",
    "test_positives.json",
  ]

  # Restart with two seeds: the finished seed-0 runs are skipped, the seed-1 runs trained.
  lines.clear()
  results = runner.run_experiment(_config(data_dir, out), progress=lines.append, verbose=0)
  assert len(train_calls) == 4
  assert train_calls[2:] == [
    os.path.relpath(os.path.join(runner.run_dir(out, n, 1), "model")) for n in ("Vanilla", "KAML")
  ]
  assert lines[0] == "[1/4] Vanilla seed-0 (seed 5): finished earlier, skipped"
  assert lines[1] == "[2/4] KAML seed-0 (seed 5): finished earlier, skipped"
  assert lines[2].startswith("[3/4] Vanilla seed-1 (seed 6): training in ")
  assert lines[3].startswith("[3/4] Vanilla seed-1 (seed 6): done in ")
  assert lines[-1].startswith("wrote results.json, auc.png, ")

  # Each run trained with seed base_seed + r and its configuration's knobs.
  vanilla = config_lib.RunConfig.load(os.path.join(runner.run_dir(out, "Vanilla", 1), "model"))
  kaml = config_lib.RunConfig.load(os.path.join(runner.run_dir(out, "KAML", 0), "model"))
  assert (
    vanilla.optim.seed,
    vanilla.data.mask_policy,
    vanilla.data.stats_path,
    vanilla.model.hke,
    vanilla.loss.gamma,
  ) == (6, "base", "", False, 1.0)
  assert (kaml.optim.seed, kaml.data.mask_policy, kaml.model.hke, kaml.loss.gamma) == (
    5,
    "adm",
    True,
    0.9,
  )
  assert kaml.data.stats_path == os.path.join(os.path.abspath(out), "stats.parquet")
  assert (kaml.model.expert_units, kaml.optim.batch_size) == ((8,), 128)
  # The statistics cover every train day (0-2) and none of the test day.
  stats = stats_lib.load_stats(kaml.data.stats_path)
  assert (stats.window_start, stats.window_end) == (0, 2)

  # results.json: every run's metrics, and mean / sample std that match them.
  with open(os.path.join(out, "results.json")) as f:
    saved = json.load(f)
  assert saved == json.loads(json.dumps(results))
  for name in ("Vanilla", "KAML"):
    config = saved["configurations"][name]
    runs = [_metrics(out, name, r) for r in range(2)]
    assert [r["metrics"] for r in config["runs"]] == runs
    assert [r["seed"] for r in config["runs"]] == [5, 6]
    for block, get in (
      ("per_target", lambda m: m["overall"]),
      ("oracle", lambda m: m["oracle"]["overall"]),
    ):
      for metric in ("auc", "logloss"):
        x, y = (get(m)[metric] for m in runs)
        summary = config["summary"][block]["overall"][metric]
        # Two runs: the mean is their midpoint and the sample std |x - y| / sqrt(2).
        assert summary == {
          "mean": pytest.approx((x + y) / 2),
          "std": pytest.approx(abs(x - y) / math.sqrt(2)),
          "n": 2,
        }
  assert saved["configurations"]["KAML"]["settings"]["alpha"] == [3, 2, 2, 2, 2]
  assert saved["experiment"]["seeds"] == [5, 6]
  markdown = (tmp_path / "out" / "results.md").read_text()
  assert "python -m pipelines.experiment --x" in markdown.splitlines()[:6]
  assert "| RelaImpr. |" in markdown

  # A run without metrics.json is unfinished: a restart trains (resumes) it, and only it.
  os.remove(os.path.join(runner.run_dir(out, "KAML", 1), runner.METRICS_FILE))
  runner.run_experiment(_config(data_dir, out), progress=lines.append, verbose=0)
  assert train_calls[4:] == [os.path.relpath(os.path.join(runner.run_dir(out, "KAML", 1), "model"))]

  # A finished run whose metrics lack the true-label block is evaluated again, not trained.
  path = os.path.join(runner.run_dir(out, "Vanilla", 0), runner.METRICS_FILE)
  complete = _metrics(out, "Vanilla", 0)
  with open(path, "w") as f:
    json.dump({k: v for k, v in complete.items() if k != "oracle"}, f)
  lines.clear()
  runner.run_experiment(_config(data_dir, out), progress=lines.append, verbose=0)
  assert len(train_calls) == 5
  assert lines[0] == (
    "[1/4] Vanilla seed-0 (seed 5): finished earlier, evaluating it again (true labels, "
    "predictions)"
  )
  assert _metrics(out, "Vanilla", 0) == complete

  # A restart with other fixed settings is refused before anything runs.
  with pytest.raises(runner.ExperimentError, match=r"epochs: 1 -> 2"):
    runner.run_experiment(_config(data_dir, out, epochs=2), progress=lines.append)
  assert len(train_calls) == 5


def test_train_window_covers_every_train_day(data_dir):
  window = runner.train_window(os.path.join(data_dir, "train-*"))
  assert (window.window_days, window.end_day) == (3, 2)


def test_data_without_the_files_fails_naming_the_pattern(tmp_path, data_dir):
  empty = tmp_path / "empty"
  empty.mkdir()
  (empty / "schema.json").write_text(open(os.path.join(data_dir, "schema.json")).read())
  with pytest.raises(FileNotFoundError, match="no log files match .*train-"):
    runner.run_experiment(_config(str(empty), tmp_path / "out"), progress=lambda _: None)
  # No run started, so the failed start binds nothing: a corrected start is accepted.
  runner.check_manifest(_config(data_dir, tmp_path / "out"))


def test_manifest_binds_the_fixed_settings_once_runs_exist(tmp_path):
  runner.check_manifest(_config("data", tmp_path))
  (tmp_path / "runs").mkdir()
  runner.check_manifest(_config("data", tmp_path, repeats=7, configs=("KAML",), command="another"))
  with pytest.raises(
    runner.ExperimentError, match=r"batch_size: 128 -> 256; learning_rate: 0.001 -> 0.002"
  ):
    runner.check_manifest(_config("data", tmp_path, batch_size=256, learning_rate=0.002))
  os.remove(tmp_path / "experiment.json")
  with pytest.raises(runner.ExperimentError, match="holds runs but no experiment.json"):
    runner.check_manifest(_config("data", tmp_path))


@pytest.mark.parametrize(
  "overrides, message",
  [
    (dict(data_dir=""), "data_dir: suite 'oracle' needs the output of"),
    (
      dict(suite="kuairand", configs=(), kuairand_log="l", kuairand_user_features="u"),
      "data_dir: not used by suite 'kuairand'",
    ),
    (
      dict(
        suite="kuairand",
        configs=(),
        data_dir="",
        stats_path="s.parquet",
        kuairand_log="l",
        kuairand_user_features="u",
      ),
      "stats_path: not used by suite",
    ),
    (dict(suite="kuairand", configs=(), data_dir=""), "kuairand_log: suite 'kuairand' needs it"),
    (dict(repeats=0), "repeats: must be an integer >= 1, got 0"),
    (dict(base_seed=-1), "base_seed: must be an integer >= 0, got -1"),
    (dict(batch_size=0), "batch_size: must be >= 1, got 0"),
    (dict(epochs=0), "epochs: must be >= 1, got 0"),
    (dict(learning_rate=0.0), "learning_rate: must be > 0"),
    (dict(steps_per_epoch=0), "steps_per_epoch: must be >= 1"),
    (dict(shuffle_buffer=-1), "shuffle_buffer: must be >= 0"),
    (dict(configs=("MMoE",)), r"configs: suite 'oracle' has no configuration\(s\) \['MMoE'\]"),
    (dict(model_overrides={"backbone": "ple"}), "model_overrides: 'backbone' is set by"),
    (dict(model_overrides={"num_experts": 0}), "model_overrides of Vanilla: ModelConfig"),
    (dict(suite="tables"), "suite: unknown suite 'tables'"),
    (dict(output_dir=""), "output_dir: is required"),
  ],
)
def test_invalid_configs_name_the_field(overrides, message):
  with pytest.raises(ValueError, match=message):
    _config("data", "out", **overrides)


def test_fixed_settings_use_absolute_paths_and_json_ready_overrides():
  config = _config("data", "out")
  fixed = config.fixed_settings()
  assert fixed["data_dir"] == os.path.abspath("data")
  assert fixed["model_overrides"]["expert_units"] == [8]
  assert config.model_overrides["expert_units"] == (8,)
  assert config.describe()["configs"] == ["Vanilla", "KAML"]
  assert config.describe()["seeds"] == [5, 6]


def _tuning(out, name):
  with open(os.path.join(runner.tuning_dir(out, name), "tuning_report.json")) as f:
    return json.load(f)


def test_validation_protocol_chooses_each_configurations_settings_then_runs_the_seeds(
  data_dir, tmp_path, train_calls
):
  out = str(tmp_path / "out")
  results = runner.run_experiment(_validation_config(data_dir, out), progress=lambda _: None)
  # Per configuration: 2 trials on validation, then the seed's final run.
  assert len(train_calls) == 6
  for name in ("Vanilla", "KAML"):
    report = _tuning(out, name)
    # The same budget: every configuration ran exactly 2 trials, the suite's settings first.
    assert [t["point"]["learning_rate"] for t in report["trials"]] == [1e-3, 2e-3]
    best = max(report["trials"], key=lambda t: t["score"])
    assert report["best"]["point"] == best["point"]
    chosen = results["configurations"][name]["chosen"]
    assert (chosen["trials"], chosen["point"], chosen["validation_auc"]) == (
      2,
      best["point"],
      best["score"],
    )
    final = config_lib.RunConfig.load(os.path.join(runner.run_dir(out, name, 0), "model"))
    # The seed's final run: the chosen settings, early-stopped and calibrated on day 2.
    assert final.optim.learning_rate == best["point"]["learning_rate"]
    assert (final.optim.seed, final.data.validation_days) == (5, 1)
    assert (final.optim.early_stopping_patience, final.optim.calibrate) == (1, True)
  kaml = config_lib.RunConfig.load(os.path.join(runner.run_dir(out, "KAML", 0), "model"))
  assert (kaml.data.stats_mode, os.path.basename(kaml.data.stats_path)) == (
    "point_in_time",
    "stats_daily.parquet",
  )
  assert stats_lib.load_stats(kaml.data.stats_path).is_daily
  markdown = (tmp_path / "out" / "results.md").read_text()
  assert "## Settings chosen on validation" in markdown
  assert results["blocks"] == ["per_target", "raw", "oracle"]

  # The intervals' point is the table's metric, on the same rows.
  interval = results["intervals"]["per_target"]["configurations"]["KAML"]["All"]["auc"]
  assert interval["value"] == pytest.approx(_metrics(out, "KAML", 0)["overall"]["auc"])
  assert interval["low"] <= interval["high"]
  rela = results["intervals"]["per_target"]["rela_impr"]["KAML"]["All"]
  assert rela["value"] == pytest.approx(results["rela_impr"]["per_target"]["All"]["value"])

  # A second seed reuses the chosen settings: its two runs train, no trial runs again.
  runner.run_experiment(_validation_config(data_dir, out, repeats=2), progress=lambda _: None)
  assert train_calls[6:] == [
    os.path.relpath(os.path.join(runner.run_dir(out, n, 1), "model")) for n in ("Vanilla", "KAML")
  ]
  assert all(t["reused"] for t in _tuning(out, "KAML")["trials"])
  second = config_lib.RunConfig.load(os.path.join(runner.run_dir(out, "KAML", 1), "model"))
  assert (second.optim.seed, second.optim.learning_rate) == (6, best["point"]["learning_rate"])

  # The normal approximation of the intervals: a new report of the finished runs, no training;
  # the same point, drawn around it.
  normal = runner.run_experiment(
    _validation_config(data_dir, out, repeats=2, interval_method="normal"), progress=lambda _: None
  )
  assert len(train_calls) == 8
  assert normal["intervals_method"] == "normal"
  cell = normal["intervals"]["per_target"]["configurations"]["KAML"]["All"]["auc"]
  seed_mean = np.mean([_metrics(out, "KAML", r)["overall"]["auc"] for r in (0, 1)])
  assert cell["value"] == pytest.approx(seed_mean)
  assert cell["low"] < seed_mean < cell["high"]
  assert "normal approximation of row resampling" in (tmp_path / "out" / "results.md").read_text()


def test_a_search_budget_larger_than_a_configurations_settings_is_refused(
  data_dir, tmp_path, train_calls
):
  with pytest.raises(
    runner.ExperimentError,
    match=r"configuration 'Vanilla' has only 2 distinct settings .* --trials_per_config=3",
  ):
    runner.run_experiment(
      _validation_config(data_dir, str(tmp_path / "out"), trials=3), progress=lambda _: None
    )
  assert train_calls == []


def test_test_positives_are_counted_per_action_and_too_few_fail_before_training(
  data_dir, tmp_path, train_calls
):
  schema = schema_lib.Schema.load(os.path.join(data_dir, "schema.json"))
  test = os.path.join(data_dir, "test-*")
  columns = records.read_columns(test, schema)
  by_hand = {
    a: int(columns[k][columns["target_action"] == i].sum())
    for i, (a, k) in enumerate(zip(schema.actions, schema.label_keys))
  }
  assert runner.count_test_positives(test, schema) == by_hand
  first = schema.actions[0]
  with pytest.raises(
    runner.ExperimentError,
    match=rf"action '{first}' has {by_hand[first]} positives in its target traffic of the test "
    r"split, fewer than --min_test_positives=1000.*pipelines.simulate --test_days=K",
  ):
    runner.run_experiment(
      _config(data_dir, str(tmp_path / "out"), min_test_positives=1000), progress=lambda _: None
    )
  assert train_calls == []
  with open(tmp_path / "out" / runner.POSITIVES_FILE) as f:
    assert json.load(f) == {test: by_hand}


def test_embedding_optimizer_reaches_every_run_and_binds_the_manifest(tmp_path):
  adagrad = dict(embedding_optimizer="adagrad", embedding_learning_rate=0.1)
  config = _config("data", tmp_path, **adagrad)
  source = runner.DataSource(
    schema_path="s.json", train_files="t", test_files="u", stats_path="s.parquet"
  )
  for variant in config.suite_def.variants:
    optim = runner.make_run_config(config, variant, source, config.seed(1)).optim
    assert (optim.embedding_optimizer, optim.embedding_learning_rate, optim.seed) == (
      "adagrad",
      0.1,
      6,
    )
  assert config.describe()["embedding_optimizer"] == "adagrad"
  # One Adam, the default: its manifest is the one written before the setting existed.
  assert "embedding_optimizer" not in _config("data", tmp_path).fixed_settings()
  assert _config("data", tmp_path).describe()["embedding_optimizer"] == "adam"
  runner.check_manifest(config)
  (tmp_path / "runs").mkdir()
  runner.check_manifest(config)
  with pytest.raises(
    runner.ExperimentError,
    match=r"embedding_learning_rate: 0.1 -> None; embedding_optimizer: 'adagrad' -> None",
  ):
    runner.check_manifest(_config("data", tmp_path))
  with pytest.raises(runner.ExperimentError, match=r"embedding_learning_rate: 0.1 -> 0.2$"):
    runner.check_manifest(_config("data", tmp_path, **dict(adagrad, embedding_learning_rate=0.2)))
  with pytest.raises(ValueError, match=r"^embedding_learning_rate: is only used with"):
    _config("data", tmp_path, embedding_learning_rate=0.1)
