"""The export job, run in-process: simulated logs -> model directory -> versioned SavedModel."""

import json
import os
import time

from absl import app
from absl import flags
from absl.testing import flagsaver
import kaml_tf  # noqa: F401
import numpy as np
import pytest
import tensorflow as tf

from export import export_model
from kaml_tf import schema as schema_lib
from kaml_tf.serving import client
from kaml_tf.training import model_dir as model_dir_lib
from kaml_tf.training import trained_model


def test_exports_a_version_that_scores_log_records(tmp_path, model_dir, simulated_logs, capsys):
  base = str(tmp_path / "serving")
  with flagsaver.flagsaver(model_dir=model_dir, export_base=base, version=42):
    export_model.main(["export_model"])
  path = os.path.join(base, "42")
  assert capsys.readouterr().out.strip() == path
  assert os.listdir(base) == ["42"]
  assert sorted(os.listdir(os.path.join(path, "assets"))) == ["actions.txt", "schema.json"]

  # What `make demo` does last: score a few test records through the exported signature.
  scored = client.score_log_records(path, os.path.join(simulated_logs, "test-*"), limit=6)
  target = scored[schema_lib.TARGET_ACTION]
  assert target.shape == (6,) and ((target >= 0) & (target < 5)).all()
  keras = trained_model.load(model_dir)
  probabilities = keras.predict_all({k: scored[k] for k in keras.schema.feature_names}).numpy()
  np.testing.assert_allclose(scored["cvr"], probabilities[np.arange(6), target], atol=1e-5)
  assert client.ExportedModel(path).signature_names == [
    "predict_all",
    "regress",
    "serve_examples",
    "serving_default",
  ]
  # The fixture's run kept no best checkpoint: the latest is exported, and named.
  with open(os.path.join(path, "assets.extra", "checkpoint.json")) as f:
    assert json.load(f) == {
      "checkpoint": "checkpoints/ckpt-1",
      "path": os.path.join(model_dir, "checkpoints", "ckpt-1"),
    }


def test_exports_the_best_checkpoint_by_default_and_the_latest_on_request(tmp_path, early_stopped):
  model_dir = early_stopped["model_dir"]
  test = early_stopped["logs"]["test"]
  base = str(tmp_path / "serving")
  for version, which in ((1, None), (2, "latest")):
    values = dict(model_dir=model_dir, export_base=base, version=version)
    if which:
      values["checkpoint"] = which
    with flagsaver.flagsaver(**values):
      export_model.main(["export_model"])
  names, cvr = {}, {}
  for version, which in ((1, "best"), (2, "latest")):
    path = os.path.join(base, str(version))
    with open(os.path.join(path, "assets.extra", "checkpoint.json")) as f:
      names[which] = json.load(f)["checkpoint"]
    scored = client.score_log_records(path, test, limit=6)
    keras = trained_model.load(model_dir, which)
    assert keras.checkpoint_name == names[which]
    probabilities = keras.predict_all({k: scored[k] for k in keras.schema.feature_names})
    rows = np.arange(6), scored[schema_lib.TARGET_ACTION]
    np.testing.assert_allclose(scored["cvr"], probabilities.numpy()[rows], atol=1e-6)
    cvr[which] = scored["cvr"]
  assert np.abs(cvr["best"] - cvr["latest"]).max() > 1e-3
  assert names["best"] == early_stopped["summary"]["best"]["checkpoint"]
  assert names["latest"].startswith("checkpoints/ckpt-")


def test_default_version_is_the_unix_time(tmp_path, model_dir, capsys):
  base = str(tmp_path / "serving")
  before = int(time.time())
  with flagsaver.flagsaver(model_dir=model_dir, export_base=base, version=None):
    export_model.main(["export_model"])
  version = int(os.path.basename(capsys.readouterr().out.strip()))
  assert before <= version <= int(time.time())
  assert client.list_versions(base) == [version]


@pytest.mark.parametrize("missing", ["model_dir", "export_base"])
def test_required_flags(tmp_path, model_dir, missing):
  values = {"model_dir": model_dir, "export_base": str(tmp_path), "version": 1}
  values[missing] = ""
  with flagsaver.flagsaver(**values):
    with pytest.raises(app.UsageError, match=f"--{missing} is required"):
      export_model.main(["export_model"])


