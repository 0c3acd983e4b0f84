"""Export: parity with the Keras model (and, calibrated, with the evaluator) in a fresh
process, layout, atomicity, strictness."""

import gc
import importlib.util
import os
import subprocess
import sys
import time
import types

import kaml_tf  # noqa: F401
import numpy as np
import pytest
import tensorflow as tf

from kaml_tf import atomic
from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.calibration import platt
from kaml_tf.evaluation import evaluator
from kaml_tf.models import builder
from kaml_tf.models import config as model_config_lib
from kaml_tf.serving import client
from kaml_tf.serving import exporter
from kaml_tf.serving import module as module_lib
from kaml_tf.training import config as config_lib
from kaml_tf.training import trained_model

VARIANTS = [(b, h) for b in model_config_lib.BACKBONES for h in (False, True)]

# Runs in a fresh interpreter that never imports kaml_tf: the SavedModel must stand alone.
# It reads export paths from stdin as they are written (its TensorFlow import and the loads
# overlap the exports) and saves every signature's outputs at end of input.
_LOAD_AND_RUN = r"""
import sys
import numpy as np
import tensorflow as tf

inputs = dict(np.load(sys.argv[1], allow_pickle=True))
examples = inputs.pop("__examples__")
features = {k: v for k, v in inputs.items() if k != "target_action"}
outputs = {}
for i, line in enumerate(sys.stdin):
  signatures = tf.saved_model.load(line.strip()).signatures
  print(sorted(signatures))
  default = signatures["serving_default"](**{k: tf.constant(v) for k, v in inputs.items()})
  every = signatures["predict_all"](**{k: tf.constant(v) for k, v in features.items()})
  from_examples = signatures["serve_examples"](examples=tf.constant(examples))
  regress = signatures["regress"](inputs=tf.constant(examples))
  outputs[f"{i}/cvr"] = default["cvr"].numpy()
  outputs[f"{i}/regress"] = regress["outputs"].numpy()
  outputs[f"{i}/valid"] = default["valid"].numpy() & every["valid"].numpy()
  outputs[f"{i}/logit"] = default["logit"].numpy()
  outputs[f"{i}/probabilities"] = every["probabilities"].numpy()
  outputs[f"{i}/examples_cvr"] = from_examples["cvr"].numpy()
  outputs[f"{i}/examples_logit"] = from_examples["logit"].numpy()
np.savez(sys.argv[2], **outputs)
"""


def _keras_predictions(kit, network, columns):
  """The Keras network's outputs: target via one_hot(target), all via an all-ones indicator."""
  features = kit.features_of(columns)
  target = np.asarray(columns[schema_lib.TARGET_ACTION])
  num_actions = kit.schema.num_actions
  if builder.HKE_INDICATOR in network.input_names:
    selected = dict(features)
    selected[builder.HKE_INDICATOR] = tf.one_hot(target, num_actions)
    logits_target = network(selected, training=False).numpy()
    every = dict(features)
    every[builder.HKE_INDICATOR] = tf.ones([len(target), num_actions])
    logits_all = network(every, training=False).numpy()
  else:
    logits_target = logits_all = network(features, training=False).numpy()
  logit = logits_target[np.arange(len(target)), target]
  return logit, tf.sigmoid(logit).numpy(), tf.sigmoid(logits_all).numpy()


def _loader_inputs(tmp_path, schema, columns):
  """Writes the records for `_LOAD_AND_RUN` to tmp_path/inputs.npz; returns (inputs, env).

  The loader runs in a fresh process without TF_USE_LEGACY_KERAS, as TF Serving would.
  """
  inputs = {k: np.asarray(columns[k]) for k in schema.feature_names}
  inputs[schema_lib.TARGET_ACTION] = np.asarray(columns[schema_lib.TARGET_ACTION])
  inputs["__examples__"] = np.asarray(
    records.encode_examples(columns, schema.record_dtypes()), dtype=object
  )
  np.savez(tmp_path / "inputs.npz", **inputs)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  env.pop("TF_USE_LEGACY_KERAS", None)
  return inputs, env


