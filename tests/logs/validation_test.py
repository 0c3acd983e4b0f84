"""Record validation on real TFRecord files broken in every way the jobs must name or skip."""

import kaml_tf  # noqa: F401
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.logs import validation
from tests.conftest import BREAKAGES

SCHEMA = schema_lib.Schema(
  actions=("A", "B"),
  sparse_features=(schema_lib.SparseFeature("user"),),
  dense_features=(schema_lib.DenseFeature("x"),),
  has_true_labels=True,
)
N = 8


def _columns(n=N):
  ids = np.arange(n, dtype=np.int64)
  return {
    "ad_task_id": ids % 3,
    "target_action": ids % 2,
    "day": ids,
    "user": 100 + ids,
    "x": ids.astype(np.float32) / 4,
    "label_A": ids % 2,
    "label_B": (ids // 2) % 2,
    "true_label_A": ids % 2,
    "true_label_B": np.ones(n, np.int64),
  }


def _spec():
  return SCHEMA.parse_spec()


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_error_names_file_record_and_field(tmp_path, broken_log, breakage):
  path = str(tmp_path / "logs.tfrecord")
  reason, field, record = broken_log(path, SCHEMA, _columns(), breakage)
  error = validation.first_problem(path, SCHEMA, _spec(), batch_size=3)
  assert isinstance(error, validation.BadRecordError)
  assert error.problem.reason == reason
  assert error.problem.field == field
  assert error.problem.record == record
  message = str(error)
  assert message.startswith(path)
  if record is not None:
    assert f"record #{record}" in message
  if field is not None:
    assert f"field {field!r}" in message
  assert "--skip_bad_records" in message


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_skip_drops_and_counts_exactly_the_bad_record(tmp_path, broken_log, breakage):
  path = str(tmp_path / "logs.tfrecord")
  reason, _, record = broken_log(path, SCHEMA, _columns(), breakage)
  bad = validation.BadRecords()
  batches = list(validation.checked_batches(path, SCHEMA, _spec(), batch_size=3, bad=bad))
  users = np.concatenate([b["user"] for _, b in batches]) if batches else np.zeros([0])
  good = 100 + np.arange(N)
  if reason == "corrupt":
    # Framing is lost at the corrupt record: the records before it are kept.
    np.testing.assert_array_equal(users, good[:record])
    assert bad.readable == {path: record}
  elif reason == "empty_file":
    assert users.size == 0 and bad.empty_files == [path]
  else:
    np.testing.assert_array_equal(users, np.delete(good, record))
    assert bad.bad_indices == {path: [record]}
  assert dict(bad.counts) == {reason: 1}
  summary = bad.to_dict()
  assert summary["total_records"] == (0 if reason == "empty_file" else 1)
  assert summary["by_reason"] == {reason: 1}
  assert summary["first"][reason].startswith(path)


def test_clean_file_has_no_problem_and_reads_every_record(tmp_path):
  path = records.write_logs(SCHEMA, str(tmp_path / "clean"), _columns())[0]
  assert validation.first_problem(path, SCHEMA, _spec(), batch_size=3) is None
  bad = validation.scan(path, SCHEMA, _spec(), batch_size=3)
  assert not bad.counts and bad.is_clean(path)
  batches = list(validation.checked_batches(path, SCHEMA, _spec(), batch_size=3))
  assert [first for first, _ in batches] == [0, 3, 6]
  np.testing.assert_array_equal(np.concatenate([b["day"] for _, b in batches]), np.arange(N))


def test_gzip_file_is_checked_too(tmp_path):
  path = records.write_logs(SCHEMA, str(tmp_path / "z"), _columns(), compression="GZIP")[0]
  assert path.endswith(".gz")
  assert validation.first_problem(path, SCHEMA, _spec()) is None
  data = bytearray(open(path, "rb").read())
  with open(path, "wb") as f:
    f.write(bytes(data[: len(data) // 2]))
  error = validation.first_problem(path, SCHEMA, _spec())
  assert error is not None and error.problem.reason == validation.CORRUPT


def test_only_the_fields_of_the_spec_are_checked(tmp_path, broken_log):
  path = str(tmp_path / "logs.tfrecord")
  broken_log(path, SCHEMA, _columns(), "nan")
  without_x = {k: v for k, v in _spec().items() if k != "x"}
  assert validation.first_problem(path, SCHEMA, without_x) is None


def test_several_problems_are_all_counted_with_the_first_of_each(tmp_path):
  cols = _columns()
  cols["label_A"][[1, 5]] = 3
  cols["x"][6] = -np.inf
  path = records.write_logs(SCHEMA, str(tmp_path / "many"), cols)[0]
  bad = validation.scan(path, SCHEMA, _spec(), batch_size=4)
  assert dict(bad.counts) == {"bad_label": 2, "not_finite": 1}
  assert bad.examples["bad_label"].record == 1
  assert sorted(bad.bad_indices[path]) == [1, 5, 6]
  rows = {(r["reason"], r["field"]): r["count"] for r in bad.to_dict()["by_field"]}
  assert rows == {("bad_label", "label_A"): 2, ("not_finite", "x"): 1}


def test_a_record_bad_twice_is_counted_once(tmp_path):
  cols = _columns()
  cols["label_A"][2] = 5
  cols["x"][2] = np.nan
  path = records.write_logs(SCHEMA, str(tmp_path / "twice"), cols)[0]
  bad = validation.scan(path, SCHEMA, _spec())
  assert bad.total == 1 and bad.bad_indices == {path: [2]}


def test_add_rows_counts_as_adding_each_record_in_turn():
  path = "f.parquet"
  # Records 3 and 9 bad in label_A, 4 null in day; met in the order 3, 4, 9.
  problems = [
    validation.Problem(path, 3, "label_A", validation.BAD_LABEL, "is 2, expected 0 or 1"),
    validation.Problem(path, 4, "day", validation.MISSING_FIELD, "is null"),
    validation.Problem(path, 9, "label_A", validation.BAD_LABEL, "is 7, expected 0 or 1"),
  ]
  one_by_one, at_once = validation.BadRecords(), validation.BadRecords()
  for bad in (one_by_one, at_once):
    bad.add(validation.Problem(path, 1, "day", validation.MISSING_FIELD, "is null"))
  for problem in problems:
    one_by_one.add(problem)
  at_once.add_rows(path, np.array([3, 4, 9]), problems[:2], [2, 1])
  assert at_once.to_dict() == one_by_one.to_dict()
  assert at_once.bad_indices == one_by_one.bad_indices == {path: [1, 3, 4, 9]}
  assert list(at_once.field_examples.items()) == list(one_by_one.field_examples.items())


def test_problem_text_reads_naturally():
  p = validation.Problem("f.tfrecord", 4, "label_A", validation.BAD_LABEL, "is 2, expected 0 or 1")
  assert str(p) == "f.tfrecord: record #4 field 'label_A' is 2, expected 0 or 1"
  whole = validation.Problem("f.tfrecord", 4, None, validation.UNPARSABLE, "not an Example")
  assert str(whole) == "f.tfrecord: record #4: not an Example"
  empty = validation.Problem("f.tfrecord", None, None, validation.EMPTY_FILE, "has no records")
  assert str(empty) == "f.tfrecord has no records"


def test_missing_file_pattern_is_a_clear_error():
  with pytest.raises(FileNotFoundError, match="no log files match '/nonexistent/x-\\*'"):
    validation.scan("/nonexistent/x-*", SCHEMA, _spec())


def test_proto_problem_of_a_good_record_is_none():
  encoded = records.encode_examples(_columns(1), SCHEMA.record_dtypes())
  assert validation.proto_problem(encoded[0], _spec()) is None


def test_parquet_nulls_name_each_record_by_its_first_null_field_in_spec_order(tmp_path):
  columns = {k: pa.array(v) for k, v in _columns().items()}
  columns["x"] = pa.array([0.0, None, None, 0.75, 1.0, 1.25, 1.5, 1.75], pa.float32())
  columns["label_A"] = pa.array([0, None, 0, 1, 0, 1, None, 1], pa.int64())
  path = str(tmp_path / "nulls.parquet")
  pq.write_table(pa.table(columns), path)
  spec = _spec()
  assert list(spec).index("x") < list(spec).index("label_A")
  with pytest.raises(
    validation.BadRecordError, match=r"nulls.parquet: record #1 field 'x' is null"
  ):
    list(validation.checked_batches(path, SCHEMA, spec))
  bad = validation.BadRecords()
  ((first, good),) = validation.checked_batches(path, SCHEMA, spec, bad=bad)
  assert first == 0 and good["user"].tolist() == [100, 103, 104, 105, 107]
  assert bad.bad_indices == {path: [1, 2, 6]}
  # Record 1 has both nulls and is named by x; record 2 by x; record 6 by label_A.
  assert dict(bad.field_counts) == {("missing_field", "x"): 2, ("missing_field", "label_A"): 1}


# A schema with a multi-valued feature: `tags` holds 0 to 2 ids.
LIST_SCHEMA = schema_lib.Schema(
  actions=("A",),
  sparse_features=(schema_lib.SparseFeature("tags", max_values=2),),
)


def _tag_example(i, tags):
  example = tf.train.Example()
  fmap = example.features.feature
  for k, v in (("ad_task_id", i), ("target_action", 0), ("day", 0), ("label_A", 1)):
    fmap[k].int64_list.value.append(v)
  if tags is not None:
    fmap["tags"].int64_list.SetInParent()
    fmap["tags"].int64_list.value.extend(tags)
  return example.SerializeToString()


def _tag_tfrecord(tmp_path, lists):
  path = str(tmp_path / "tags.tfrecord")
  with tf.io.TFRecordWriter(path) as writer:
    for i, tags in enumerate(lists):
      writer.write(_tag_example(i, tags))
  return path


def _tag_parquet(tmp_path, lists):
  n = len(lists)
  path = str(tmp_path / "tags.parquet")
  table = {
    "ad_task_id": pa.array(np.arange(n)),
    "target_action": pa.array(np.zeros(n, np.int64)),
    "day": pa.array(np.zeros(n, np.int64)),
    "label_A": pa.array(np.ones(n, np.int64)),
    "tags": pa.array(lists, pa.list_(pa.int64())),
  }
  pq.write_table(pa.table(table), path)
  return path


def test_empty_and_absent_lists_are_valid_and_read_padded(tmp_path):
  # Absent key (TFRecord) and null list (Parquet) are both the empty list.
  for path in (
    _tag_tfrecord(tmp_path, [[3, 4], [], None, [5]]),
    _tag_parquet(tmp_path, [[3, 4], [], None, [5]]),
  ):
    ((first, good),) = validation.checked_batches(path, LIST_SCHEMA, LIST_SCHEMA.parse_spec())
    assert first == 0
    np.testing.assert_array_equal(good["tags"], [[3, 4], [-1, -1], [-1, -1], [5, -1]])
    np.testing.assert_array_equal(good["ad_task_id"], [0, 1, 2, 3])


BAD_LISTS = [
  # (lists, bad record, reason, message)
  ([[1], [1, 2, 3], [2]], 1, "wrong_shape", r"has 3 values, more than max_values=2"),
  ([[1], [2], [7, -1]], 2, "bad_id", r"holds the id -1, the pad value \(never a valid id\)"),
]


@pytest.mark.parametrize("fmt", ["tfrecord", "parquet"])
@pytest.mark.parametrize("lists, record, reason, message", BAD_LISTS)
def test_bad_lists_are_named_or_skipped_and_counted(tmp_path, fmt, lists, record, reason, message):
  write = _tag_tfrecord if fmt == "tfrecord" else _tag_parquet
  path = write(tmp_path, lists)
  spec = LIST_SCHEMA.parse_spec()
  with pytest.raises(
    validation.BadRecordError, match=rf"tags.{fmt}: record #{record} field 'tags' {message}"
  ):
    list(validation.checked_batches(path, LIST_SCHEMA, spec))
  assert str(validation.first_problem(path, LIST_SCHEMA, spec).problem.record) == str(record)
  bad = validation.BadRecords()
  ((_, good),) = validation.checked_batches(path, LIST_SCHEMA, spec, bad=bad)
  assert dict(bad.field_counts) == {(reason, "tags"): 1}
  assert bad.bad_indices == {path: [record]}
  assert good["ad_task_id"].tolist() == [i for i in range(3) if i != record]
  assert good["tags"].shape == (2, 2)


def test_a_null_id_in_a_parquet_list_is_a_bad_record(tmp_path):
  path = _tag_parquet(tmp_path, [[1], [2, None], None])
  spec = LIST_SCHEMA.parse_spec()
  with pytest.raises(
    validation.BadRecordError,
    match=r"tags.parquet: record #1 field 'tags' holds a null id \(position 1 of its list\)",
  ):
    list(validation.checked_batches(path, LIST_SCHEMA, spec))
  bad = validation.BadRecords()
  ((_, good),) = validation.checked_batches(path, LIST_SCHEMA, spec, bad=bad)
  assert dict(bad.field_counts) == {("bad_id", "tags"): 1}
  np.testing.assert_array_equal(good["tags"], [[1, -1], [-1, -1]])


def test_a_single_valued_field_with_two_values_names_the_field(tmp_path):
  encoded = records.encode_examples(_columns(2), SCHEMA.record_dtypes())
  example = tf.train.Example.FromString(encoded[1])
  example.features.feature["user"].int64_list.value.append(9)
  assert validation.proto_problem(example.SerializeToString(), _spec()) == (
    "user",
    "wrong_shape",
    "has 2 values, expected exactly 1 (the schema says single-valued)",
  )


def test_a_list_of_the_wrong_kind_and_an_over_long_one_are_both_counted(tmp_path):
  path = str(tmp_path / "tags.tfrecord")
  example = tf.train.Example.FromString(_tag_example(1, None))
  example.features.feature["tags"].float_list.value.append(1.5)
  with tf.io.TFRecordWriter(path) as writer:
    for e in (_tag_example(0, [1, 2]), example.SerializeToString(), _tag_example(2, [1, 2, 3])):
      writer.write(e)
  bad = validation.BadRecords()
  ((_, good),) = validation.checked_batches(path, LIST_SCHEMA, LIST_SCHEMA.parse_spec(), bad=bad)
  assert dict(bad.field_counts) == {("wrong_type", "tags"): 1, ("wrong_shape", "tags"): 1}
  assert bad.bad_indices == {path: [1, 2]}
  np.testing.assert_array_equal(good["tags"], [[1, 2]])


def test_tallies_of_files_read_apart_merge_into_the_tally_of_one_read(tmp_path, broken_log):
  paths = []
  for i, breakage in enumerate(["bad_label", "truncated", "bad_label", "empty_file", "nan"]):
    paths.append(str(tmp_path / f"logs-{i}.tfrecord"))
    broken_log(paths[-1], SCHEMA, _columns(), breakage, record=2 + i)
  together = validation.scan(paths, SCHEMA, _spec(), batch_size=3)
  merged = validation.BadRecords()
  for path in paths:
    merged.merge(validation.scan(path, SCHEMA, _spec(), batch_size=3))
  assert together.to_dict()["by_reason"] == {
    "bad_label": 2,
    "corrupt": 1,
    "empty_file": 1,
    "not_finite": 1,
  }
  assert merged.to_dict() == together.to_dict()
  # The first example of each (reason, field) is the first file's, as in one read.
  assert merged.examples["bad_label"].path == paths[0]
  assert merged.bad_indices == together.bad_indices
