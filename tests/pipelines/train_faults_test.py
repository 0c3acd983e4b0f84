"""Faults of the training job, for real: SIGKILL mid-epoch, a second job, another schema.

The kill test runs `python -m pipelines.train` as separate processes on the shared few hundred
simulated records (869 training rows, batch 64: 14 steps per epoch, 2 epochs, a checkpoint
every 2 steps). One process trains uninterrupted; while it is frozen (SIGSTOP) at its first
checkpoint, and so holds its model directory, a second job is started on that directory and
must be refused. Another process is frozen as soon as its latest checkpoint lies inside the
second epoch, killed with SIGKILL there, and the same command rerun: it must resume from that
checkpoint and end bit for bit where the uninterrupted run ended. A model directory of another
schema is checked in-process: the refusal comes before any work.
"""

import dataclasses
import json
import os
import signal

from absl.testing import flagsaver
import numpy as np
import pytest
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.models import config as model_config_lib
from kaml_tf.training import checkpointing
from kaml_tf.training import config as config_lib
from kaml_tf.training import model_dir as model_dir_lib
from kaml_tf.training import trained_model
from kaml_tf.training import trainer
from pipelines import evaluate
from pipelines import train

TRAIN_TIMEOUT_S = 300
REFUSAL_TIMEOUT_S = 120
BATCH = 64
STEPS_PER_EPOCH = 14  # ceil(869 training rows / 64)
EPOCHS = 2
TRAIN_FLAGS = dict(
  mask="adm",
  hke=True,
  rank_gamma=0.9,
  expert_units="8",
  num_experts=2,
  tower_units="4",
  embedding_dim=4,
  batch_size=BATCH,
  shuffle_buffer=1000,
  epochs=EPOCHS,
  checkpoint_every=2,
  seed=3,
  deterministic=True,
)
# Where the kill lands: a checkpoint of the second epoch with batches left on both sides, so
# the rerun must restore the epoch counter, reopen epoch 1's shuffle and skip what was done.
KILL_EPOCH = 1
KILL_BATCHES = range(4, STEPS_PER_EPOCH - 4 + 1)


def _train_flags(logs, model_dir):
  return dict(
    TRAIN_FLAGS,
    schema=logs["schema"],
    train=logs["train"],
    stats=logs["stats"],
    model_dir=model_dir,
  )


def _progress(model_dir):
  """(path, epoch, batches done in it) of the latest checkpoint of `model_dir`, or None."""
  path = tf.train.latest_checkpoint(os.path.join(model_dir, model_dir_lib.CHECKPOINT_DIR))
  if not path:
    return None
  reader = tf.train.load_checkpoint(path)
  return (
    path,
    int(reader.get_tensor("epoch/.ATTRIBUTES/VARIABLE_VALUE")),
    int(reader.get_tensor("step_in_epoch/.ATTRIBUTES/VARIABLE_VALUE")),
  )


def _listing(directory):
  return sorted(
    os.path.relpath(os.path.join(parent, name), directory)
    for parent, _, names in os.walk(directory)
    for name in names
  )


def _read(path):
  with open(path, "rb") as f:
    return f.read()


def _summary(model_dir):
  with open(os.path.join(model_dir, model_dir_lib.SUMMARY_FILE), encoding="utf-8") as f:
    return json.load(f)