def test_every_signature_matches_keras_in_a_fresh_process(tmp_path, log_files, kit):
  _, columns = log_files
  schema = kit.schema
  _, env = _loader_inputs(tmp_path, schema, columns)
  loader = subprocess.Popen(
    [
      sys.executable,
      "-c",
      _LOAD_AND_RUN,
      str(tmp_path / "inputs.npz"),
      str(tmp_path / "outputs.npz"),
    ],
    stdin=subprocess.PIPE,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    env=env,
    text=True,
  )
  cli = None
  base = str(tmp_path / "serving")
  expected = []
  try:
    for i, (backbone, hke) in enumerate(VARIANTS):
      model_dir = str(tmp_path / f"{backbone}_{hke}")
      network = kit.make_model_dir(model_dir, backbone, hke, seed=i)
      expected.append(_keras_predictions(kit, network, columns))
      path = exporter.export_model(model_dir, base, version=i + 1)
      loader.stdin.write(path + "\n")
      loader.stdin.flush()
      if cli is None:
        cli = subprocess.Popen(
          [
            os.path.join(os.path.dirname(sys.executable), "saved_model_cli"),
            "show",
            "--all",
            "--dir",
            path,
          ],
          stdout=subprocess.PIPE,
          stderr=subprocess.PIPE,
          env=env,
          text=True,
        )
    load_out, load_err = loader.communicate(timeout=240)
    cli_out, cli_err = cli.communicate(timeout=240)
  finally:
    for process in (loader, cli):
      if process is not None and process.poll() is None:
        process.kill()
  assert loader.returncode == 0, load_err[-3000:]
  assert cli.returncode == 0, cli_err[-3000:]

  for name in module_lib.SIGNATURE_NAMES:
    assert f"signature_def['{name}']" in cli_out
  for k in schema.feature_names + (
    module_lib.TARGET_INPUT,
    module_lib.EXAMPLES_INPUT,
    module_lib.CVR_OUTPUT,
    module_lib.LOGIT_OUTPUT,
    module_lib.PROBABILITIES_OUTPUT,
    module_lib.VALID_OUTPUT,
    module_lib.MISSING_OUTPUT,
    module_lib.REGRESS_INPUT,
    module_lib.REGRESS_OUTPUT,
  ):
    assert f"['{k}'] tensor_info" in cli_out
  signatures = "['predict_all', 'regress', 'serve_examples', 'serving_default']"
  assert load_out.splitlines() == [signatures] * len(VARIANTS)

  outputs = np.load(tmp_path / "outputs.npz")
  for i, (logit, cvr, probabilities) in enumerate(expected):
    variant = VARIANTS[i]
    np.testing.assert_allclose(outputs[f"{i}/logit"], logit, atol=1e-5, err_msg=str(variant))
    np.testing.assert_allclose(outputs[f"{i}/cvr"], cvr, atol=1e-5, err_msg=str(variant))
    np.testing.assert_allclose(
      outputs[f"{i}/probabilities"], probabilities, atol=1e-5, err_msg=str(variant)
    )
    np.testing.assert_allclose(outputs[f"{i}/examples_cvr"], cvr, atol=1e-5, err_msg=str(variant))
    np.testing.assert_allclose(
      outputs[f"{i}/examples_logit"], logit, atol=1e-5, err_msg=str(variant)
    )
    np.testing.assert_array_equal(outputs[f"{i}/regress"], outputs[f"{i}/examples_cvr"])
    assert outputs[f"{i}/valid"].all(), variant
    # Every action's output varies over the rows: the comparison is not vacuous.
    assert np.ptp(probabilities, axis=0).min() > 1e-4, variant


def _calibrate(model_dir, kit):
  """Writes a calibration.json for the model directory's checkpoint, distinct per action."""
  checkpoint = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
  calibration = platt.Calibration(
    actions=kit.schema.actions,
    a=(0.5, 2.0, 1.5),
    b=(-1.0, 0.25, 0.5),
    checkpoint=platt.CheckpointRef.of(model_dir, checkpoint),
    fitted_on={"rows": [4, 4, 4], "positives": [2, 2, 2], "identity_because": [None, None, None]},
  )
  calibration.save(model_dir)
  return calibration


