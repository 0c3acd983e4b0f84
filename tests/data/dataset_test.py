"""Tests of the `(features, targets)` input pipeline on hand-made TFRecord and Parquet logs."""

import kaml_tf  # noqa: F401
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.data import counters as counters_lib
from kaml_tf.data import dataset as dataset_lib
from kaml_tf.data import masks
from kaml_tf.logs import parquet as parquet_logs
from kaml_tf.data import stats as stats_lib
from kaml_tf.logs import validation


def _schema(has_true_labels=False):
  return schema_lib.Schema(
    actions=("A", "B"),
    sparse_features=(schema_lib.SparseFeature("ad_task_id"), schema_lib.SparseFeature("user")),
    dense_features=(schema_lib.DenseFeature("x"),),
    has_true_labels=has_true_labels,
  )


SCHEMA = _schema()
ALPHA = (2, 3)

# Figure 4 of the paper, as window statistics: ad task id -> (A, B) reported conversions.
# x = 1: target A, B above its threshold 3; y = 2: B below it; z = 3: target A with hardly any
# A conversions, B above the threshold. 4: an "Other"-target task reporting A above threshold.
FIGURE_4 = {1: (5, 4), 2: (5, 2), 3: (0, 7), 4: (2, 0)}
# One record per sample: (ad_task_id, target_action, label_A, label_B).
SAMPLES = [(1, 0, 1, 1), (2, 0, 0, 1), (3, 0, 0, 1), (4, -1, 1, 0), (9, 1, 0, 1), (9, -1, 0, 0)]
EXPECTED_MASK = [[1, 1], [1, 0], [1, 1], [1, 0], [0, 1], [0, 0]]
EXPECTED_IS_TARGET = [[1, 0], [1, 0], [1, 0], [0, 0], [0, 1], [0, 0]]


def _stats(schema=SCHEMA, table=None):
  table = FIGURE_4 if table is None else table
  ids = sorted(table)
  return stats_lib.ConversionStats(
    ad_task_ids=np.array(ids, np.int64),
    counts=np.array([table[i] for i in ids], np.int64),
    clicks=np.ones(len(ids), np.int64),
    actions=schema.actions,
    schema_fingerprint=schema.fingerprint(),
    window_start=0,
    window_end=6,
    source="figure4.parquet",
  )


def _columns(samples, schema=SCHEMA):
  a = np.asarray(samples, np.int64)
  n = len(a)
  cols = {
    "ad_task_id": a[:, 0],
    "target_action": a[:, 1],
    "day": np.full(n, 6, np.int64),
    "user": 100 + np.arange(n, dtype=np.int64),
    "x": np.arange(n, dtype=np.float32) / 2,
    "label_A": a[:, 2],
    "label_B": a[:, 3],
  }
  if schema.has_true_labels:
    cols["true_label_A"] = np.ones(n, np.int64)
    cols["true_label_B"] = a[:, 3]
  return cols


def _write(tmp_path, samples=SAMPLES, schema=SCHEMA, num_shards=1, name="logs"):
  return records.write_logs(
    schema, str(tmp_path / name), _columns(samples, schema), num_shards=num_shards, batch_rows=2
  )


def _factory(files, policy="adm", schema=SCHEMA, stats="figure4", batch_size=64, **kwargs):
  stats = _stats(schema) if stats == "figure4" else stats
  config = dataset_lib.DatasetConfig(
    files=files, batch_size=batch_size, mask=masks.MaskConfig(policy, ALPHA), **kwargs
  )
  return dataset_lib.DatasetFactory(schema, stats, config)


def _all(ds):
  features, targets = {}, {}
  for f, t in ds:
    for out, part in ((features, f), (targets, t)):
      for k, v in part.items():
        out.setdefault(k, []).append(v.numpy())
  return (
    {k: np.concatenate(v) for k, v in features.items()},
    {k: np.concatenate(v) for k, v in targets.items()},
  )


