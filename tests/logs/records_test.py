"""Tests for kaml_tf.logs.records: the vectorised encoder, sharded atomic writer and parser."""

import os

import numpy as np
import pytest
import tensorflow as tf

from kaml_tf.logs import records
from kaml_tf import schema as schema_lib

S = schema_lib


def _schema():
  return S.Schema(
    actions=("a", "b"),
    sparse_features=(S.SparseFeature("user_id"), S.SparseFeature("ad_task_id")),
    dense_features=(S.DenseFeature("price"),),
    has_true_labels=True,
  )


def _columns(n, seed=0):
  rng = np.random.default_rng(seed)
  return {
    "ad_task_id": rng.integers(0, 50, n),
    "target_action": rng.integers(-1, 2, n),
    "day": rng.integers(0, 30, n),
    "user_id": rng.integers(0, 2**62, n),
    "price": rng.normal(size=n).astype(np.float32),
    "label_a": rng.integers(0, 2, n),
    "label_b": rng.integers(0, 2, n),
    "true_label_a": rng.integers(0, 2, n),
    "true_label_b": rng.integers(0, 2, n),
  }


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**31, 2**63 - 1, -1, -(2**63)])
def test_encoder_matches_protobuf_for_int64(value):
  dtypes = {"x": tf.int64, "f": tf.float32}
  encoded = records.encode_examples(
    {"x": np.array([value]), "f": np.array([0.5], np.float32)}, dtypes
  )[0]
  parsed = tf.train.Example.FromString(encoded)
  assert list(parsed.features.feature["x"].int64_list.value) == [value]
  assert list(parsed.features.feature["f"].float_list.value) == [0.5]
  expected = tf.train.Example()
  expected.features.feature["x"].int64_list.value.append(value)
  expected.features.feature["f"].float_list.value.append(0.5)
  assert parsed == expected


def test_encoder_handles_long_records():
  # Records over 127 bytes need a two-byte length varint in the Example header.
  n = 3
  cols = {f"feature_number_{i}": np.arange(n) * 1000 + i for i in range(20)}
  encoded = records.encode_examples(cols, {k: tf.int64 for k in cols})
  assert all(len(e) > 300 for e in encoded)
  parsed = tf.io.parse_example(encoded, {k: tf.io.FixedLenFeature([], tf.int64) for k in cols})
  for k, v in cols.items():
    np.testing.assert_array_equal(parsed[k].numpy(), v)


def test_string_fields_use_proto_path():
  encoded = records.encode_examples(
    {"s": np.array([b"x", b"yy"]), "i": np.array([1, 2])}, {"s": tf.string, "i": tf.int64}
  )
  parsed = tf.io.parse_example(
    encoded, {"s": tf.io.FixedLenFeature([], tf.string), "i": tf.io.FixedLenFeature([], tf.int64)}
  )
  assert parsed["s"].numpy().tolist() == [b"x", b"yy"]


def test_encoder_rejects_missing_or_ragged_columns():
  with pytest.raises(KeyError, match="missing for fields \\['y'\\]"):
    records.encode_examples({"x": np.array([1])}, {"x": tf.int64, "y": tf.int64})
  with pytest.raises(ValueError, match="column 'y' has 2 rows, expected 1"):
    records.encode_examples(
      {"x": np.array([1]), "y": np.array([1, 2])}, {"x": tf.int64, "y": tf.int64}
    )


@pytest.mark.parametrize("compression", ["", "GZIP"])
@pytest.mark.parametrize("num_shards", [1, 3])
def test_written_then_parsed_equals_source(tmp_path, compression, num_shards):
  schema = _schema()
  cols = _columns(257)
  paths = records.write_logs(
    schema,
    str(tmp_path / "train"),
    cols,
    num_shards=num_shards,
    compression=compression,
    batch_rows=100,
  )
  assert [os.path.basename(p) for p in paths][0].startswith(f"train-00000-of-{num_shards:05d}")
  assert all(p.endswith(".gz") == (compression == "GZIP") for p in paths)
  back = records.read_columns(str(tmp_path / "train-*"), schema)
  order = np.argsort(back["user_id"])
  source_order = np.argsort(cols["user_id"])
  for k, v in cols.items():
    np.testing.assert_array_equal(back[k][order], v[source_order], err_msg=k)
  assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(p) for p in paths)


def test_single_shard_keeps_row_order(tmp_path):
  schema = _schema()
  cols = _columns(50, seed=3)
  records.write_logs(schema, str(tmp_path / "x"), cols, batch_rows=7)
  back = records.read_columns(str(tmp_path / "x-*"), schema)
  np.testing.assert_array_equal(back["user_id"], cols["user_id"])


def test_failed_write_leaves_nothing(tmp_path):
  schema = _schema()
  with pytest.raises(RuntimeError):
    with records.LogWriter(schema, str(tmp_path / "train"), num_shards=2) as w:
      w.write(_columns(10))
      raise RuntimeError("killed")
  assert os.listdir(tmp_path) == []


def test_list_files_errors_name_pattern(tmp_path):
  with pytest.raises(FileNotFoundError, match="no log files match .*nothing-"):
    records.list_files(str(tmp_path / "nothing-*"))
  (tmp_path / "b").write_text("")
  (tmp_path / "a").write_text("")
  assert records.list_files(f"{tmp_path}/b,{tmp_path}/a") == [f"{tmp_path}/b", f"{tmp_path}/a"]
  assert records.list_files(str(tmp_path / "*")) == [f"{tmp_path}/a", f"{tmp_path}/b"]