def test_calibrated_export_scores_what_the_evaluator_scores_in_a_fresh_process(
  tmp_path, log_files, kit
):
  pattern, columns = log_files
  schema = kit.schema
  model_dir = str(tmp_path / "model")
  kit.make_model_dir(model_dir, "mmoe", hke=True, seed=3)
  calibration = _calibrate(model_dir, kit)
  path = exporter.export_model(model_dir, str(tmp_path / "serving"), version=1)
  assert sorted(os.listdir(os.path.join(path, "assets"))) == [
    "actions.txt",
    "calibration.json",
    "schema.json",
  ]
  assert client.ExportedModel(path).calibration == calibration.to_dict()

  inputs, env = _loader_inputs(tmp_path, schema, columns)
  loader = subprocess.run(
    [
      sys.executable,
      "-c",
      _LOAD_AND_RUN,
      str(tmp_path / "inputs.npz"),
      str(tmp_path / "outputs.npz"),
    ],
    input=path + "\n",
    capture_output=True,
    env=env,
    text=True,
    timeout=240,
    check=False,
  )
  assert loader.returncode == 0, loader.stderr[-3000:]
  outputs = np.load(tmp_path / "outputs.npz")

  model = trained_model.load(model_dir)
  assert model.calibration == calibration
  predictions = evaluator.predict(model, pattern)
  rows = np.arange(len(predictions.target_action))
  target = predictions.target_action
  np.testing.assert_array_equal(target, inputs[schema_lib.TARGET_ACTION])
  expected_cvr = predictions.probabilities[rows, target]
  np.testing.assert_allclose(outputs["0/probabilities"], predictions.probabilities, atol=1e-6)
  np.testing.assert_allclose(outputs["0/cvr"], expected_cvr, atol=1e-6)
  np.testing.assert_allclose(outputs["0/examples_cvr"], expected_cvr, atol=1e-6)
  # `logit` is the calibrated logit a_t * z_t + b_t of the target, so cvr = sigmoid(logit).
  a, b = np.array(calibration.a)[target], np.array(calibration.b)[target]
  expected_logit = a * predictions.logits[rows, target] + b
  np.testing.assert_allclose(outputs["0/logit"], expected_logit, atol=1e-5)
  np.testing.assert_allclose(outputs["0/examples_logit"], expected_logit, atol=1e-5)
  # The numpy definition agrees, and the calibration changed the scores (not vacuous).
  np.testing.assert_allclose(
    outputs["0/probabilities"], calibration.apply(predictions.logits), atol=1e-6
  )
  assert np.abs(outputs["0/probabilities"] - predictions.raw_probabilities).min() > 1e-3


def test_an_uncalibrated_export_says_so(exported):
  assert client.ExportedModel(exported.path).calibration is None
  assert sorted(os.listdir(os.path.join(exported.path, "assets"))) == ["actions.txt", "schema.json"]


def test_layout_and_assets(exported, kit):
  path = exported.path
  assert os.path.basename(path) == "1"
  assert tf.saved_model.contains_saved_model(path)
  assert schema_lib.Schema.load(os.path.join(path, "assets", "schema.json")) == kit.schema
  with open(os.path.join(path, "assets", "actions.txt"), encoding="utf-8") as f:
    assert f.read() == "install\nregister\npay\n"
  # Nothing but the version: no temporary folder left behind.
  assert os.listdir(exported.export_base) == ["1"]


def test_default_version_is_the_time_and_always_newer(tmp_path, hke_model_dir):
  base = str(tmp_path / "serving")
  before = int(time.time())
  first = exporter.export_model(hke_model_dir, base)
  assert before <= int(os.path.basename(first)) <= int(time.time())
  # A version from the future: the next default export still lands above it.
  future = int(time.time()) + 1000
  os.makedirs(os.path.join(base, str(future)))
  second = exporter.export_model(hke_model_dir, base)
  assert os.path.basename(second) == str(future + 1)
  assert client.list_versions(base) == [int(os.path.basename(first)), future, future + 1]


def test_existing_version_is_never_overwritten(tmp_path, hke_model_dir):
  base = str(tmp_path / "serving")
  os.makedirs(os.path.join(base, "7"))
  with open(os.path.join(base, "7", "marker"), "w", encoding="utf-8") as f:
    f.write("old")
  with pytest.raises(FileExistsError, match="7 already exists"):
    exporter.export_model(hke_model_dir, base, version=7)
  assert os.listdir(os.path.join(base, "7")) == ["marker"]


@pytest.mark.parametrize("version", [-1, 1.5, True, "3"])
def test_bad_version(tmp_path, hke_model_dir, version):
  with pytest.raises(ValueError, match="version: must be an integer >= 0"):
    exporter.export_model(hke_model_dir, str(tmp_path), version=version)