def test_existing_version_and_stray_arguments(tmp_path, model_dir):
  os.makedirs(tmp_path / "3")
  with flagsaver.flagsaver(model_dir=model_dir, export_base=str(tmp_path), version=3):
    with pytest.raises(app.UsageError, match="--version: .*3 already exists"):
      export_model.main(["export_model"])
    with pytest.raises(app.UsageError, match=r"unexpected arguments: \['extra'\]"):
      export_model.main(["export_model", "extra"])


def test_negative_version_flag():
  with flagsaver.flagsaver():
    with pytest.raises(flags.IllegalFlagValueError, match="-1 is not a non-negative integer"):
      flags.FLAGS["version"].parse("-1")


def test_not_a_model_directory(tmp_path):
  with flagsaver.flagsaver(model_dir=str(tmp_path), export_base=str(tmp_path / "b"), version=1):
    with pytest.raises(FileNotFoundError, match="no training config"):
      export_model.main(["export_model"])


def test_flags_coexist_with_the_other_jobs():
  """The jobs share flag names (defined once, in pipelines.common): one process, one flag."""
  # pylint: disable=g-import-not-at-top,unused-import
  from export import serve  # noqa: F401
  from pipelines import common
  from pipelines import train  # noqa: F401

  with flagsaver.flagsaver(model_dir="/m", export_base="/b"):
    assert common.MODEL_DIR.value == flags.FLAGS.model_dir == "/m"
    assert common.EXPORT_BASE.value == flags.FLAGS.export_base == "/b"


def test_warmup_records_of_another_schema_are_refused_naming_the_model_dir(
  tmp_path, model_dir, small_logs
):
  """Logs simulated with another world parse under this model's schema, so the schema.json
  beside them is what tells them apart; without the check they would be scored silently."""
  other = schema_lib.Schema.load(small_logs["schema"])
  own = schema_lib.Schema.load(os.path.join(model_dir, "schema.json"))
  assert other.feature_names == own.feature_names and other.fingerprint() != own.fingerprint()
  base = str(tmp_path / "serving")
  with flagsaver.flagsaver(
    model_dir=model_dir, export_base=base, version=1, warmup_records=small_logs["test"]
  ):
    with pytest.raises(model_dir_lib.ModelDirError) as error:
      export_model.main(["export_model"])
  assert str(error.value) == (
    f"{model_dir} was trained on schema {own.fingerprint()} but the warm-up records' schema "
    f"{small_logs['schema']} is {other.fingerprint()}; use logs of the model's own schema"
  )
  assert not os.path.exists(base)


def test_strict_flag_makes_a_bad_row_fail_the_request(tmp_path, model_dir, simulated_logs):
  """By default a bad target comes back valid = false; with --strict it fails the call."""
  base = str(tmp_path / "serving")
  for version, strict in ((1, False), (2, True)):
    with flagsaver.flagsaver(model_dir=model_dir, export_base=base, version=version, strict=strict):
      export_model.main(["export_model"])
  schema = schema_lib.Schema.load(os.path.join(model_dir, "schema.json"))
  rows = client.read_records(os.path.join(simulated_logs, "test-*"), schema, 3)
  rows[schema_lib.TARGET_ACTION] = np.array([0, -1, 1])
  scored = client.ExportedModel(os.path.join(base, "1")).score(rows)
  assert scored["valid"].tolist() == [True, False, True]
  assert scored["cvr"][1] == 0.0
  with pytest.raises(tf.errors.InvalidArgumentError, match=r"target_action must be in \[0, 5\)"):
    client.ExportedModel(os.path.join(base, "2")).score(rows)


def test_export_base_on_tfs_in_memory_filesystem(model_dir, capsys):
  with flagsaver.flagsaver(model_dir=model_dir, export_base="ram://export_model_test", version=3):
    export_model.main(["export_model"])
  assert capsys.readouterr().out.strip() == "ram://export_model_test/3"
  assert client.list_versions("ram://export_model_test") == [3]
