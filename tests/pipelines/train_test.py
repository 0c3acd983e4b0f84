"""The training job run in-process: flags to config, errors naming flags, a real run."""

import json
import os

from absl import app
from absl import flags
from absl.testing import flagsaver
import pytest

from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.data import point_in_time
from kaml_tf.data import stats as stats_lib
from pipelines import train

TINY_FLAGS = dict(
  expert_units=["8"],
  num_experts=2,
  tower_units=["4"],
  embedding_dim=4,
  batch_size=128,
  shuffle_buffer=500,
  stats_mode="",
)


def _flags(logs, directory, **overrides):
  values = dict(
    schema=logs["schema"],
    train=logs["train"],
    stats=logs["stats"],
    model_dir=directory,
    mask="adm",
    hke=True,
    rank_gamma=0.9,
    **TINY_FLAGS,
  )
  values.update(overrides)
  return values


def test_kaml_run_prints_losses_and_writes_checkpoints(small_logs, tmp_path, capsys):
  model_dir = str(tmp_path / "kaml")
  with flagsaver.flagsaver(**_flags(small_logs, model_dir)):
    train.main([])
  out = capsys.readouterr().out
  assert "trained 1 epoch(s), 7 steps" in out
  assert "bce=" in out and "rank=" in out and "auc_retention=" in out
  assert os.path.exists(os.path.join(model_dir, "checkpoints", "checkpoint"))


def test_soft_adm_with_dropout_and_embedding_l2_trains(small_logs, tmp_path, capsys):
  model_dir = str(tmp_path / "soft")
  with flagsaver.flagsaver(
    **_flags(
      small_logs,
      model_dir,
      extended_weight=["0.5"],
      embedding_l2=1e-3,
      dropout=0.2,
      masked_pairs_only=True,
    )
  ):
    train.main([])
  final = dict(item.split("=") for item in capsys.readouterr().out.split("final: ")[1].split(", "))
  assert float(final["regularization"]) > 0.0
  with open(os.path.join(model_dir, "config.json")) as f:
    saved = json.load(f)
  assert saved["loss"]["extended_weight"] == [0.5] and saved["model"]["embedding_l2"] == 1e-3


@pytest.mark.parametrize(
  "overrides, message",
  [
    (dict(alpha=["1", "2"]), "--alpha: expected 5 values"),
    (dict(alpha=["x"]), "--alpha: expected integers"),
    (dict(stats=""), "--stats: --mask=adm needs the conversion statistics"),
    (dict(rank_gamma=1.5), "--rank_gamma: must be in [0, 1], got 1.5"),
    (dict(rank_betas=["1"]), "--rank_betas: expected 5 values"),
    (dict(batch_size=0), "--batch_size: must be >= 1, got 0"),
    (dict(model_dir=""), "--model_dir is required"),
    (dict(dropout=1.0), "dropout"),
    (dict(extended_weight=["1.5"]), "--extended_weight: each weight must be in [0, 1]"),
    (
      dict(extended_weight=["0.5", "1"]),
      "--extended_weight: expected 1 value (all actions) or 5 (one per action), got 2",
    ),
    (dict(extended_weight=["x"]), "--extended_weight: expected numbers"),
    (dict(embedding_l2=-0.1), "embedding_l2 must be a finite number >= 0, got -0.1"),
  ],
)
def test_flag_errors_fail_before_any_work(small_logs, tmp_path, overrides, message):
  model_dir = str(tmp_path / "never")
  with flagsaver.flagsaver(**_flags(small_logs, model_dir, **overrides)):
    with pytest.raises(app.UsageError) as e:
      train.main([])
  assert message in str(e.value)
  assert not os.path.exists(model_dir)


def test_regularisation_and_soft_adm_flags_reach_the_config(small_logs, tmp_path):
  with flagsaver.flagsaver(
    **_flags(small_logs, str(tmp_path), extended_weight=["0.25"], embedding_l2=1e-4, dropout=0.1)
  ):
    config = train.run_config_from_flags()
  assert config.loss.extended_weight == (0.25,)
  assert (config.model.embedding_l2, config.model.dropout) == (1e-4, 0.1)
  with flagsaver.flagsaver(**_flags(small_logs, str(tmp_path))):
    defaults = train.run_config_from_flags()
  assert defaults.loss.extended_weight == () and defaults.model.embedding_l2 == 0.0


def test_unknown_model_is_rejected_when_flags_are_parsed():
  with pytest.raises(flags.IllegalFlagValueError, match="value should be one of <single_task"):
    flags.FLAGS["model"].parse("transformer")
  assert flags.FLAGS.model == "mmoe"


def _daily_stats(logs, tmp_path):
  schema = schema_lib.Schema.load(logs["schema"])
  path = str(tmp_path / "daily.parquet")
  config = stats_lib.StatsConfig(window_days=28, as_of="daily")
  stats_lib.compute_stats(logs["train"], schema, config).save(path)
  return path, schema


def test_point_in_time_run_counts_cold_starts(small_logs, tmp_path):
  stats, schema = _daily_stats(small_logs, tmp_path)
  model_dir = str(tmp_path / "pit")
  with flagsaver.flagsaver(**_flags(small_logs, model_dir, stats=stats, stats_mode="")):
    train.main([])
  with open(os.path.join(model_dir, "train_summary.json"), encoding="utf-8") as f:
    epoch = json.load(f)["history"][-1]
  # The 28 train days fit in the window, so the cold starts are the rows of each ad task's
  # first day.
  cols = records.read_columns(small_logs["train"], schema)
  first_day = {}
  for task, day in zip(cols["ad_task_id"].tolist(), cols["day"].tolist()):
    first_day[task] = min(day, first_day.get(task, day))
  expected = sum(
    day == first_day[task] for task, day in zip(cols["ad_task_id"].tolist(), cols["day"].tolist())
  )
  assert 0 < expected < len(cols["day"])
  assert epoch["cold_start_samples"] == expected
  assert epoch["unknown_ad_task_samples"] == 0
  assert epoch["samples_read"] == len(cols["day"])


@pytest.mark.parametrize(
  "mode, stats, message",
  [
    ("static", "daily", "--stats_mode=static: .*daily.parquet holds daily"),
    (
      "point_in_time",
      "static",
      "--stats_mode=point_in_time: .*stats.parquet holds static .*"
      "rerun pipelines.compute_stats --as_of=daily",
    ),
  ],
)
def test_stats_mode_that_does_not_fit_fails_before_any_work(
  small_logs, tmp_path, mode, stats, message
):
  path = _daily_stats(small_logs, tmp_path)[0] if stats == "daily" else small_logs["stats"]
  model_dir = str(tmp_path / "never")
  with flagsaver.flagsaver(**_flags(small_logs, model_dir, stats=path, stats_mode=mode)):
    with pytest.raises(point_in_time.StatsModeError, match=message):
      train.main([])
  assert not os.path.exists(model_dir)