def test_killed_export_leaves_no_partial_version(tmp_path, hke_model_dir, monkeypatch):
  base = str(tmp_path / "serving")
  real_save = tf.saved_model.save

  def save_then_die(obj, export_dir, signatures=None, options=None):
    real_save(obj, export_dir, signatures=signatures, options=options)
    raise KeyboardInterrupt("killed after writing the SavedModel")

  monkeypatch.setattr(tf.saved_model, "save", save_then_die)
  with pytest.raises(KeyboardInterrupt):
    exporter.export_model(hke_model_dir, base, version=3)
  assert os.listdir(base) == []
  assert client.list_versions(base) == []


def test_list_versions_ignores_temporary_and_other_entries(tmp_path):
  for name in ("12", "3", ".4.tmp-abc", "notes", "5x"):
    os.makedirs(tmp_path / name)
  (tmp_path / "6").write_text("a file, not a version")
  assert client.list_versions(str(tmp_path)) == [3, 12]
  assert client.latest_version(str(tmp_path)) == 12
  assert client.list_versions(str(tmp_path / "missing")) == []
  assert client.latest_version(str(tmp_path / "missing")) is None


def _retarget(model_dir, **changes):
  """Rewrites config.json with other model settings (the checkpoint stays as it is)."""
  run_config = config_lib.RunConfig.load(model_dir)
  config = model_config_lib.ModelConfig.from_dict(dict(run_config.model.to_dict(), **changes))
  config_lib.RunConfig(
    data=run_config.data, model=config, loss=run_config.loss, optim=run_config.optim
  ).save(model_dir)


@pytest.mark.parametrize(
  "changes, match",
  [
    # One more shared layer: two variables of the network have no value in the checkpoint.
    ({"bottom_units": [6, 6]}, "Found 2 Python objects that were not bound to checkpointed"),
    # Same structure, other widths: shapes differ.
    ({"tower_units": [5]}, r"incompatible tensor with shape \(3, 4, 1\)"),
  ],
)
def test_strict_restore_refuses_a_mismatching_checkpoint(tmp_path, kit, changes, match):
  model_dir = str(tmp_path / "model")
  kit.make_model_dir(model_dir, "shared_bottom", hke=False)
  _retarget(model_dir, **changes)
  with pytest.raises(exporter.ExportError, match=match) as info:
    exporter.export_model(model_dir, str(tmp_path / "serving"))
  assert str(info.value).startswith(f"{model_dir}: the checkpoint does not match")
  assert not os.path.exists(tmp_path / "serving")
  # The failed restore's checkpoint reports its unused values when collected: let that
  # happen now, while logs are captured, not at interpreter exit.
  del info
  gc.collect()


def test_missing_checkpoint(tmp_path, kit):
  model_dir = str(tmp_path / "model")
  kit.make_model_dir(model_dir, "shared_bottom", hke=False)
  for name in os.listdir(os.path.join(model_dir, "checkpoints")):
    os.remove(os.path.join(model_dir, "checkpoints", name))
  with pytest.raises(FileNotFoundError, match="no checkpoint under checkpoints/"):
    exporter.export_model(model_dir, str(tmp_path / "serving"))


def test_warmup_requests_cover_every_signature_at_each_batch_size(
  tmp_path, hke_model_dir, log_files, kit
):
  """With tensorflow-serving-api: per signature, a request of 1 and of 64 rows (the records
  in order, repeated), each answerable by the export; without: a clear error.

  The package is pinned, but both environments are checked exactly.
  """
  pattern, columns = log_files
  base = str(tmp_path / "serving")
  if importlib.util.find_spec("tensorflow_serving") is None:
    with pytest.raises(ImportError, match=r"pip install tensorflow-serving-api==2\.16\.1"):
      exporter.export_model(hke_model_dir, base, version=1, warmup_files=pattern)
    assert client.list_versions(base) == []
    return
  from tensorflow_serving.apis import prediction_log_pb2  # pylint: disable=g-import-not-at-top

  path = exporter.export_model(
    hke_model_dir, base, version=1, warmup_files=pattern, num_warmup_records=4, model_name="cvr"
  )
  warmup = os.path.join(path, "assets.extra", "tf_serving_warmup_requests")
  logs = [
    prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in tf.data.TFRecordDataset(warmup)
  ]
  expected = [(s, b) for s in module_lib.SIGNATURE_NAMES for b in (1, 64)]
  requests = [log.predict_log.request for log in logs]
  assert [(r.model_spec.signature_name, _rows(r)) for r in requests] == expected
  assert {r.model_spec.name for r in requests} == {"cvr"}
  model = client.ExportedModel(path)
  features = sorted(kit.schema.feature_names)
  for request in requests:
    signature = request.model_spec.signature_name
    inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
    assert sorted(inputs) == sorted(model.input_specs(signature))
    rows = np.arange(_rows(request)) % 4  # The first 4 valid records, repeated.
    if signature == module_lib.SERVING_DEFAULT:
      assert sorted(inputs) == sorted(features + ["target_action"])
      for k, value in inputs.items():
        np.testing.assert_array_equal(value, np.asarray(columns[k])[rows], err_msg=k)
    if signature in (module_lib.SERVE_EXAMPLES, module_lib.REGRESS):
      (examples,) = inputs.values()
      dtypes = {k: kit.schema.record_dtypes()[k] for k in features + ["target_action"]}
      expected_examples = records.encode_examples(
        {k: np.asarray(columns[k])[rows] for k in dtypes}, dtypes
      )
      assert [tf.train.Example.FromString(e) for e in examples] == [
        tf.train.Example.FromString(e) for e in expected_examples
      ]
    outputs = model.run(signature, inputs, allow_extra=False)
    if module_lib.VALID_OUTPUT in outputs:
      assert outputs[module_lib.VALID_OUTPUT].all(), signature


