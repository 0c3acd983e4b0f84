"""Test-wide set-up: quiet TensorFlow logs, Keras 2, and the repo root on sys.path."""

import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
  sys.path.insert(0, str(ROOT))

import kaml_tf  # noqa: E402,F401  (pins Keras 2 before any test imports TensorFlow)

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def small_logs(tmp_path_factory):
  """A few hundred simulated records with conversion statistics, shared by end-to-end tests.

  Returns:
    dict with `dir`, `schema` (path), `train` and `test` (globs), `stats` (static window over
    every train day) and `stats_daily` (point in time), paths.
  """
  from kaml_tf import schema as schema_lib  # pylint: disable=g-import-not-at-top
  from kaml_tf.data import stats as stats_lib  # pylint: disable=g-import-not-at-top
  from kaml_tf.datasets.simulation import simulator  # pylint: disable=g-import-not-at-top

  out = str(tmp_path_factory.mktemp("small_logs"))
  config = simulator.SimulationConfig(num_rows=900, num_users=300, num_ad_tasks=60, seed=7)
  simulator.write_simulation(config, out, num_shards=2)
  schema = schema_lib.Schema.load(f"{out}/schema.json")
  stats = stats_lib.compute_stats(f"{out}/train-*", schema, stats_lib.StatsConfig(window_days=28))
  stats.save(f"{out}/stats.parquet")
  # Point-in-time statistics: what a run validating on its last days must use (the static
  # window above counts those days).
  daily = stats_lib.compute_stats(
    f"{out}/train-*", schema, stats_lib.StatsConfig(window_days=28, as_of="daily")
  )
  daily.save(f"{out}/stats_daily.parquet")
  return {
    "dir": out,
    "schema": f"{out}/schema.json",
    "train": f"{out}/train-*",
    "test": f"{out}/test-*",
    "stats": f"{out}/stats.parquet",
    "stats_daily": f"{out}/stats_daily.parquet",
  }


@pytest.fixture(autouse=True, scope="session")
def _absl_flags_parsed():
  """Jobs run in-process under flagsaver; their flags must count as parsed."""
  from absl import flags  # pylint: disable=g-import-not-at-top

  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


# Ways a log can be broken (kaml_tf.logs.validation), each made by `write_broken_log`.
BREAKAGES = (
  "bad_crc",
  "truncated",
  "unparsable",
  "missing_field",
  "wrong_type",
  "wrong_shape",
  "bad_label",
  "bad_target",
  "nan",
  "inf",
  "empty_file",
)


