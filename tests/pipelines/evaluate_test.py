"""The evaluation job in-process: metrics.json has exactly the documented shape."""

import json

from absl import app
from absl.testing import flagsaver
import pytest

from pipelines import evaluate
from pipelines import train


@pytest.fixture(scope="module")
def model_dir(small_logs, tmp_path_factory):
  directory = str(tmp_path_factory.mktemp("evaluate") / "mmoe")
  with flagsaver.flagsaver(
    schema=small_logs["schema"],
    train=small_logs["train"],
    stats="",
    model_dir=directory,
    mask="base",
    hke=False,
    rank_gamma=1.0,
    expert_units=["8"],
    num_experts=2,
    tower_units=["4"],
    embedding_dim=4,
    batch_size=128,
  ):
    train.main([])
  return directory


def test_metrics_json_shape(small_logs, model_dir, tmp_path, capsys):
  output = str(tmp_path / "metrics.json")
  with flagsaver.flagsaver(
    model_dir=model_dir, test=small_logs["test"], output=output, oracle=True, base_metrics=""
  ):
    evaluate.main([])
  with open(output) as f:
    metrics = json.load(f)
  assert list(metrics) == [
    "actions",
    "overall",
    "skipped_other",
    "oracle",
    "calibration",
    "raw",
    "checkpoint",
  ]
  assert metrics["checkpoint"] == "checkpoints/ckpt-1"  # no validation: no best/
  # Not calibrated: the served figures are the raw ones.
  assert metrics["calibration"] is None
  assert metrics["raw"] == {
    k: metrics[k] for k in ("actions", "overall", "skipped_other", "oracle")
  }
  assert list(metrics["actions"]) == [
    "activation",
    "re_engagement",
    "registration",
    "payment",
    "retention",
  ]
  for block in [metrics["overall"], *metrics["actions"].values()]:
    assert list(block) == ["auc", "logloss", "count", "positives"]
  assert metrics["overall"]["count"] == sum(a["count"] for a in metrics["actions"].values())
  assert list(metrics["oracle"]) == ["actions", "overall"]
  assert "| per-target | overall |" in capsys.readouterr().out


def test_best_checkpoint_by_default_latest_on_request(early_stopped, tmp_path):
  model_dir, best = early_stopped["model_dir"], early_stopped["summary"]["best"]
  test = early_stopped["logs"]["test"]
  metrics = {}
  for which in ("best", "latest"):
    output = str(tmp_path / f"{which}.json")
    values = dict(model_dir=model_dir, test=test, output=output, oracle=False, base_metrics="")
    if which == "latest":
      values["checkpoint"] = "latest"
    with flagsaver.flagsaver(**values):
      evaluate.main([])
    with open(output) as f:
      metrics[which] = json.load(f)
  assert metrics["best"]["checkpoint"] == best["checkpoint"]
  assert metrics["latest"]["checkpoint"].startswith("checkpoints/ckpt-")
  assert metrics["best"]["overall"]["auc"] != metrics["latest"]["overall"]["auc"]
  # The job scores the restored checkpoint, as the library does.
  from kaml_tf.evaluation import evaluator  # pylint: disable=g-import-not-at-top
  from kaml_tf.training import trained_model  # pylint: disable=g-import-not-at-top

  for which in ("best", "latest"):
    expected = evaluator.evaluate(trained_model.load(model_dir, which), test)
    assert metrics[which]["overall"] == evaluator.strict_json(expected)["overall"]


def test_unknown_checkpoint_choice_is_refused():
  from absl import flags  # pylint: disable=g-import-not-at-top

  with pytest.raises(flags.IllegalFlagValueError, match="value should be one of <best|latest>"):
    flags.FLAGS["checkpoint"].parse("newest")


def test_missing_flag_is_named(tmp_path):
  with flagsaver.flagsaver(model_dir="", test="x", output=str(tmp_path / "m.json")):
    with pytest.raises(app.UsageError, match="--model_dir is required"):
      evaluate.main([])


def test_test_logs_of_another_schema_are_refused(small_logs, model_dir, tmp_path):
  """Logs beside another schema.json parse anyway; the job refuses them, naming the model."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  import shutil  # pylint: disable=g-import-not-at-top
  from kaml_tf.logs import records  # pylint: disable=g-import-not-at-top
  from kaml_tf import schema as schema_lib  # pylint: disable=g-import-not-at-top
  from kaml_tf.training import model_dir as model_dir_lib  # pylint: disable=g-import-not-at-top

  schema = schema_lib.Schema.load(small_logs["schema"])
  first = schema.sparse_features[0]
  other = dataclasses.replace(
    schema,
    sparse_features=(dataclasses.replace(first, num_buckets=first.num_buckets + 1),)
    + schema.sparse_features[1:],
  )
  other.save(str(tmp_path / "schema.json"))
  for path in records.list_files(small_logs["test"]):
    shutil.copy(path, tmp_path)
  output = str(tmp_path / "metrics.json")
  with flagsaver.flagsaver(
    model_dir=model_dir, test=str(tmp_path / "test-*"), output=output, oracle=False, base_metrics=""
  ):
    with pytest.raises(
      model_dir_lib.ModelDirError,
      match=f"{model_dir} was trained on schema {schema.fingerprint()} but the "
      f"test records' schema {tmp_path}/schema.json is "
      f"{other.fingerprint()}",
    ):
      evaluate.main([])
  assert not (tmp_path / "metrics.json").exists()
