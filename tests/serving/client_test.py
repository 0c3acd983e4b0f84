"""Client side: loading an export, running its signatures on columns, reading log records."""

import shutil

import kaml_tf  # noqa: F401
import numpy as np
import pytest
import tensorflow as tf

from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.serving import client
from kaml_tf.training import trained_model


@pytest.fixture(scope="module")
def model(exported):
  return client.ExportedModel(exported.path)


def _keras_probabilities(model_dir, kit, columns):
  return trained_model.load(model_dir).predict_all(kit.features_of(columns)).numpy()


def test_loads_the_export_with_its_schema(model, kit):
  assert model.version == 1
  assert model.schema == kit.schema
  assert model.signature_names == ["predict_all", "regress", "serve_examples", "serving_default"]
  specs = model.input_specs("serving_default")
  assert {k: s.dtype for k, s in specs.items()} == {
    "user_id": tf.int64,
    "city": tf.string,
    "ad_task_id": tf.int64,
    "bid": tf.float32,
    "target_action": tf.int64,
  }
  assert set(model.input_specs("predict_all")) == {"user_id", "city", "ad_task_id", "bid"}
  assert model.input_specs("serve_examples")["examples"].dtype == tf.string
  assert model.input_specs("regress")["inputs"].dtype == tf.string
  assert model.output_names("serving_default") == ["cvr", "logit", "valid"]
  assert model.output_names("predict_all") == ["probabilities", "valid"]
  assert model.output_names("serve_examples") == ["cvr", "logit", "missing_features", "valid"]
  assert model.output_names("regress") == ["outputs"]


def test_score_predict_all_and_examples_agree_with_keras(model, exported, kit, log_files):
  _, columns = log_files  # Whole log records: labels and keys are extra inputs, ignored.
  expected = _keras_probabilities(exported.model_dir, kit, columns)
  target = columns[schema_lib.TARGET_ACTION]
  np.testing.assert_allclose(model.predict_all(columns), expected, atol=1e-6)
  scored = model.score(columns)
  np.testing.assert_allclose(scored["cvr"], expected[np.arange(len(target)), target], atol=1e-6)
  from_examples = model.score_examples(records.encode_examples(columns, kit.schema.record_dtypes()))
  np.testing.assert_array_equal(from_examples["cvr"], scored["cvr"])
  np.testing.assert_array_equal(from_examples["logit"], scored["logit"])
  assert scored["valid"].all() and from_examples["valid"].all()
  np.testing.assert_array_equal(from_examples["missing_features"], np.zeros(len(target)))
  # Plain Python lists work too.
  first = {k: [v[0]] for k, v in columns.items()}
  np.testing.assert_allclose(model.score(first)["cvr"], scored["cvr"][:1], atol=1e-6)


@pytest.mark.parametrize(
  "change, match",
  [
    ({"bid": None}, r"missing input\(s\) \['bid'\]"),
    ({"user_id": [1.5] * 12}, "input 'user_id': expected integers"),
    ({"bid": ["a"] * 12}, "input 'bid': expected numbers"),
    ({"city": [1] * 12}, "input 'city': expected strings"),
    ({"user_id": [[1]] * 12}, r"input 'user_id': expected shape \[None\]"),
    (
      {"city": np.array(["rome", None] * 6, dtype=object)},
      "input 'city': cannot convert to string",
    ),
  ],
)
def test_inputs_that_do_not_fit_are_refused(model, log_files, change, match):
  _, columns = log_files
  inputs = dict(columns)
  for k, v in change.items():
    if v is None:
      del inputs[k]
    else:
      inputs[k] = v
  with pytest.raises(client.InputError, match=match):
    model.score(inputs)


def test_unknown_signature_and_extra_inputs(model, log_files):
  _, columns = log_files
  with pytest.raises(client.InputError, match='signature name: "nope" not found'):
    model.run("nope", columns)
  with pytest.raises(client.InputError, match=r"unknown input\(s\) \['day', 'label_install'"):
    model.run("serving_default", columns, allow_extra=False)