def test_contract_and_figure_4(tmp_path):
  factory = _factory(_write(tmp_path))
  ds = factory()
  features_spec, targets_spec = ds.element_spec
  assert set(features_spec) == {"ad_task_id", "user", "x", "hke_indicator"}
  assert set(targets_spec) == {"labels", "mask", "is_target"}
  assert features_spec["user"] == tf.TensorSpec([None], tf.int64)
  assert features_spec["x"] == tf.TensorSpec([None], tf.float32)
  for spec in [features_spec["hke_indicator"]] + list(targets_spec.values()):
    assert spec == tf.TensorSpec([None, 2], tf.float32)
  features, targets = _all(ds)
  np.testing.assert_array_equal(targets["mask"], EXPECTED_MASK)
  np.testing.assert_array_equal(targets["is_target"], EXPECTED_IS_TARGET)
  np.testing.assert_array_equal(features["hke_indicator"], EXPECTED_IS_TARGET)
  np.testing.assert_array_equal(targets["labels"], np.asarray(SAMPLES)[:, 2:])
  np.testing.assert_array_equal(features["ad_task_id"], [1, 2, 3, 4, 9, 9])
  np.testing.assert_array_equal(features["user"], 100 + np.arange(6))
  np.testing.assert_allclose(features["x"], np.arange(6) / 2)


@pytest.mark.parametrize(
  "policy,expected",
  [
    ("base", EXPECTED_IS_TARGET),
    ("all", np.ones([6, 2])),
  ],
)
def test_policies_without_statistics(tmp_path, policy, expected):
  features, targets = _all(_factory(_write(tmp_path), policy, stats=None)())
  np.testing.assert_array_equal(targets["mask"], expected)
  np.testing.assert_array_equal(targets["labels"], np.asarray(SAMPLES)[:, 2:])
  np.testing.assert_array_equal(features["hke_indicator"], EXPECTED_IS_TARGET)


def test_oracle_uses_true_labels(tmp_path):
  schema = _schema(has_true_labels=True)
  ds = _factory(_write(tmp_path, schema=schema), "oracle", schema=schema, stats=None)()
  assert set(ds.element_spec[1]) == {"labels", "mask", "is_target", "true_labels"}
  _, targets = _all(ds)
  true = np.stack([np.ones(6), np.asarray(SAMPLES)[:, 3]], axis=1)
  np.testing.assert_array_equal(targets["labels"], true)
  np.testing.assert_array_equal(targets["true_labels"], true)
  np.testing.assert_array_equal(targets["mask"], np.ones([6, 2]))


def test_adm_with_true_labels_keeps_reported_labels(tmp_path):
  schema = _schema(has_true_labels=True)
  _, targets = _all(_factory(_write(tmp_path, schema=schema), schema=schema)())
  np.testing.assert_array_equal(targets["labels"], np.asarray(SAMPLES)[:, 2:])
  np.testing.assert_array_equal(targets["true_labels"][:, 0], np.ones(6))
  np.testing.assert_array_equal(targets["mask"], EXPECTED_MASK)


def test_oracle_without_true_labels_is_an_error(tmp_path):
  with pytest.raises(masks.MaskError, match="oracle"):
    _factory(_write(tmp_path), "oracle", stats=None)


def test_adm_without_statistics_is_an_error(tmp_path):
  with pytest.raises(dataset_lib.DatasetError, match="needs the ad-task statistics"):
    _factory(_write(tmp_path), "adm", stats=None)


def test_statistics_of_another_schema_are_rejected(tmp_path):
  other = schema_lib.Schema(actions=("A", "B"))
  with pytest.raises(stats_lib.StatsError) as error:
    _factory(_write(tmp_path), stats=_stats(other))
  message = str(error.value)
  assert "figure4.parquet" in message
  assert other.fingerprint() in message and SCHEMA.fingerprint() in message


def test_unknown_ad_tasks_are_counted_and_use_the_base_mask(tmp_path):
  factory = _factory(_write(tmp_path), batch_size=4)
  _, targets = _all(factory())
  # Ad task 9 (two samples) is missing from the statistics: base mask, and counted.
  np.testing.assert_array_equal(targets["mask"][4:], [[0, 1], [0, 0]])
  counters = factory.counters
  assert (counters.unknown_ad_task_samples, counters.samples_read) == (2, 6)
  assert factory.log_counters() == (2, 6)
  _all(factory())
  assert (counters.unknown_ad_task_samples, counters.samples_read) == (4, 12)
  counters.reset()
  assert (counters.unknown_ad_task_samples, counters.samples_read) == (0, 0)