def _rows(request):
  return int(tf.make_ndarray(next(iter(request.inputs.values()))).shape[0])


def test_warmup_records_rejects_other_targets_and_non_finite_values(tmp_path, kit):
  if importlib.util.find_spec("tensorflow_serving") is None:
    with pytest.raises(ImportError, match="tensorflow-serving-api"):
      exporter.write_warmup_requests(str(tmp_path / "w"), kit.schema, {})
    return
  columns = {k: np.zeros(2, np.int64) for k in kit.schema.feature_names}
  columns["city"] = np.array([b"rome", b"oslo"], dtype=object)
  columns["bid"] = np.zeros(2, np.float32)
  columns["target_action"] = np.array([0, -1])
  with pytest.raises(ValueError, match=r"target_action must be in \[0, 3\)"):
    exporter.write_warmup_requests(str(tmp_path / "w"), kit.schema, columns)
  columns["target_action"] = np.array([0, 1])
  columns["bid"] = np.array([0.0, np.nan], np.float32)
  with pytest.raises(ValueError, match="dense input bid must be finite"):
    exporter.write_warmup_requests(str(tmp_path / "w"), kit.schema, columns)
  columns["bid"] = np.zeros(2, np.float32)
  with pytest.raises(ValueError, match="batch_sizes: expected positive integers"):
    exporter.write_warmup_requests(str(tmp_path / "w"), kit.schema, columns, batch_sizes=(0,))
  # Batch sizes are free; a request per signature and size.
  path = str(tmp_path / "w")
  assert exporter.write_warmup_requests(path, kit.schema, columns, batch_sizes=(3,)) == 4


def test_strict_export_rejects_a_bad_row(tmp_path, hke_model_dir, log_files):
  _, columns = log_files
  path = exporter.export_model(hke_model_dir, str(tmp_path / "serving"), version=1, strict=True)
  model = client.ExportedModel(path)
  rows = {k: np.array(v) for k, v in columns.items()}
  assert model.score(rows)["valid"].all()
  rows[schema_lib.TARGET_ACTION][0] = -1
  with pytest.raises(tf.errors.InvalidArgumentError, match=r"target_action must be in \[0, 3\)"):
    model.score(rows)


def test_export_to_tfs_in_memory_filesystem(hke_model_dir, exported, log_files):
  """ram:// (no folder rename) takes the copy-then-commit path; the version scores like the
  local one and no temporary folder stays behind."""
  _, columns = log_files
  base = "ram://exporter_test/serving"
  path = exporter.export_model(hke_model_dir, base, version=4)
  assert path == f"{base}/4"
  assert tf.io.gfile.listdir(base) == ["4"]
  assert client.list_versions(base) == [4]
  assert sorted(tf.io.gfile.listdir(path)) == sorted(os.listdir(exported.path))
  in_memory = client.ExportedModel(path)
  assert in_memory.schema == client.ExportedModel(exported.path).schema
  local = client.ExportedModel(exported.path).score(columns)
  for k, v in in_memory.score(columns).items():
    np.testing.assert_array_equal(v, local[k])
  assert exporter.default_version(base) > 4
  with pytest.raises(FileExistsError, match="4 already exists"):
    exporter.export_model(hke_model_dir, base, version=4)