def test_load_latest_picks_the_highest_version(tmp_path, exported):
  for version in ("5", "12", ".13.tmp-x"):
    shutil.copytree(exported.path, tmp_path / version)
  assert client.load_latest(str(tmp_path)).version == 12
  with pytest.raises(FileNotFoundError, match="no exported version"):
    client.load_latest(str(tmp_path / "empty"))
  with pytest.raises(FileNotFoundError, match="no SavedModel here"):
    client.ExportedModel(str(tmp_path))


def _logs_with_other_targets(tmp_path, kit):
  columns = kit.log_columns(7)
  columns[schema_lib.TARGET_ACTION] = np.array([-1, 0, -1, 2, 1, -1, 1])
  columns["user_id"] = np.arange(7)
  records.write_logs(kit.schema, str(tmp_path / "logs"), columns, num_shards=2, batch_rows=3)
  return str(tmp_path / "logs-*")


def test_read_records_in_file_order(tmp_path, kit):
  pattern = _logs_with_other_targets(tmp_path, kit)
  # Batches of 3 rows go round-robin to the 2 shards: shard 0 has rows 0-2 and 6, shard 1
  # has rows 3-5.
  first = client.read_records(pattern, kit.schema, 5)
  np.testing.assert_array_equal(first["user_id"], [0, 1, 2, 6, 3])
  assert set(first) == set(kit.schema.record_dtypes())
  valid = client.read_records(pattern, kit.schema, 3, valid_targets_only=True)
  np.testing.assert_array_equal(valid["user_id"], [1, 6, 3])
  np.testing.assert_array_equal(valid[schema_lib.TARGET_ACTION], [0, 1, 2])
  every = client.read_records(pattern, kit.schema, 100, valid_targets_only=True)
  np.testing.assert_array_equal(every["user_id"], [1, 6, 3, 4])
  with pytest.raises(ValueError, match="limit: must be >= 1"):
    client.read_records(pattern, kit.schema, 0)
  with pytest.raises(FileNotFoundError, match="no log files match"):
    client.read_records(str(tmp_path / "missing-*"), kit.schema, 1)


def test_score_log_records(tmp_path, exported, kit):
  pattern = _logs_with_other_targets(tmp_path, kit)
  scored = client.score_log_records(exported.path, pattern, limit=2)
  np.testing.assert_array_equal(scored["user_id"], [1, 6])
  expected = client.ExportedModel(exported.path).score(
    client.read_records(pattern, kit.schema, 2, valid_targets_only=True)
  )
  np.testing.assert_array_equal(scored["cvr"], expected["cvr"])
  assert scored["cvr"].shape == (2,)
  only_other = kit.log_columns(2)
  only_other[schema_lib.TARGET_ACTION] = np.array([-1, -1])
  records.write_logs(kit.schema, str(tmp_path / "other"), only_other)
  with pytest.raises(ValueError, match=r"no record with a target action in \[0, 3\)"):
    client.score_log_records(exported.path, str(tmp_path / "other-*"))


def test_a_bad_row_comes_back_invalid_not_as_an_error(model, log_files):
  _, columns = log_files
  rows = {k: np.array(v) for k, v in columns.items()}
  rows[schema_lib.TARGET_ACTION][0] = -1
  rows["bid"][1] = np.nan
  scored = model.score(rows)
  assert scored["valid"].tolist() == [False, False] + [True] * 10
  assert scored["cvr"][:2].tolist() == [0.0, 0.0]
  every = model.predict_all(rows)
  assert every[1].tolist() == [0.0, 0.0, 0.0] and (every[0] > 0).all()


def test_list_versions_through_gfile(exported):
  """Versions on TF's in-memory filesystem, as on any tf.io.gfile URL."""
  base = "ram://client_test/versions"
  for name in ("3", "12", ".13.tmp-x", "notes"):
    tf.io.gfile.makedirs(f"{base}/{name}")
  with tf.io.gfile.GFile(f"{base}/7", "w") as f:
    f.write("a file, not a version")
  assert client.list_versions(base) == [3, 12]
  assert client.list_versions("ram://client_test/missing") == []