def test_make_dataset_shares_counters(tmp_path):
  files = _write(tmp_path)
  counters = counters_lib.InputCounters()
  for _ in range(2):
    ds = dataset_lib.make_dataset(
      files, SCHEMA, _stats(), "adm", batch_size=5, alpha=ALPHA, counters=counters
    )
    _, targets = _all(ds)
    np.testing.assert_array_equal(targets["mask"], EXPECTED_MASK)
  assert (counters.unknown_ad_task_samples, counters.samples_read) == (4, 12)


def test_counters_under_a_distribution_strategy(tmp_path):
  factory = _factory(_write(tmp_path), batch_size=4)
  strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
  batches = [t["mask"].numpy() for _, t in strategy.distribute_datasets_from_function(factory)]
  np.testing.assert_array_equal(np.concatenate(batches), EXPECTED_MASK)
  assert (factory.counters.unknown_ad_task_samples, factory.counters.samples_read) == (2, 6)


def test_evaluation_order_is_deterministic_over_shards(tmp_path):
  samples = [(1 + i % 4, 0, i % 2, 0) for i in range(40)]
  files = _write(tmp_path, samples, num_shards=4)
  first = _all(_factory(files, batch_size=7)())[0]["user"]
  second = _all(_factory(files, batch_size=7)())[0]["user"]
  np.testing.assert_array_equal(first, second)
  assert sorted(first) == list(100 + np.arange(40))


def test_shuffle_yields_every_record_once(tmp_path):
  samples = [(1 + i % 4, 0, i % 2, 0) for i in range(40)]
  files = _write(tmp_path, samples, num_shards=2)
  factory = _factory(files, batch_size=8, seed=3, shuffle_buffer=16)
  ds = factory()
  first, second = (_all(ds)[0]["user"] for _ in range(2))
  assert sorted(first) == sorted(second) == list(100 + np.arange(40))
  assert list(first) != list(second)  # reshuffled on every pass over the dataset
  # The same seed gives the same order on a fresh pipeline (a resumed epoch can skip).
  np.testing.assert_array_equal(_all(factory())[0]["user"], first)


def test_input_context_shards_files(tmp_path):
  samples = [(1, 0, 0, 0)] * 12
  files = _write(tmp_path, samples, num_shards=4, name="s")
  factory = _factory(files, batch_size=4)
  context = tf.distribute.InputContext(
    num_input_pipelines=2, input_pipeline_id=1, num_replicas_in_sync=2
  )
  assert factory.files_for(context) == ([files[1], files[3]], False)
  # Shards 1 and 3 hold rows 2-3, 8-9 and 6-7 (blocks of 2 written round-robin).
  users = [f["user"].numpy() for f, _ in factory(context)]
  assert [len(u) for u in users] == [4, 2]
  assert sorted(np.concatenate(users)) == [102, 103, 106, 107, 110, 111]


def test_fewer_files_than_pipelines_shards_records(tmp_path):
  factory = _factory(_write(tmp_path), batch_size=8)
  shares = []
  for pipeline in range(2):
    context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline)
    assert factory.files_for(context)[1]
    shares.append(_all(factory(context))[0]["user"])
  np.testing.assert_array_equal(shares[0], [100, 102, 104])
  np.testing.assert_array_equal(shares[1], [101, 103, 105])


def _write_parquet(tmp_path, samples=SAMPLES, schema=SCHEMA, num_shards=1, name="logs"):
  writer = parquet_logs.LogWriter(schema, str(tmp_path / name), num_shards)
  cols = _columns(samples, schema)
  with writer:
    for start in range(0, len(samples), 2):
      writer.write({k: v[start : start + 2] for k, v in cols.items()})
  return writer.paths


def _by_user(features, targets):
  order = np.argsort(features["user"])
  return ({k: v[order] for k, v in features.items()}, {k: v[order] for k, v in targets.items()})


@pytest.mark.parametrize("shuffle_buffer", [0, 4])
def test_parquet_logs_give_the_tfrecord_batches(tmp_path, shuffle_buffer):
  samples = _many(10)
  tfrecord = _write(tmp_path, samples, num_shards=2)
  parquet = _write_parquet(tmp_path, samples, num_shards=2)
  got = [
    _by_user(*_all(_factory(files, batch_size=3, seed=4, shuffle_buffer=shuffle_buffer)()))
    for files in (tfrecord, parquet)
  ]
  for tf_part, pq_part in zip(*got):
    assert sorted(tf_part) == sorted(pq_part)
    for k in tf_part:
      np.testing.assert_array_equal(pq_part[k], tf_part[k], err_msg=k)
      assert pq_part[k].dtype == tf_part[k].dtype


