"""pipelines.compare in-process on a real early-stopped run: files written, exact zero deltas."""

import json
import os

from absl import app
from absl.testing import flagsaver
import pytest

from kaml_tf.evaluation import evaluator
from kaml_tf.training import trained_model
from pipelines import compare


def test_a_run_compared_with_itself_differs_by_zero(early_stopped, tmp_path, capsys):
  model_dir, logs = early_stopped["model_dir"], early_stopped["logs"]
  out = str(tmp_path / "compare")
  with flagsaver.flagsaver(
    runs=[f"ref={model_dir}", f"same={model_dir}"],
    reference="ref",
    test=logs["test"],
    output_dir=out,
    resamples=20,
  ):
    compare.main([])
  with open(os.path.join(out, "comparison.json"), encoding="utf-8") as f:
    result = json.load(f)
  expected = evaluator.metrics_of(
    evaluator.predict(trained_model.load(model_dir), logs["test"]), result["actions"]
  )
  served = result["configurations"]["same"]["served"]["overall"]
  assert served["auc"]["mean"] == pytest.approx(expected["overall"]["auc"])
  assert served["auc"]["runs"] == 1 and served["count"] == expected["overall"]["count"]
  versus = result["configurations"]["same"]["versus_reference"]
  assert versus["served"]["overall"]["auc"]["difference"] == 0.0
  assert versus["raw"]["overall"]["logloss"]["high"] == 0.0
  assert "**auc difference to ref (served" in capsys.readouterr().out
  assert os.path.exists(os.path.join(out, "comparison.md"))


@pytest.mark.parametrize(
  "runs, reference, message",
  [
    (["a"], "a", "--runs: expected name=GLOB"),
    (["a=/nonexistent/*"], "a", "matches no model directory"),
  ],
)
def test_bad_runs_are_named(early_stopped, tmp_path, runs, reference, message):
  with flagsaver.flagsaver(
    runs=runs, reference=reference, test=early_stopped["logs"]["test"], output_dir=str(tmp_path)
  ):
    with pytest.raises(app.UsageError, match=message):
      compare.main([])


def test_the_reference_must_be_one_of_the_runs(early_stopped, tmp_path):
  with flagsaver.flagsaver(
    runs=[f"a={early_stopped['model_dir']}"],
    reference="b",
    test=early_stopped["logs"]["test"],
    output_dir=str(tmp_path),
  ):
    with pytest.raises(app.UsageError, match="--reference: 'b' is not one of"):
      compare.main([])
