"""A training job with validation on, killed with SIGKILL mid-epoch and rerun, for real.

Two `python -m pipelines.train` processes on the shared few hundred simulated records, days
25-27 held out for validation (776 training rows, batch 64: 13 steps an epoch, 2 epochs),
validation every 4 steps and at epoch ends (global steps 4, 8, 12, 13, 16, 20, 24, 26), a
checkpoint every 2 steps, `--deterministic`. One runs uninterrupted; the other is frozen once
its latest checkpoint lies inside epoch 1 after validations of that epoch and before others,
killed there, and the same command is rerun. The early-stopping state (best, evaluations since
the best, history) is in the checkpoint, so the rerun must end with the uninterrupted run's
validation history, best checkpoint and final weights, bit for bit.
"""

import json
import os
import signal

from absl.testing import flagsaver
import numpy as np
import pytest
import tensorflow as tf

from kaml_tf.training import model_dir as model_dir_lib
from kaml_tf.training import trained_model
from pipelines import evaluate

TIMEOUT_S = 300
STEPS_PER_EPOCH = 13  # ceil(776 rows of days 0-24 / 64)
FLAGS = dict(
  mask="adm",
  hke=True,
  rank_gamma=0.9,
  expert_units="8",
  num_experts=2,
  tower_units="4",
  embedding_dim=4,
  batch_size=64,
  shuffle_buffer=1000,
  epochs=2,
  checkpoint_every=2,
  seed=3,
  deterministic=True,
  validation_days=3,
  eval_every_steps=4,
  early_stopping_patience=50,
)
EVALUATED = [4, 8, 12, 13, 16, 20, 24, 26]
# Inside epoch 1 (global steps 14-26), after the validation at global step 16 (batch 3) and
# before the one at 24 (batch 11).
KILL_BATCHES = range(4, 10)


def _flags(logs, model_dir):
  return dict(
    FLAGS,
    schema=logs["schema"],
    train=logs["train"],
    stats=logs["stats_daily"],
    model_dir=model_dir,
  )


def _progress(model_dir):
  """(path, epoch, batch, early-stopping state) of the latest checkpoint, or None."""
  path = tf.train.latest_checkpoint(os.path.join(model_dir, model_dir_lib.CHECKPOINT_DIR))
  if not path:
    return None
  reader = tf.train.load_checkpoint(path)
  value = lambda name: reader.get_tensor(f"{name}/.ATTRIBUTES/VARIABLE_VALUE")  # noqa: E731
  # Empty before the first validation.
  state = value("early_stopping")
  return (
    path,
    int(value("epoch")),
    int(value("step_in_epoch")),
    json.loads(state) if state else None,
  )


def _summary(model_dir):
  with open(os.path.join(model_dir, model_dir_lib.SUMMARY_FILE), encoding="utf-8") as f:
    return json.load(f)


@pytest.fixture(scope="module")
def runs(small_logs, module_jobs, tmp_path_factory):
  base = tmp_path_factory.mktemp("resume_with_validation")
  reference_dir, killed_dir = str(base / "reference"), str(base / "killed")
  reference = module_jobs.start("pipelines.train", _flags(small_logs, reference_dir), "reference")
  victim = module_jobs.start("pipelines.train", _flags(small_logs, killed_dir), "victim")

  def mid_epoch():
    progress = _progress(killed_dir)
    return progress if progress and progress[1] == 1 and progress[2] in KILL_BATCHES else None

  killed_at = victim.step_until(mid_epoch, slice_s=0.05, timeout_s=TIMEOUT_S)
  assert killed_at, "the run ended before a checkpoint inside epoch 1:\n" + victim.tail()
  victim.kill()
  rerun = module_jobs.start("pipelines.train", _flags(small_logs, killed_dir), "rerun")
  for job in (rerun, reference):
    job.wait(TIMEOUT_S)
  return dict(
    reference=reference,
    victim=victim,
    rerun=rerun,
    killed_at=killed_at,
    reference_dir=reference_dir,
    killed_dir=killed_dir,
  )


def test_killed_checkpoint_holds_the_validation_state_of_its_step(runs):
  path, epoch, batch, state = runs["killed_at"]
  assert runs["victim"].returncode == -signal.SIGKILL
  uninterrupted = _summary(runs["reference_dir"])
  assert [e["global_step"] for e in uninterrupted["validation_history"]] == EVALUATED
  done = STEPS_PER_EPOCH * epoch + batch
  # Exactly the evaluations up to the checkpoint's step, as the uninterrupted run made them.
  assert state["history"] == [
    e for e in uninterrupted["validation_history"] if e["global_step"] <= done
  ]
  assert not state["stopped"]


def test_rerun_resumes_and_ends_with_the_uninterrupted_validation_and_best(
  runs, small_logs, tmp_path
):
  rerun, reference = runs["rerun"], runs["reference"]
  assert rerun.returncode == 0, rerun.tail()
  assert reference.returncode == 0, reference.tail()
  path, epoch, batch, _ = runs["killed_at"]
  assert f"resuming from {path} (epoch {epoch}, batch {batch})" in rerun.stderr()
  resumed, uninterrupted = _summary(runs["killed_dir"]), _summary(runs["reference_dir"])
  assert resumed["resumed_from"] == path
  for key in ("steps", "epochs", "validation_days", "validation_history", "best", "stopped_early"):
    assert resumed[key] == uninterrupted[key], key
  assert resumed["validation_days"] == [25, 27] and not resumed["stopped_early"]

  for which in ("best", "latest"):
    got = trained_model.load(runs["killed_dir"], which)
    want = trained_model.load(runs["reference_dir"], which)
    assert got.checkpoint_name == want.checkpoint_name
    for g, w in zip(got.network.weights, want.network.weights):
      np.testing.assert_array_equal(g.numpy(), w.numpy(), err_msg=f"{which} {g.name}")

  outputs = []
  for name in ("killed_dir", "reference_dir"):
    outputs.append(str(tmp_path / f"{name}.json"))
    with flagsaver.flagsaver(
      model_dir=runs[name],
      test=small_logs["test"],
      output=outputs[-1],
      oracle=False,
      base_metrics="",
    ):
      evaluate.main([])
  with open(outputs[0], "rb") as a, open(outputs[1], "rb") as b:
    assert a.read() == b.read()