def test_parquet_batches_without_shuffle_are_in_file_order(tmp_path):
  files = _write_parquet(tmp_path, _many(7))
  users = [f["user"].numpy().tolist() for f, _ in _factory(files, batch_size=3)()]
  assert users == [[100, 101, 102], [103, 104, 105], [106]]


def test_mixed_formats_are_refused(tmp_path):
  files = _write(tmp_path, SAMPLES) + _write_parquet(tmp_path, SAMPLES)
  with pytest.raises(dataset_lib.DatasetError, match="mixes Parquet and TFRecord"):
    _factory(files)()


def test_parquet_null_names_file_record_and_field(tmp_path):
  cols = _columns(_many(5))
  table = pa.table({k: pa.array(v) for k, v in cols.items()})
  table = table.set_column(
    table.schema.get_field_index("label_B"), "label_B", pa.array([0, 1, 0, None, 1], pa.int64())
  )
  path = str(tmp_path / "null.parquet")
  pq.write_table(table, path)
  with pytest.raises(
    tf.errors.OpError,
    match=r"null.parquet: record #3 field 'label_B' is "
    r"null",
  ):
    _all(_factory(path)())
  bad = validation.scan(path, SCHEMA, dataset_lib.parse_spec(SCHEMA))
  assert dict(bad.counts) == {"missing_field": 1}
  config = dataset_lib.DatasetConfig(files=path, batch_size=2, mask=masks.MaskConfig("adm", ALPHA))
  features, _ = _all(dataset_lib.DatasetFactory(SCHEMA, _stats(), config, bad_records=bad)())
  assert features["user"].tolist() == [100, 101, 102, 104]


def test_parquet_missing_column_fails_before_reading(tmp_path):
  cols = _columns(SAMPLES)
  path = str(tmp_path / "old.parquet")
  pq.write_table(pa.table({k: pa.array(v) for k, v in cols.items() if k != "x"}), path)
  with pytest.raises(validation.LogError, match=r"old.parquet: missing column 'x'"):
    _factory(path)()


def test_parquet_records_are_sharded_when_files_are_few(tmp_path):
  files = _write_parquet(tmp_path, _many(6))
  context = tf.distribute.InputContext(
    num_input_pipelines=2, input_pipeline_id=1, num_replicas_in_sync=2
  )
  users = np.concatenate([f["user"].numpy() for f, _ in _factory(files, batch_size=4)(context)])
  assert users.tolist() == [101, 103, 105]


