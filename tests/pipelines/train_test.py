"""The training job run in-process: flags to config, errors naming flags, a real run."""

import os

from absl import app
from absl import flags
from absl.testing import flagsaver
import pytest

from pipelines import train

TINY_FLAGS = dict(expert_units=["8"], num_experts=2, tower_units=["4"], embedding_dim=4,
                  batch_size=128, shuffle_buffer=500)


def _flags(logs, directory, **overrides):
  values = dict(schema=logs["schema"], train=logs["train"], stats=logs["stats"],
                model_dir=directory, mask="adm", hke=True, rank_gamma=0.9, **TINY_FLAGS)
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


@pytest.mark.parametrize("overrides, message", [
    (dict(alpha=["1", "2"]), "--alpha: expected 5 values"),
    (dict(alpha=["x"]), "--alpha: expected integers"),
    (dict(stats=""), "--stats: --mask=adm needs the conversion statistics"),
    (dict(rank_gamma=1.5), "--rank_gamma: must be in [0, 1], got 1.5"),
    (dict(rank_betas=["1"]), "--rank_betas: expected 5 values"),
    (dict(batch_size=0), "--batch_size: must be >= 1, got 0"),
    (dict(model_dir=""), "--model_dir is required"),
    (dict(dropout=1.0), "dropout"),
])
def test_flag_errors_fail_before_any_work(small_logs, tmp_path, overrides, message):
  model_dir = str(tmp_path / "never")
  with flagsaver.flagsaver(**_flags(small_logs, model_dir, **overrides)):
    with pytest.raises(app.UsageError) as e:
      train.main([])
  assert message in str(e.value)
  assert not os.path.exists(model_dir)


def test_unknown_model_is_rejected_when_flags_are_parsed():
  with pytest.raises(flags.IllegalFlagValueError, match="value should be one of <single_task"):
    flags.FLAGS["model"].parse("transformer")
  assert flags.FLAGS.model == "mmoe"