MV_TAGS = schema_lib.SparseFeature("tags", dtype="string", max_values=3)
MV_APPS = schema_lib.SparseFeature("apps", max_values=2)


def test_padded_lists_pads_each_row_to_max_values():
  where = lambda i: f"row {i}"  # noqa: E731
  np.testing.assert_array_equal(
    client.padded_lists([["a", b"b"], [], ("c",)], MV_TAGS, where),
    np.array([[b"a", b"b", b""], [b"", b"", b""], [b"c", b"", b""]], dtype=object),
  )
  np.testing.assert_array_equal(
    client.padded_lists([[3, np.int64(4)], [], np.array([0])], MV_APPS, where),
    [[3, 4], [-1, -1], [0, -1]],
  )


def test_padded_lists_accept_the_padded_form():
  """Pad values at the end of a list are padding already (what TF Serving's clients send)."""
  where = lambda i: f"row {i}"  # noqa: E731
  np.testing.assert_array_equal(
    client.padded_lists([["a", "", ""], ["", "", ""]], MV_TAGS, where),
    np.array([[b"a", b"", b""], [b"", b"", b""]], dtype=object),
  )
  np.testing.assert_array_equal(
    client.padded_lists([[5, -1], [-1, -1]], MV_APPS, where), [[5, -1], [-1, -1]]
  )


@pytest.mark.parametrize(
  "feature, lists, match",
  [
    (
      MV_APPS,
      [[1], [1, 2, 3]],
      r"row 1: 3 ids, more than max_values=2 of multi-valued feature 'apps'",
    ),
    (
      MV_APPS,
      [[1], 7],
      r"row 1: expected a list of at most 2 ids \(multi-valued feature 'apps'\), got 7",
    ),
    (MV_TAGS, ["ab"], r"row 0: expected a list of at most 3 ids .*got 'ab'"),
    (MV_APPS, [[1, 2.0]], r"row 0\[1\]: expected an id of type int64 \(feature 'apps'\), got 2\.0"),
    (MV_APPS, [[True]], r"row 0\[0\]: expected an id of type int64"),
    (MV_APPS, [[2**63]], r"row 0\[0\]: 9223372036854775808 is out of the int64 range"),
    (MV_TAGS, [["a", 5]], r"row 0\[1\]: expected an id of type string \(feature 'tags'\), got 5"),
    (MV_TAGS, [["", "a"]], r"row 0\[0\]: b'' is the pad value of multi-valued feature 'tags'"),
    (MV_APPS, [[], [-1, 4]], r"row 1\[0\]: -1 is the pad value of multi-valued feature 'apps'"),
    (MV_APPS, [[1, 2, 3, -1]], r"row 0: 3 ids, more than max_values=2"),
  ],
)
def test_padded_lists_refuses_bad_lists_naming_the_row(feature, lists, match):
  with pytest.raises(client.InputError, match=match):
    client.padded_lists(lists, feature, lambda i: f"row {i}")


def test_run_takes_lists_or_the_padded_form(mv_exported, kit):
  model = client.ExportedModel(mv_exported.path)
  assert model.input_specs("serving_default")["tags"].shape.as_list() == [None, 3]
  columns = kit.mv_log_columns(4)
  padded = model.score(columns)
  lists = dict(columns)
  lists["tags"] = [[t for t in row if t] for row in columns["tags"]]
  lists["apps"] = [[a for a in row if a >= 0] for row in columns["apps"]]
  for k in ("cvr", "logit", "valid"):
    np.testing.assert_array_equal(model.score(lists)[k], padded[k])
  lists["apps"][1] = [1, 2, 3]
  with pytest.raises(client.InputError, match="input 'apps', row 1: 3 ids, more than max_values"):
    model.score(lists)
  examples = client.examples_of(columns, kit.mv_schema)
  from_examples = model.score_examples(examples)
  np.testing.assert_allclose(from_examples["logit"], padded["logit"], atol=1e-6)
  assert from_examples["valid"].all() and not from_examples["missing_features"].any()