@pytest.fixture(scope="module")
def interrupted(small_logs, module_jobs, tmp_path_factory):
  """Runs the uninterrupted and the killed-then-rerun training; returns what happened.

  The runs overlap where they can (on 2 cores a process start-up is most of a run): the
  reference is frozen at its first checkpoint while a second job tries its directory, and
  the victim trains meanwhile until it is frozen inside epoch 1 and killed.
  """
  base = tmp_path_factory.mktemp("train_faults")
  reference_dir, killed_dir = str(base / "reference"), str(base / "killed")
  reference = module_jobs.start(
    "pipelines.train", _train_flags(small_logs, reference_dir), "reference", niceness=10
  )
  victim = module_jobs.start(
    "pipelines.train", _train_flags(small_logs, killed_dir), "victim", niceness=10
  )

  # The reference, stopped but alive, holds its directory's lock.
  assert reference.step_until(
    lambda: _progress(reference_dir), slice_s=0.05, timeout_s=TRAIN_TIMEOUT_S
  ), reference.tail()
  before_second = _listing(reference_dir)
  second = module_jobs.start("pipelines.train", _train_flags(small_logs, reference_dir), "second")

  def mid_epoch():
    progress = _progress(killed_dir)
    return (
      progress if progress and progress[1:] in {(KILL_EPOCH, b) for b in KILL_BATCHES} else None
    )

  killed_at = victim.step_until(mid_epoch, slice_s=0.05, timeout_s=TRAIN_TIMEOUT_S)
  assert killed_at, f"the run ended before a checkpoint inside epoch {KILL_EPOCH}:\n" + (
    victim.tail()
  )
  victim.kill()
  rerun = module_jobs.start("pipelines.train", _train_flags(small_logs, killed_dir), "rerun")

  second.wait(REFUSAL_TIMEOUT_S)
  after_second = _listing(reference_dir)
  reference.resume()
  for job in (rerun, reference):
    job.wait(TRAIN_TIMEOUT_S)
  return dict(
    reference=reference,
    victim=victim,
    second=second,
    rerun=rerun,
    killed_at=killed_at,
    reference_dir=reference_dir,
    killed_dir=killed_dir,
    listing_before_second=before_second,
    listing_after_second=after_second,
  )


def test_second_job_on_a_model_dir_in_use_is_refused(interrupted):
  """A real second process on a directory held by a (frozen) training job fails, naming it."""
  second, holder = interrupted["second"], interrupted["reference"]
  assert second.returncode == 1, second.tail()
  assert (
    f"ModelDirError: {interrupted['reference_dir']} is in use by a training job "
    f"(pid {holder.pid}); wait for it to finish or use another --model_dir" in second.stderr()
  ), second.tail()
  # It wrote nothing: no checkpoint, config or log of its own mixed into the directory.
  assert interrupted["listing_after_second"] == interrupted["listing_before_second"]


def test_killed_run_resumes_mid_epoch_and_ends_bit_for_bit_like_an_uninterrupted_one(
  interrupted, small_logs, tmp_path
):
  """SIGKILL in the middle of epoch 1, then the same command: resumes and finishes exactly.

  Tolerance: none. The resumed run restores the weights, Adam's moments and the progress
  counters exactly, reopens epoch 1's shuffle (seeded by seed + epoch) and skips the batches
  already done, so every later step sees the same batch and the same state as in the
  uninterrupted run; with `--deterministic` every op then computes the same bits, so the
  final weights and the metrics.json files are equal byte for byte. Measured without
  `--deterministic` (this file with the flag off, one run): also bit-for-bit equal on this CPU
  build; the flag is what makes that a guarantee rather than an observation.
  """
  victim, rerun, reference = interrupted["victim"], interrupted["rerun"], interrupted["reference"]
  path, epoch, batch = interrupted["killed_at"]
  assert victim.returncode == -signal.SIGKILL
  assert reference.returncode == 0, reference.tail()
  assert rerun.returncode == 0, rerun.tail()
  assert f"resuming from {path} (epoch {epoch}, batch {batch})" in rerun.stderr()
  killed_dir, reference_dir = interrupted["killed_dir"], interrupted["reference_dir"]
  resumed, uninterrupted = _summary(killed_dir), _summary(reference_dir)
  assert resumed["resumed_from"] == path and uninterrupted["resumed_from"] is None
  assert resumed["epochs"] == uninterrupted["epochs"] == EPOCHS
  assert resumed["steps"] == uninterrupted["steps"] == EPOCHS * STEPS_PER_EPOCH
  # The rerun fitted epoch 1 only (the rest of it).
  assert len(resumed["history"]) == 1 and len(uninterrupted["history"]) == EPOCHS

  got = trained_model.load(killed_dir).network.weights
  want = trained_model.load(reference_dir).network.weights
  assert [w.name for w in got] == [w.name for w in want]
  for g, w in zip(got, want):
    np.testing.assert_array_equal(g.numpy(), w.numpy(), err_msg=g.name)

  metrics = {}
  for name, model_dir in (("resumed", killed_dir), ("uninterrupted", reference_dir)):
    output = str(tmp_path / f"{name}.json")
    with flagsaver.flagsaver(
      model_dir=model_dir, test=small_logs["test"], output=output, oracle=True, base_metrics=""
    ):
      evaluate.main([])
    with open(output, "rb") as f:
      metrics[name] = f.read()
  assert metrics["resumed"] == metrics["uninterrupted"]
  assert json.loads(metrics["resumed"])["overall"]["count"] > 0


