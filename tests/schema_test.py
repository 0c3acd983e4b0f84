"""Tests for kaml_tf.schema: round trip, parse spec, Keras inputs, malformed files."""

import json

import pytest
import tensorflow as tf

from kaml_tf import schema as schema_lib

S = schema_lib


def _schema(**overrides):
  kwargs = dict(
    actions=("activation", "payment"),
    sparse_features=(
      S.SparseFeature("user_id", num_buckets=100, embedding_dim=4),
      S.SparseFeature("os", dtype="string", vocabulary=("ios", "android")),
    ),
    dense_features=(S.DenseFeature("price", mean=2.0, std=4.0),),
    has_true_labels=True,
  )
  kwargs.update(overrides)
  return S.Schema(**kwargs)


def test_json_round_trip(tmp_path):
  schema = _schema()
  path = str(tmp_path / "schema.json")
  schema.save(path)
  loaded = S.Schema.load(path)
  assert loaded == schema
  assert loaded.fingerprint() == schema.fingerprint()


def test_fingerprint_changes_with_content():
  assert _schema().fingerprint() != _schema(actions=("activation", "retention")).fingerprint()


def test_parse_spec_has_keys_features_and_labels():
  spec = _schema().parse_spec()
  assert list(spec) == [
    "ad_task_id",
    "target_action",
    "day",
    "user_id",
    "os",
    "price",
    "label_activation",
    "label_payment",
    "true_label_activation",
    "true_label_payment",
  ]
  assert spec["os"].dtype == tf.string
  assert spec["price"].dtype == tf.float32
  assert spec["label_payment"].dtype == tf.int64
  assert "true_label_payment" not in _schema().parse_spec(include_true_labels=False)


def test_keras_inputs_and_signature_agree():
  schema = _schema()
  inputs = schema.keras_inputs()
  signature = schema.feature_signature()
  assert list(inputs) == list(signature) == ["user_id", "os", "price"]
  for name, spec in signature.items():
    assert inputs[name].dtype == spec.dtype
    assert inputs[name].shape.as_list() == [None]


def test_feature_may_reuse_ad_task_key():
  schema = _schema(sparse_features=(S.SparseFeature("ad_task_id"),))
  assert list(schema.parse_spec()).count("ad_task_id") == 1


def test_input_dim_of_vocabulary_adds_oov_row():
  assert S.SparseFeature("os", vocabulary=("a", "b")).input_dim == 3
  assert S.SparseFeature("u", num_buckets=7).input_dim == 7


@pytest.mark.parametrize(
  "overrides, message",
  [
    (dict(actions=()), "actions: at least one"),
    (dict(actions=("a", "a")), "actions: duplicate name 'a'"),
    (dict(actions=("a b",)), "actions[0]"),
    (dict(sparse_features=(S.SparseFeature("x"), S.SparseFeature("x"))), "duplicate name 'x'"),
    (dict(sparse_features=(S.SparseFeature("x", dtype="float"),)), "sparse_features(x).dtype"),
    (dict(sparse_features=(S.SparseFeature("x", embedding_dim=0),)), "embedding_dim"),
    (dict(dense_features=(S.DenseFeature("p", std=0.0),)), "dense_features(p).std"),
    (dict(dense_features=(S.DenseFeature("label_payment"),)), "clashes with a label"),
    (dict(sparse_features=(S.SparseFeature("target_action"),)), "key field"),
    (dict(sparse_features=(S.SparseFeature("hke_indicator"),)), "key field"),
    (dict(sparse_features=(S.SparseFeature("t", max_values=0),)), "sparse_features(t).max_values"),
    (dict(sparse_features=(S.SparseFeature("t", combiner="max"),)), "sparse_features(t).combiner"),
    (dict(sparse_features=(S.SparseFeature("ad_task_id", max_values=3),)), "cannot be multi"),
    (
      dict(sparse_features=(S.SparseFeature("t", vocabulary=(4, -1), max_values=3),)),
      "-1 pads multi-valued lists",
    ),
    (
      dict(sparse_features=(S.SparseFeature("t", "string", vocabulary=("",), max_values=2),)),
      "'' pads multi-valued lists",
    ),
    (dict(dense_features=(S.DenseFeature("p", transform="log"),)), "dense_features(p).transform"),
  ],
)
def test_invalid_schema_names_field(overrides, message):
  with pytest.raises(S.SchemaError) as e:
    _schema(**overrides)
  assert message in str(e.value)