def test_small_logs_spread_over_every_shard(tmp_path):
  schema = _schema()
  paths = records.write_logs(schema, str(tmp_path / "t"), _columns(10), num_shards=3)
  sizes = [len(records.read_columns(p, schema)["user_id"]) for p in paths]
  assert sizes == [4, 4, 2]


def _tag_schema(dtype="int64"):
  return S.Schema(
    actions=("a",),
    sparse_features=(S.SparseFeature("tags", dtype=dtype, max_values=3),),
  )


def _tag_columns(tags):
  n = len(tags)
  return {
    "ad_task_id": np.arange(n),
    "target_action": np.zeros(n, np.int64),
    "day": np.zeros(n, np.int64),
    "tags": tags,
    "label_a": np.ones(n, np.int64),
  }


def test_list_encoder_matches_protobuf_bytes():
  # Row 1 is the empty list, row 2 needs 10-byte varints and a 2-byte list length.
  tags = np.array([[1, 300, -1], [-1, -1, -1], [2**62, -(2**40), 7]])
  encoded = records.encode_examples({"tags": tags}, {"tags": tf.int64})
  with_scalar = records.encode_examples(
    {"tags": tags, "n": np.arange(3)}, {"tags": tf.int64, "n": tf.int64}
  )
  for i, row in enumerate(tags):
    expected = tf.train.Example()
    expected.features.feature["tags"].int64_list.SetInParent()
    expected.features.feature["tags"].int64_list.value.extend(int(v) for v in row if v != -1)
    assert encoded[i] == expected.SerializeToString()
    expected.features.feature["n"].int64_list.value.append(i)
    assert tf.train.Example.FromString(with_scalar[i]) == expected


def test_long_lists_under_long_keys_parse_back():
  key = "k" * 200
  tags = np.arange(3 * 40).reshape(3, 40) * 10**9
  encoded = records.encode_examples({key: tags}, {key: tf.int64})
  parsed = tf.io.parse_example(
    encoded, {key: tf.io.RaggedFeature(tf.int64, row_splits_dtype=tf.int64)}
  )
  np.testing.assert_array_equal(parsed[key].to_tensor().numpy(), tags)


@pytest.mark.parametrize("dtype", ["int64", "string"])
def test_lists_round_trip_padded_with_empty_lists(tmp_path, dtype):
  if dtype == "int64":
    tags = np.array([[4, 5, 6], [-1, -1, -1], [9, -1, -1]])
  else:
    tags = np.array([[b"x", b"y", b"z"], [b"", b"", b""], [b"w", b"", b""]], object)
  schema = _tag_schema(dtype)
  records.write_logs(schema, str(tmp_path / "t"), _tag_columns(tags))
  back = records.read_columns(str(tmp_path / "t-*"), schema)
  assert back["tags"].shape == (3, 3)
  assert back["tags"].tolist() == tags.tolist()
  parsed = records.parse_batch(
    tf.constant(records.encode_examples(_tag_columns(tags), schema.record_dtypes())), schema
  )
  assert parsed["tags"].numpy().tolist() == tags.tolist()


def test_an_absent_key_reads_as_the_empty_list(tmp_path):
  schema = _tag_schema()
  without = S.Schema(actions=("a",))
  records.write_logs(without, str(tmp_path / "t"), _tag_columns(np.zeros((2, 3))))
  back = records.read_columns(str(tmp_path / "t-*"), schema)
  np.testing.assert_array_equal(back["tags"], [[-1, -1, -1], [-1, -1, -1]])


def test_a_list_longer_than_max_values_is_refused_naming_file_record_and_field(tmp_path):
  longer = S.Schema(actions=("a",), sparse_features=(S.SparseFeature("tags", max_values=4),))
  tags = np.array([[1, -1, -1, -1], [1, 2, 3, 4]])
  paths = records.write_logs(longer, str(tmp_path / "t"), _tag_columns(tags))
  with pytest.raises(
    records.LogError,
    match=r"t-00000-of-00001.tfrecord: record #1 field 'tags' "
    r"has 4 values, more than max_values=3",
  ):
    records.read_columns(paths, _tag_schema())
  with pytest.raises(tf.errors.InvalidArgumentError, match="more than max_values=3"):
    records.parse_batch(
      tf.constant(records.encode_examples(_tag_columns(tags), longer.record_dtypes())),
      _tag_schema(),
    )


def test_writer_refuses_a_list_column_of_the_wrong_shape(tmp_path):
  with pytest.raises(ValueError, match=r"column 'tags' has shape \(2,\), expected \(n, 3\)"):
    records.write_logs(_tag_schema(), str(tmp_path / "t"), _tag_columns(np.array([1, 2])))
  with pytest.raises(
    ValueError, match=r"column 'target_action' has shape \(2, 1\), expected \(n,\)"
  ):
    cols = _tag_columns(np.full((2, 3), -1))
    cols["target_action"] = np.zeros((2, 1), np.int64)
    records.write_logs(_tag_schema(), str(tmp_path / "u"), cols)
  assert os.listdir(tmp_path) == []