def test_tensorflow_io_extra(tmp_path, hke_model_dir, exported, log_files, monkeypatch):
  """kaml-tf[io]: tensorflow-io imports, registers s3:// and hdfs:// with tf.io.gfile, and
  a local export goes through the same tf.io.gfile code path as those."""
  if importlib.util.find_spec("tensorflow_io") is None:
    with pytest.raises(ImportError, match=r"pip install kaml-tf\[io\]"):
      exporter.export_model(hke_model_dir, "s3://bucket/serving", version=1)
    return
  atomic.ensure_filesystem("s3://bucket/serving")
  import tensorflow_io  # pylint: disable=g-import-not-at-top

  assert tensorflow_io.__version__ == "0.37.1"
  # Both schemes answer for themselves (no bucket; no cluster), without any network.
  with pytest.raises(tf.errors.InvalidArgumentError, match="doesn't contain a bucket name"):
    tf.io.gfile.exists("s3://")
  tf.io.gfile.exists("hdfs://")  # An unknown scheme raises UnimplementedError.
  with pytest.raises(tf.errors.UnimplementedError, match="scheme 'nope' not implemented"):
    tf.io.gfile.exists("nope://x")
  used = set()
  for name in ("makedirs", "rename", "exists", "GFile"):
    real = getattr(tf.io.gfile, name)
    monkeypatch.setattr(
      tf.io.gfile, name, lambda *a, _r=real, _n=name, **k: used.add(_n) or _r(*a, **k)
    )
  path = exporter.export_model(hke_model_dir, str(tmp_path / "serving"), version=2)
  assert used == {"makedirs", "rename", "exists", "GFile"}
  local = client.ExportedModel(exported.path).score(log_files[1])
  np.testing.assert_array_equal(client.ExportedModel(path).score(log_files[1])["cvr"], local["cvr"])


def test_malformed_config_is_not_reported_as_a_checkpoint_mismatch(tmp_path, kit):
  model_dir = str(tmp_path / "model")
  kit.make_model_dir(model_dir, "shared_bottom", hke=False)
  config_path = os.path.join(model_dir, "config.json")
  with open(config_path, encoding="utf-8") as f:
    text = f.read()
  with open(config_path, "w", encoding="utf-8") as f:
    f.write(text.replace('"backbone": "shared_bottom"', '"backbone": "resnet"'))
  with pytest.raises(ValueError, match="backbone must be one of") as info:
    exporter.export_model(model_dir, str(tmp_path / "serving"))
  assert not isinstance(info.value, exporter.ExportError)


# Multi-valued features: the real exporter (with warm-up), a fresh process, every signature.
_MV_LOAD_AND_RUN = r"""
import sys
import numpy as np
import tensorflow as tf

inputs = dict(np.load(sys.argv[1], allow_pickle=True))
examples = inputs.pop("__examples__")
features = {k: v for k, v in inputs.items() if k != "target_action"}
signatures = tf.saved_model.load(sys.argv[3]).signatures
default = signatures["serving_default"](**{k: tf.constant(v) for k, v in inputs.items()})
every = signatures["predict_all"](**{k: tf.constant(v) for k, v in features.items()})
from_examples = signatures["serve_examples"](examples=tf.constant(examples))
regress = signatures["regress"](inputs=tf.constant(examples))
np.savez(
  sys.argv[2],
  logit=default["logit"].numpy(),
  valid=default["valid"].numpy(),
  probabilities=every["probabilities"].numpy(),
  examples_logit=from_examples["logit"].numpy(),
  examples_valid=from_examples["valid"].numpy(),
  regress=regress["outputs"].numpy(),
)
"""