def test_shuffle_permutes_within_windows(tmp_path):
  """Batches of 4 from windows of 8: each batch holds records of one window only."""
  files = _write(tmp_path, _many(24))
  factory = _factory(files, batch_size=4, seed=0, shuffle_buffer=8)
  batches = [f["user"].numpy() - 100 for f, _ in factory()]
  windows = [set((b // 8).tolist()) for b in batches]
  assert [len(w) for w in windows] == [1] * 6
  assert sorted(np.concatenate(batches).tolist()) == list(range(24))
  assert np.concatenate(batches).tolist() != list(range(24))


def test_record_not_matching_the_schema_names_the_file(tmp_path):
  other = schema_lib.Schema(actions=("A",))
  cols = _columns(SAMPLES)
  files = records.write_logs(other, str(tmp_path / "old"), cols)
  with pytest.raises(
    validation.BadRecordError,
    match="old-00000-of-00001.tfrecord: record #0 field 'user' is missing",
  ):
    _factory(files)()


@pytest.mark.parametrize(
  "target,message", [(2, "target_action must be < 2"), (-2, "target_action must be >= -1")]
)
def test_target_out_of_range_is_an_error(tmp_path, target, message):
  files = _write(tmp_path, [(1, 0, 0, 0), (1, target, 0, 0)])
  with pytest.raises(tf.errors.InvalidArgumentError, match=message):
    _all(_factory(files)())


def test_figure_4_from_logs_through_the_statistics_job(tmp_path):
  # Reported conversions per ad task, all targeting A (0): x = 1 reports B 3 times (alpha_B
  # = 3), y = 2 reports B twice, z = 3 has no A conversion but 4 of B.
  samples = (
    [(1, 0, 1, 1)] * 3 + [(1, 0, 0, 0)] + [(2, 0, 1, 1)] * 2 + [(2, 0, 1, 0)] + [(3, 0, 0, 1)] * 4
  )
  files = _write(tmp_path, samples)
  stats = stats_lib.compute_stats(files, SCHEMA, stats_lib.StatsConfig(window_days=1))
  np.testing.assert_array_equal(stats.counts, [[3, 3], [3, 2], [0, 4]])
  features, targets = _all(_factory(files, stats=stats)())
  expected = {1: [1, 1], 2: [1, 0], 3: [1, 1]}
  np.testing.assert_array_equal(targets["mask"], [expected[t] for t in features["ad_task_id"]])


def _many(n):
  """n samples of known ad tasks, user 100 + i, so a yielded batch tells which rows it has."""
  return [(1 + i % 4, i % 2, i % 2, (i // 2) % 2) for i in range(n)]


@pytest.mark.parametrize(
  "field,value,message",
  [
    ("label_B", 2, "labels must be 0 or 1"),
    ("x", np.nan, "record field x must be finite"),
    ("x", np.inf, "record field x must be finite"),
  ],
)
def test_bad_values_fail_the_pipeline(tmp_path, field, value, message):
  cols = _columns(_many(6))
  cols[field][4] = value
  files = records.write_logs(SCHEMA, str(tmp_path / "bad"), cols)
  with pytest.raises(tf.errors.InvalidArgumentError, match=message):
    _all(_factory(files)())


def test_empty_file_is_an_error_naming_it(tmp_path):
  empty = tmp_path / "empty-00000-of-00001.tfrecord"
  empty.write_bytes(b"")
  with pytest.raises(
    validation.BadRecordError, match="empty-00000-of-00001.tfrecord has no records"
  ):
    _factory(str(empty))()


def test_corrupt_first_record_is_an_error_naming_it(tmp_path, broken_log):
  path = str(tmp_path / "crc.tfrecord")
  broken_log(path, SCHEMA, _columns(_many(6)), "bad_crc", record=0)
  with pytest.raises(
    validation.BadRecordError,
    match=r"crc.tfrecord: record #0: unreadable "
    r"\(corrupted record at 12\)",
  ):
    _factory(path)()


@pytest.mark.parametrize("shuffle_buffer", [0, 16])
def test_bad_records_are_dropped_exactly(tmp_path, broken_log, shuffle_buffer):
  """Two files: one with a bad label at record 3, one corrupt at record 5; plus an empty one."""
  labelled = str(tmp_path / "a.tfrecord")
  corrupt = str(tmp_path / "b.tfrecord")
  empty = tmp_path / "c.tfrecord"
  empty.write_bytes(b"")
  broken_log(labelled, SCHEMA, _columns(_many(8)), "bad_label", record=3)
  cols = _columns(_many(8))
  cols["user"] = cols["user"] + 100
  broken_log(corrupt, SCHEMA, cols, "bad_crc", record=5)
  files = str(tmp_path / "*.tfrecord")
  spec = dataset_lib.parse_spec(SCHEMA)
  bad = validation.scan(files, SCHEMA, spec)
  assert dict(bad.counts) == {"bad_label": 1, "corrupt": 1, "empty_file": 1}
  config = dataset_lib.DatasetConfig(
    files=files,
    batch_size=3,
    shuffle_buffer=shuffle_buffer,
    seed=1,
    mask=masks.MaskConfig("adm", ALPHA),
  )
  factory = dataset_lib.DatasetFactory(SCHEMA, _stats(), config, bad_records=bad)
  features, _ = _all(factory())
  expected = [100 + i for i in range(8) if i != 3] + [200 + i for i in range(5)]
  assert sorted(features["user"].tolist()) == expected
  assert factory.counters.samples_read == len(expected)


def test_bad_records_with_nothing_bad_reads_the_plain_files(tmp_path):
  files = _write(tmp_path, _many(7))
  bad = validation.scan(files, SCHEMA, dataset_lib.parse_spec(SCHEMA))
  features, _ = _all(_factory(files)())
  filtered, _ = _all(
    dataset_lib.DatasetFactory(
      SCHEMA,
      _stats(),
      dataset_lib.DatasetConfig(files=files, batch_size=64, mask=masks.MaskConfig("adm", ALPHA)),
      bad_records=bad,
    )()
  )
  np.testing.assert_array_equal(filtered["user"], features["user"])


# `SCHEMA` plus user interest tags: 0 to 3 ids per record.
TAG_SCHEMA = schema_lib.Schema(
  actions=("A", "B"),
  sparse_features=SCHEMA.sparse_features + (schema_lib.SparseFeature("tags", max_values=3),),
  dense_features=SCHEMA.dense_features,
)


def _tag_columns(n, tags=None):
  cols = _columns(_many(n))
  # Record i holds i % 4 tags: 10 i, 10 i + 1, ... (so record 0 and 4 hold none).
  cols["tags"] = np.array(
    [[10 * i + j if j < i % 4 else -1 for j in range(3)] for i in range(n)], np.int64
  )
  return cols


def _tag_logs(tmp_path, fmt, cols, name="tags"):
  if fmt == "tfrecord":
    return records.write_logs(TAG_SCHEMA, str(tmp_path / name), cols, num_shards=2, batch_rows=3)
  with parquet_logs.LogWriter(TAG_SCHEMA, str(tmp_path / name), num_shards=2) as writer:
    for start in range(0, len(cols["user"]), 3):
      writer.write({k: v[start : start + 3] for k, v in cols.items()})
  return writer.paths


@pytest.mark.parametrize("fmt", ["tfrecord", "parquet"])
@pytest.mark.parametrize("shuffle_buffer", [0, 4])
def test_multivalued_features_come_padded_in_every_batch(tmp_path, fmt, shuffle_buffer):
  cols = _tag_columns(7)
  files = _tag_logs(tmp_path, fmt, cols)
  ds = _factory(
    files,
    schema=TAG_SCHEMA,
    stats=None,
    policy="base",
    batch_size=3,
    seed=2,
    shuffle_buffer=shuffle_buffer,
  )()
  assert ds.element_spec[0]["tags"].shape.as_list() == [None, 3]
  features, _ = _by_user(*_all(ds))
  np.testing.assert_array_equal(features["user"], cols["user"])
  np.testing.assert_array_equal(features["tags"], cols["tags"])


@pytest.mark.parametrize("fmt", ["tfrecord", "parquet"])
@pytest.mark.parametrize(
  "tags, reason, message",
  [
    ([1, 2, 3, 4], "wrong_shape", "at most max_values=3 ids|has 4 values, more than max_values=3"),
    ([5, -1], "bad_id", "must not hold the pad value -1|holds the id -1, the pad value"),
  ],
)
def test_a_bad_list_fails_the_pipeline_or_is_dropped(tmp_path, fmt, tags, reason, message):
  cols = _tag_columns(6)
  wide = schema_lib.Schema(
    actions=("A", "B"),
    sparse_features=SCHEMA.sparse_features + (schema_lib.SparseFeature("tags", max_values=5),),
    dense_features=SCHEMA.dense_features,
  )
  # Written under a wider schema; -1 inside a list is written by hand below.
  cols["tags"] = np.pad(cols["tags"], [(0, 0), (0, 2)], constant_values=-1)
  cols["tags"][4] = -1
  cols["tags"][4, : len(tags)] = [t if t != -1 else 99 for t in tags]
  if fmt == "tfrecord":
    path = records.write_logs(wide, str(tmp_path / "bad"), cols)[0]
    if -1 in tags:
      raw = [r.numpy() for r in tf.data.TFRecordDataset(path)]
      example = tf.train.Example.FromString(raw[4])
      example.features.feature["tags"].int64_list.value[1] = -1
      raw[4] = example.SerializeToString()
      with tf.io.TFRecordWriter(path) as writer:
        for r in raw:
          writer.write(r)
  else:
    table = pa.table({k: pa.array(list(v) if v.ndim == 2 else v) for k, v in cols.items()})
    lists = [[t for t in row if t != -1] for row in cols["tags"]]
    lists[4] = tags
    table = table.set_column(
      table.schema.get_field_index("tags"), "tags", pa.array(lists, pa.list_(pa.int64()))
    )
    path = str(tmp_path / "bad.parquet")
    pq.write_table(table, path)
  with pytest.raises((tf.errors.OpError, validation.BadRecordError), match=message):
    _all(_factory(path, schema=TAG_SCHEMA, stats=None, policy="base")())
  spec = dataset_lib.parse_spec(TAG_SCHEMA)
  problem = validation.first_problem(path, TAG_SCHEMA, spec).problem
  assert (problem.record, problem.field, problem.reason) == (4, "tags", reason)
  bad = validation.scan(path, TAG_SCHEMA, spec)
  config = dataset_lib.DatasetConfig(files=path, batch_size=4, mask=masks.MaskConfig("base"))
  features, _ = _all(dataset_lib.DatasetFactory(TAG_SCHEMA, None, config, bad_records=bad)())
  assert features["user"].tolist() == [100, 101, 102, 103, 105]
  np.testing.assert_array_equal(features["tags"], _tag_columns(6)["tags"][[0, 1, 2, 3, 5]])


def test_a_list_column_for_a_single_valued_feature_fails_before_reading(tmp_path):
  cols = _columns(SAMPLES)
  table = pa.table({k: pa.array(v) for k, v in cols.items()})
  table = table.set_column(
    table.schema.get_field_index("user"), "user", pa.array([[1]] * len(SAMPLES))
  )
  path = str(tmp_path / "lists.parquet")
  pq.write_table(table, path)
  with pytest.raises(
    validation.LogError,
    match=r"lists.parquet: column 'user' is a list column .* in a schema that says single-valued",
  ):
    _factory(path)()


MAPPED = schema_lib.Schema(
  actions=("A", "B"),
  sparse_features=(schema_lib.SparseFeature("ad_task_id"), schema_lib.SparseFeature("user")),
  dense_features=(schema_lib.DenseFeature("x"),),
  columns=schema_lib.ColumnMapping(
    fields={"ad_task_id": "campaign", "target_action": "goal", "day": "ts", "label_A": "a"},
    target_names=True,
    timestamp_unit="ms",
  ),
)


@pytest.mark.parametrize("shuffle_buffer", [0, 4])
def test_mapped_tfrecord_logs_give_the_plain_batches(tmp_path, shuffle_buffer):
  cols = _columns(_many(10))
  cols["day"] = np.arange(10, dtype=np.int64) % 3 + 4  # days 4, 5, 6: the filter keeps 5 and 6
  plain = records.write_logs(SCHEMA, str(tmp_path / "plain"), cols, num_shards=2, batch_rows=3)
  # Written under the log names, action names and millisecond timestamps of MAPPED.
  mapped = records.write_logs(MAPPED, str(tmp_path / "mapped"), cols, num_shards=2, batch_rows=3)
  raw = tf.train.Example.FromString(next(iter(tf.data.TFRecordDataset(mapped[0]))).numpy())
  assert {"campaign", "goal", "ts", "a"} <= set(raw.features.feature)
  assert "target_action" not in raw.features.feature
  parquet = parquet_logs.LogWriter(MAPPED, str(tmp_path / "pq"), 2)
  with parquet:
    for rows in (slice(0, 5), slice(5, 10)):
      parquet.write({k: v[rows] for k, v in cols.items()})
  got = []
  for files, schema in ((plain, SCHEMA), (mapped, MAPPED), (parquet.paths, MAPPED)):
    factory = dataset_lib.DatasetFactory(
      schema,
      _stats(schema),
      dataset_lib.DatasetConfig(
        files=files,
        batch_size=3,
        mask=masks.MaskConfig("adm", ALPHA),
        seed=4,
        shuffle_buffer=shuffle_buffer,
      ),
      days=(5, 6),
    )
    got.append(_by_user(*_all(factory())))
  assert got[0][0]["user"].tolist() == [101, 102, 104, 105, 107, 108]
  for other in got[1:]:
    for want_part, part in zip(got[0], other):
      assert sorted(part) == sorted(want_part)
      for k in want_part:
        np.testing.assert_array_equal(part[k], want_part[k], err_msg=k)
        assert part[k].dtype == want_part[k].dtype