@pytest.mark.parametrize(
  "mutate, message",
  [
    (lambda d: d.pop("actions"), "missing field 'actions'"),
    (lambda d: d.update(actions="a"), "schema.actions: expected list"),
    (
      lambda d: d["sparse_features"][0].update(num_buckets="9"),
      "sparse_features[0](user_id).num_buckets",
    ),
    (lambda d: d["sparse_features"][1].pop("name"), "sparse_features[1]: missing field 'name'"),
    (lambda d: d["dense_features"][0].update(mean=None), "dense_features[0](price).mean"),
    (lambda d: d.update(colour=1), "unknown field(s) ['colour']"),
    (lambda d: d.update(version=7), "unsupported schema version 7"),
    (lambda d: d["actions"].append(d["actions"][0]), "actions: duplicate name"),
    (
      lambda d: d["dense_features"].append(dict(d["dense_features"][0])),
      "features: duplicate name 'price'",
    ),
  ],
)
def test_malformed_file_names_field(tmp_path, mutate, message):
  data = _schema().to_dict()
  mutate(data)
  path = tmp_path / "schema.json"
  path.write_text(json.dumps(data))
  with pytest.raises(S.SchemaError) as e:
    S.Schema.load(str(path))
  assert str(path) in str(e.value)
  assert message in str(e.value)


def test_not_json_and_missing_file(tmp_path):
  path = tmp_path / "schema.json"
  path.write_text("{not json")
  with pytest.raises(S.SchemaError, match="not valid JSON"):
    S.Schema.load(str(path))
  with pytest.raises(S.SchemaError, match="not found"):
    S.Schema.load(str(tmp_path / "absent.json"))


def test_action_index():
  schema = _schema()
  assert schema.action_index("payment") == 1
  with pytest.raises(S.SchemaError, match="unknown action 'retention'"):
    schema.action_index("retention")


def _tags(**kwargs):
  return S.SparseFeature("tags", dtype="string", num_buckets=50, max_values=3, **kwargs)


def test_multivalued_feature_round_trips_and_pads():
  schema = _schema(sparse_features=(_tags(combiner="sqrtn"),))
  assert S.Schema.from_dict(json.loads(schema.to_json())) == schema
  assert schema.multivalued_features == (_tags(combiner="sqrtn"),)
  assert schema.feature_signature()["tags"].shape.as_list() == [None, 3]
  assert schema.keras_inputs()["tags"].shape.as_list() == [None, 3]
  assert isinstance(schema.parse_spec()["tags"], tf.io.RaggedFeature)
  assert isinstance(schema.feature_parse_spec()["price"], tf.io.FixedLenFeature)
  assert schema.missing_values()["tags"] == ["", "", ""]
  ragged = tf.ragged.constant([["a"], [], ["b", "c", "d", "e"]])
  assert _tags().padded(ragged).numpy().tolist() == [
    [b"a", b"", b""],
    [b"", b"", b""],
    [b"b", b"c", b"d"],
  ]
  ints = tf.ragged.constant([[5, 6], []], dtype=tf.int64)
  feature = S.SparseFeature("ids", max_values=2)
  assert feature.padded(ints).numpy().tolist() == [[5, 6], [-1, -1]]


def test_new_fields_at_their_defaults_keep_the_older_form():
  """Schemas written before max_values / combiner / transform keep their JSON and fingerprint."""
  data = _schema().to_dict()
  assert set(data["sparse_features"][0]) == {
    "name",
    "dtype",
    "num_buckets",
    "embedding_dim",
    "vocabulary",
  }
  assert set(data["dense_features"][0]) == {"name", "mean", "std"}
  assert (
    "transform"
    in _schema(dense_features=(S.DenseFeature("p", transform="log1p"),)).to_dict()[
      "dense_features"
    ][0]
  )


def test_log1p_missing_value_maps_to_the_mean():
  feature = S.DenseFeature("p", mean=2.0, std=1.0, transform="log1p")
  assert feature.missing_value == pytest.approx(7.38905609893 - 1.0)
  assert S.DenseFeature("q", mean=-1.0, transform="log1p").missing_value == pytest.approx(
    -(2.718281828459045 - 1.0)
  )