def _other_schema(schema, **changes):
  """`schema` with its first sparse feature changed (e.g. its hash buckets)."""
  first = dataclasses.replace(schema.sparse_features[0], **changes)
  return dataclasses.replace(schema, sparse_features=(first,) + schema.sparse_features[1:])


@pytest.mark.parametrize("same_path", [True, False], ids=["regenerated_logs", "other_logs"])
def test_model_dir_of_another_schema_is_refused_naming_it(small_logs, tmp_path, same_path):
  """Training pointed at a model dir trained on another schema fails before any work.

  `regenerated_logs`: the same --schema path now holds another schema (the config is
  unchanged); `other_logs`: --schema names another data set's schema file.
  """
  schema = schema_lib.Schema.load(small_logs["schema"])
  data = tmp_path / "data"
  data.mkdir()
  schema.save(str(data / "schema.json"))
  model_dir = str(tmp_path / "model")
  # In-process: op determinism would stay on in this test process for every later test.
  flags = dict(
    _train_flags(dict(small_logs, schema=str(data / "schema.json")), model_dir), deterministic=False
  )
  with flagsaver.flagsaver(**flags):
    # What the first run writes before its first step (the trained run's config and schema).
    model_dir_lib.prepare(model_dir, train.run_config_from_flags(), schema)
  before = {name: _read(os.path.join(model_dir, name)) for name in os.listdir(model_dir)}

  other = _other_schema(schema, num_buckets=schema.sparse_features[0].num_buckets + 1)
  other_path = str(data / "schema.json") if same_path else str(tmp_path / "other.json")
  other.save(other_path)
  with flagsaver.flagsaver(**dict(flags, schema=other_path)):
    with pytest.raises(model_dir_lib.ModelDirError) as error:
      train.main([])
  assert str(error.value) == (
    f"{model_dir} was trained on schema {schema.fingerprint()} (actions "
    f"{list(schema.actions)}) but the logs' schema {other_path} is {other.fingerprint()} "
    f"(actions {list(other.actions)}); refusing to mix checkpoints. Use a new --model_dir"
  )
  after = {name: _read(os.path.join(model_dir, name)) for name in os.listdir(model_dir)}
  assert after.keys() - {model_dir_lib.LOCK_FILE} == before.keys()
  assert {k: after[k] for k in before} == before


class _Killed(Exception):
  pass


def test_killed_between_the_last_batch_and_the_epoch_checkpoint_resumes(
  small_logs, tmp_path, monkeypatch
):
  """A job dying after the checkpoint of an epoch's last batch and before the epoch's own.

  With 14 batches and a checkpoint every 7, batch 14 is checkpointed, then the epoch ends;
  the window between the two saves holds the end-of-data step and any --validation pass.
  In-process: the kill is a raise in the epoch-end callback, before it saves.
  """
  config = config_lib.RunConfig(
    data=config_lib.DataConfig(
      schema_path=small_logs["schema"],
      train_files=small_logs["train"],
      stats_path=small_logs["stats"],
      mask_policy="adm",
      shuffle_buffer=1000,
    ),
    model=model_config_lib.ModelConfig(
      expert_units=(8,), num_experts=2, tower_units=(4,), embedding_dim=4
    ),
    optim=config_lib.OptimConfig(
      batch_size=BATCH, epochs=1, seed=3, checkpoint_every_steps=STEPS_PER_EPOCH // 2
    ),
  )
  model_dir = str(tmp_path / "model")

  def die(self, epoch, logs=None):
    raise _Killed()

  with monkeypatch.context() as patch:
    patch.setattr(checkpointing.CheckpointCallback, "on_epoch_end", die)
    with pytest.raises(_Killed):
      trainer.train(config, model_dir, verbose=0)
  path, epoch, batch = _progress(model_dir)
  assert (epoch, batch) == (0, STEPS_PER_EPOCH)  # The last batch's checkpoint.

  resumed = trainer.train(config, model_dir, verbose=0)
  assert resumed.resumed_from == path
  assert (resumed.epochs, resumed.steps) == (1, STEPS_PER_EPOCH)