def test_multivalued_export_serves_every_signature_in_a_fresh_process(tmp_path, mv_model_dir, kit):
  schema = kit.mv_schema
  columns = kit.mv_log_columns()
  columns[schema_lib.TARGET_ACTION][3] = -1  # Other: invalid in every signature that takes it.
  model = exporter.load_strict(mv_model_dir)
  warmup = kit.mv_log_columns(4, seed=5)
  path = exporter.export_trained(model, str(tmp_path / "serving"), 1, warmup_columns=warmup)
  inputs = {k: np.asarray(columns[k]) for k in schema.feature_names}
  inputs[schema_lib.TARGET_ACTION] = columns[schema_lib.TARGET_ACTION]
  examples = client.examples_of(columns, schema)
  # Two bad lists in Examples (4 tags > 3; the pad id -1 among the apps): invalid rows.
  bad = tf.train.Example.FromString(examples[0])
  bad.features.feature["tags"].bytes_list.value[:] = [b"a", b"b", b"c", b"a"]
  examples.append(bad.SerializeToString())
  bad.features.feature["tags"].bytes_list.value[:] = [b"a"]
  bad.features.feature["apps"].int64_list.value[:] = [4, -1]
  examples.append(bad.SerializeToString())
  inputs["__examples__"] = np.asarray(examples, dtype=object)
  np.savez(tmp_path / "inputs.npz", **inputs)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  env.pop("TF_USE_LEGACY_KERAS", None)
  run = subprocess.run(
    [
      sys.executable,
      "-c",
      _MV_LOAD_AND_RUN,
      str(tmp_path / "inputs.npz"),
      str(tmp_path / "o.npz"),
      path,
    ],
    capture_output=True,
    env=env,
    text=True,
    timeout=240,
  )
  assert run.returncode == 0, run.stderr[-3000:]
  out = np.load(tmp_path / "o.npz")

  valid = columns[schema_lib.TARGET_ACTION] >= 0
  target = np.where(valid, columns[schema_lib.TARGET_ACTION], 0)
  logit, _, probabilities = _keras_predictions(
    types.SimpleNamespace(schema=schema, features_of=lambda c: kit.features_of(c, schema)),
    model.network,
    dict(columns, target_action=target),
  )
  np.testing.assert_array_equal(out["valid"], valid)
  np.testing.assert_allclose(out["logit"][valid], logit[valid], atol=1e-5)
  assert out["logit"][~valid] == module_lib.FILL_LOGIT
  np.testing.assert_allclose(out["probabilities"], probabilities, atol=1e-5)
  np.testing.assert_array_equal(out["examples_valid"], np.concatenate([valid, [False, False]]))
  np.testing.assert_allclose(out["examples_logit"][:12][valid], logit[valid], atol=1e-5)
  np.testing.assert_array_equal(out["regress"][-2:], [module_lib.FILL_CVR] * 2)
  assert np.ptp(logit[valid]) > 1e-4

  # The warm-up file: padded (b, M) lists for the tensor signatures, var-len lists in Examples,
  # every request answerable with every row valid.
  from tensorflow_serving.apis import prediction_log_pb2  # pylint: disable=g-import-not-at-top

  served = client.ExportedModel(path)
  warm = os.path.join(path, "assets.extra", "tf_serving_warmup_requests")
  requests = [
    prediction_log_pb2.PredictionLog.FromString(r.numpy()).predict_log.request
    for r in tf.data.TFRecordDataset(warm)
  ]
  assert len(requests) == 2 * len(module_lib.SIGNATURE_NAMES)
  for request in requests:
    signature = request.model_spec.signature_name
    inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
    if signature == module_lib.SERVING_DEFAULT:
      rows = np.arange(len(inputs["tags"])) % 4
      np.testing.assert_array_equal(inputs["tags"], warmup["tags"][rows].astype(bytes))
      np.testing.assert_array_equal(inputs["apps"], warmup["apps"][rows])
    if signature == module_lib.SERVE_EXAMPLES:
      parsed = [tf.train.Example.FromString(e).features.feature for e in inputs["examples"]]
      for i, feature in enumerate(parsed[:4]):
        tags = [t.encode() for t in warmup["tags"][i] if t]
        assert list(feature["tags"].bytes_list.value) == tags
        assert list(feature["apps"].int64_list.value) == [a for a in warmup["apps"][i] if a >= 0]
    outputs = served.run(signature, inputs, allow_extra=False)
    if module_lib.VALID_OUTPUT in outputs:
      assert outputs[module_lib.VALID_OUTPUT].all(), signature


def test_warmup_refuses_a_multivalued_column_of_the_wrong_width(tmp_path, kit):
  columns = kit.mv_log_columns(2)
  columns["apps"] = np.zeros((2, 3), np.int64)
  with pytest.raises(ValueError, match=r"multi-valued feature apps must be \(2, 2\) ids"):
    exporter.write_warmup_requests(str(tmp_path / "w"), kit.mv_schema, columns)