def write_broken_log(path, schema, columns, breakage, record=3):
  """Writes `columns` as one TFRecord file with record `record` broken as `breakage` says.

  Args:
    path: The file to write.
    schema: The logs' schema (dtypes of the fields).
    columns: Field -> (n,) array of good values, n > record.
    breakage: One of `BREAKAGES`.
    record: The index of the record to break.

  Returns:
    (validation reason, offending field or None, offending record or None): what the
    validators must report.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from kaml_tf.logs import records  # pylint: disable=g-import-not-at-top

  columns = {k: np.array(v, copy=True) for k, v in columns.items()}
  dense = schema.dense_features[0].name if schema.dense_features else None
  label = schema.label_keys[-1]
  sparse = schema.sparse_features[0].name
  value_breaks = {
    "bad_label": (label, 2, "bad_label"),
    "bad_target": ("target_action", schema.num_actions, "bad_target"),
    "nan": (dense, np.nan, "not_finite"),
    "inf": (dense, np.inf, "not_finite"),
  }
  if breakage in value_breaks:
    field, value, reason = value_breaks[breakage]
    columns[field][record] = value
  encoded = records.encode_examples(columns, schema.record_dtypes())
  expected = {
    "bad_crc": ("corrupt", None),
    "truncated": ("corrupt", None),
    "unparsable": ("unparsable", None),
    "missing_field": ("missing_field", label),
    "wrong_type": ("wrong_type", sparse),
    "wrong_shape": ("wrong_shape", sparse),
  }
  if breakage in value_breaks:
    expected[breakage] = (value_breaks[breakage][2], value_breaks[breakage][0])
  example = tf.train.Example.FromString(encoded[record])
  if breakage == "unparsable":
    encoded[record] = b"\x0a\xff\xff not an Example"
  elif breakage == "missing_field":
    del example.features.feature[label]
  elif breakage == "wrong_type":
    example.features.feature[sparse].Clear()
    example.features.feature[sparse].float_list.value.append(1.5)
  elif breakage == "wrong_shape":
    example.features.feature[sparse].int64_list.value.append(7)
  if breakage in ("missing_field", "wrong_type", "wrong_shape"):
    encoded[record] = example.SerializeToString()
  if breakage == "empty_file":
    open(path, "wb").close()
    return "empty_file", None, None
  with tf.io.TFRecordWriter(str(path)) as writer:
    for e in encoded:
      writer.write(e)
  # TFRecord framing: 8-byte length, 4-byte length CRC, data, 4-byte data CRC.
  start = sum(16 + len(e) for e in encoded[:record]) + 12
  data = bytearray(open(path, "rb").read())
  if breakage == "bad_crc":
    data[start + 1] ^= 0xFF
  elif breakage == "truncated":
    data = data[: start + len(encoded[record]) // 2]
  with open(path, "wb") as f:
    f.write(bytes(data))
  return expected[breakage][0], expected[breakage][1], record


@pytest.fixture(name="broken_log")
def _broken_log():
  """`write_broken_log`, for tests that break logs."""
  return write_broken_log


@pytest.fixture(scope="session")
def early_stopped(small_logs, tmp_path_factory):
  """A tiny KAML run of `pipelines.train` that stopped early on its validation days.

  The last 3 of the 28 training days of `small_logs` are the validation set; it is evaluated
  every 5 steps and at epoch ends, with patience 2 and at most 4 epochs. A learning rate of
  0.01 makes the tiny network overfit within its first epoch, so the run stops there.

  Returns:
    dict with `model_dir`, `summary` (its train_summary.json) and `logs` (`small_logs`).
  """
  import json  # pylint: disable=g-import-not-at-top
  from absl.testing import flagsaver  # pylint: disable=g-import-not-at-top
  from pipelines import train  # pylint: disable=g-import-not-at-top

  model_dir = str(tmp_path_factory.mktemp("early_stopped") / "kaml")
  with flagsaver.flagsaver(
    schema=small_logs["schema"],
    train=small_logs["train"],
    stats=small_logs["stats_daily"],
    model_dir=model_dir,
    mask="adm",
    hke=True,
    rank_gamma=0.9,
    expert_units=["8"],
    num_experts=2,
    tower_units=["4"],
    embedding_dim=4,
    batch_size=64,
    shuffle_buffer=1000,
    seed=3,
    learning_rate=0.01,
    epochs=4,
    validation_days=3,
    eval_every_steps=5,
    early_stopping_patience=2,
  ):
    train.main([])
  with open(f"{model_dir}/train_summary.json", encoding="utf-8") as f:
    summary = json.load(f)
  return {"model_dir": model_dir, "summary": summary, "logs": small_logs}


@pytest.fixture(scope="session")
def adagrad_trained(small_logs, tmp_path_factory):
  """Two steps of a tiny run whose embedding tables train with Adagrad, checkpointed.

  Returns:
    dict with `model_dir`, `config` (its RunConfig) and `logs` (`small_logs`).
  """
  from kaml_tf.models import config as model_config_lib  # pylint: disable=g-import-not-at-top
  from kaml_tf.training import config as config_lib  # pylint: disable=g-import-not-at-top
  from kaml_tf.training import trainer  # pylint: disable=g-import-not-at-top

  model_dir = str(tmp_path_factory.mktemp("adagrad_trained") / "model")
  run_config = config_lib.RunConfig(
    data=config_lib.DataConfig(
      schema_path=small_logs["schema"], train_files=small_logs["train"], shuffle_buffer=1000
    ),
    model=model_config_lib.ModelConfig(
      expert_units=(8,), num_experts=2, tower_units=(4,), embedding_dim=4
    ),
    optim=config_lib.OptimConfig(
      batch_size=64,
      steps_per_epoch=2,
      seed=3,
      embedding_optimizer="adagrad",
      embedding_learning_rate=0.1,
    ),
  )
  trainer.train(run_config, model_dir, verbose=0)
  return {"model_dir": model_dir, "config": run_config, "logs": small_logs}
