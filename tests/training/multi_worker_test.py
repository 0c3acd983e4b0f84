"""Multi-worker training for real: two `pipelines.train` processes on 127.0.0.1 via TF_CONFIG.

Why the BCE comparison is exact. Both train shards are read without shuffling. Under
MultiWorkerMirroredStrategy worker w reads shard w only (file sharding by input pipeline) and
its step-s batch holds records [32 s, 32 s + 32) of that shard; the single process interleaves
the two shards record by record (cycle length 2, block length 1), so its step-s batch of 64
holds exactly the same 64 records (`test_each_global_batch_is_the_two_worker_batches` checks
this on the data). With gamma = 1 the loss is the masked BCE, a sum over records divided by a
count, so it does not depend on how the records are split: the workers all-reduce their
per-action sums and counts, each differentiates `local_sum / global_count`, and the optimizer
sums the gradients. Losses, AUCs, weights and Adam's moments then agree with the single
process up to float summation order. The loss is compared per epoch (each epoch's mean over
its 3 steps, from `train_summary.json`); epoch 2 starts after 3 Adam steps.

The KAML run (ADM + HKE + gamma 0.9, reading the same shards as Parquet logs) forms ranking
pairs within each worker's half of the batch, so its loss is not the single-process one; it is
checked to finish, to read every record once, to restore, and to resume on every worker.

The validation run (KAML on the TFRecord shards) holds the last 3 training days out, validates
every 5 steps and at epoch ends with patience 2, and stops early: both workers must stop after
the same step, and the chief's best checkpoint must restore to the network that scored best.
"""

import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import time
from typing import Dict, List, Optional

import numpy as np
import pytest
import tensorflow as tf

from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.data import dataset as dataset_lib
from kaml_tf.logs import conversion as log_conversion
from kaml_tf.data import stats as stats_lib
from kaml_tf.evaluation import evaluator
from kaml_tf.models import config as model_config_lib
from kaml_tf.training import cluster
from kaml_tf.training import config as config_lib
from kaml_tf.training import early_stopping
from kaml_tf.training import trained_model
from kaml_tf.training import trainer

ROOT = pathlib.Path(__file__).resolve().parents[2]
TIMEOUT_S = 240
GLOBAL_BATCH = 64
STEPS = 3
TINY = dict(
  expert_units="8",
  num_experts=2,
  tower_units="4",
  embedding_dim=4,
  seed=3,
  batch_size=GLOBAL_BATCH,
  mask="adm",
)
BCE = dict(TINY, rank_gamma=1.0, shuffle_buffer=0, steps_per_epoch=STEPS, epochs=2)
# 421 + 448 records at 24 per worker: 18 and 19 batches, so in step 19 worker 0 trains on an
# empty batch, and step 20 finds both workers out of data, which ends the epoch (25 is a cap).
KAML = dict(
  TINY, hke=True, rank_gamma=0.9, shuffle_buffer=200, epochs=1, batch_size=48, steps_per_epoch=25
)
# 376 + 400 records of days 0-24 at 32 per worker: 13 steps an epoch (20 is a cap). A
# learning rate of 0.01 overfits the tiny network within the first two epochs.
VALIDATE = dict(
  TINY,
  hke=True,
  rank_gamma=0.9,
  shuffle_buffer=200,
  epochs=4,
  steps_per_epoch=20,
  learning_rate=0.01,
  validation_days=3,
  eval_every_steps=5,
  early_stopping_patience=2,
)
# Measured: the per-epoch losses differ by 1.4e-7 relative (or not at all), every weight and
# Adam moment tensor by at most 1.5e-7 in relative norm, the AUCs not at all. The tolerances
# leave ~60x room for another float summation order; a wrong gradient scale would be off by
# 100% in Adam's first moment and 300% in its second.
LOSS_RTOL = 1e-5
VARIABLE_RTOL = 1e-5


class _Job:
  """One `python -m pipelines.train` process, its output in `log_dir/name.{out,err}`."""

  def __init__(
    self, name: str, log_dir: pathlib.Path, flag_values: Dict[str, object], tf_config: Optional[str]
  ):
    self.name = name
    self.err_path = log_dir / f"{name}.err"
    argv = [sys.executable, "-m", "pipelines.train"]
    argv += [f"--{k}" if v is True else f"--{k}={v}" for k, v in flag_values.items()]
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    if tf_config:
      env["TF_CONFIG"] = tf_config
    with open(log_dir / f"{name}.out", "wb") as out, open(self.err_path, "wb") as err:
      self.process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=err)

  @property
  def pid(self) -> int:
    return self.process.pid

  @property
  def returncode(self) -> Optional[int]:
    return self.process.returncode

  def stderr(self) -> str:
    return self.err_path.read_text(errors="replace")

  def tail(self) -> str:
    return f"--- {self.name} (exit {self.returncode}) stderr tail:\n{self.stderr()[-3000:]}"


def _workers(
  name: str,
  log_dir: pathlib.Path,
  flag_values: Dict[str, object],
  model_dirs: List[str],
  ports: List[int],
) -> List[_Job]:
  """Starts one worker process per model dir, a cluster on `ports` of 127.0.0.1."""
  addresses = [f"127.0.0.1:{port}" for port in ports]
  return [
    _Job(
      f"{name}-worker{index}",
      log_dir,
      dict(flag_values, model_dir=model_dir, strategy="multi_worker"),
      cluster.tf_config(addresses, index),
    )
    for index, model_dir in enumerate(model_dirs)
  ]


def _wait(jobs: List[_Job], timeout_s: float) -> None:
  """Waits for every job; on timeout kills the ones still running (by PID) and fails."""
  deadline = time.monotonic() + timeout_s
  try:
    for job in jobs:
      job.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
  except subprocess.TimeoutExpired:
    pytest.fail(
      f"training jobs did not finish in {timeout_s} s:\n" + "\n".join(job.tail() for job in jobs)
    )
  finally:
    for job in jobs:
      if job.process.poll() is None:
        job.process.kill()
        job.process.wait()


def _assert_succeeded(jobs: List[_Job]) -> None:
  failed = [job for job in jobs if job.returncode != 0]
  assert not failed, "\n".join(job.tail() for job in failed)


def _summary(model_dir: str) -> dict:
  with open(os.path.join(model_dir, "train_summary.json"), encoding="utf-8") as f:
    return json.load(f)


def _files(model_dir: str) -> List[str]:
  """Every file under `model_dir`, relative; TensorBoard event files as `DIR/<events>`."""
  found = []
  for parent, _, names in os.walk(model_dir):
    for name in names:
      relative = os.path.relpath(os.path.join(parent, name), model_dir)
      found.append(
        os.path.join(os.path.dirname(relative), "<events>")
        if name.startswith("events.out.tfevents.")
        else relative
      )
  return sorted(found)


def _event_file_pids(model_dir: str) -> List[int]:
  """PIDs of the processes that wrote TensorBoard event files (events.*.HOST.PID.N.v2)."""
  return [
    int(name.split(".")[-3])
    for _, _, names in os.walk(model_dir)
    for name in names
    if name.startswith("events.out.tfevents.")
  ]


def _parquet_copy(small_logs, folder: pathlib.Path) -> str:
  """Each TFRecord train shard as one Parquet file (same records, order and shard sizes)."""
  schema = schema_lib.Schema.load(small_logs["schema"])
  for i, path in enumerate(records.list_files(small_logs["train"])):
    config = log_conversion.ConversionConfig(str(folder / f"train{i}"))
    log_conversion.convert_logs(path, schema, config)
  return str(folder / "train*.parquet")


@pytest.fixture(scope="module")
def runs(small_logs, tmp_path_factory):
  """Runs every training job of this file; returns what they left behind.

  Phase 1, concurrently: the BCE run on two workers (the non-chief gets a model dir of its
  own, as on a host without shared storage: it must stay empty), the same run in a single
  process, and the KAML run on two workers sharing one model dir (reading the shards as
  Parquet logs). Phase 2, concurrently:
  the KAML command again (every worker must resume from the chief's checkpoint and find the
  run finished), the BCE command again, whose non-chief finds no checkpoint in its own
  dir (the workers must refuse to train from different steps), and the validation run on two
  workers sharing one model dir.
  """
  base = tmp_path_factory.mktemp("multi_worker")
  data = dict(schema=small_logs["schema"], train=small_logs["train"], stats=small_logs["stats"])
  # KAML reads the same shards as Parquet logs, so both formats train under the strategy.
  kaml_data = dict(data, train=_parquet_copy(small_logs, base / "parquet"))
  dirs = {k: str(base / k) for k in ("bce_chief", "bce_other", "bce_single", "kaml", "validate")}
  jobs: List[_Job] = []
  try:
    # All ports of a phase at once, so the two clusters cannot be handed the same one.
    ports = cluster.free_ports(4)
    bce = _workers(
      "bce", base, dict(data, **BCE), [dirs["bce_chief"], dirs["bce_other"]], ports[:2]
    )
    single = _Job("bce-single", base, dict(data, **BCE, model_dir=dirs["bce_single"]), None)
    kaml = _workers("kaml", base, dict(kaml_data, **KAML), [dirs["kaml"], dirs["kaml"]], ports[2:])
    jobs = bce + [single] + kaml
    _wait(jobs, TIMEOUT_S)
    _assert_succeeded(jobs)
    first = {
      "bce_chief_pid": bce[0].pid,
      "kaml_pids": [job.pid for job in kaml],
      "kaml_lock": (pathlib.Path(dirs["kaml"]) / ".lock").read_text(),
      "summaries": {k: _summary(dirs[k]) for k in ("bce_chief", "bce_single", "kaml")},
      "files": {k: _files(dirs[k]) for k in ("bce_chief", "bce_single", "kaml")},
      "event_pids": {k: _event_file_pids(dirs[k]) for k in ("bce_chief", "kaml")},
    }
    ports = cluster.free_ports(6)
    kaml_again = _workers(
      "kaml-again", base, dict(kaml_data, **KAML), [dirs["kaml"], dirs["kaml"]], ports[:2]
    )
    bce_again = _workers(
      "bce-again", base, dict(data, **BCE), [dirs["bce_chief"], dirs["bce_other"]], ports[2:4]
    )
    # Validating on the last days needs statistics that never count them.
    validate = _workers(
      "validate",
      base,
      dict(data, stats=small_logs["stats_daily"], **VALIDATE),
      [dirs["validate"], dirs["validate"]],
      ports[4:],
    )
    jobs = kaml_again + bce_again + validate
    _wait(jobs, TIMEOUT_S)
  finally:
    for job in jobs:
      if job.process.poll() is None:
        job.process.kill()
        job.process.wait()
  return dict(
    first,
    dirs=dirs,
    kaml_again=kaml_again,
    bce_again=bce_again,
    kaml_again_summary=_summary(dirs["kaml"]),
    validate=validate,
  )


def _record_keys(dataset: tf.data.Dataset, schema: schema_lib.Schema) -> List[List[tuple]]:
  """Per batch, the sorted (features..., labels..., mask...) tuples of its records."""
  batches = []
  for features, targets in dataset:
    columns = [features[name].numpy().tolist() for name in schema.feature_names]
    columns += [column.tolist() for column in targets["labels"].numpy().T]
    columns += [column.tolist() for column in targets["mask"].numpy().T]
    batches.append(sorted(zip(*columns)))
  return batches


def test_each_global_batch_is_the_two_worker_batches(small_logs):
  schema = schema_lib.Schema.load(small_logs["schema"])
  stats = stats_lib.load_stats(small_logs["stats"], schema)
  files = records.list_files(small_logs["train"])
  assert len(files) == 2

  def batches(batch_size, context=None):
    ds = dataset_lib.make_dataset(
      small_logs["train"],
      schema,
      stats=stats,
      policy="adm",
      batch_size=batch_size,
      input_context=context,
    )
    return _record_keys(ds.take(STEPS), schema)

  single = batches(GLOBAL_BATCH)
  per_worker = [batches(GLOBAL_BATCH // 2, tf.distribute.InputContext(2, w, 2)) for w in (0, 1)]
  assert [len(b) for b in single] == [GLOBAL_BATCH] * STEPS
  for step in range(STEPS):
    assert single[step] == sorted(per_worker[0][step] + per_worker[1][step])
  # Worker w read shard w only: its records are that file's first STEPS * 32 records.
  for w, path in enumerate(files):
    own = dataset_lib.make_dataset(
      path, schema, stats=stats, policy="adm", batch_size=GLOBAL_BATCH // 2
    )
    assert _record_keys(own.take(STEPS), schema) == per_worker[w]


def test_two_workers_match_the_single_process_loss_per_epoch(runs):
  chief, single = runs["summaries"]["bce_chief"], runs["summaries"]["bce_single"]
  assert chief["steps"] == single["steps"] == 2 * STEPS
  assert len(chief["history"]) == len(single["history"]) == 2
  for got, want in zip(chief["history"], single["history"]):
    assert got["rank"] == want["rank"] == 0.0
    for term in ("bce", "total"):
      np.testing.assert_allclose(got[term], want[term], rtol=LOSS_RTOL)
    # The AUC histograms are summed over workers, so the AUCs are the single process's.
    for key in (k for k in want if k.startswith("auc_")):
      np.testing.assert_allclose(got[key], want[key], atol=1e-6, equal_nan=True)


def test_chief_checkpoint_holds_the_single_process_weights_and_adam_moments(runs):
  paths = [
    tf.train.latest_checkpoint(os.path.join(runs["dirs"][k], "checkpoints"))
    for k in ("bce_chief", "bce_single")
  ]
  readers = [tf.train.load_checkpoint(p) for p in paths]
  names = [set(r.get_variable_to_shape_map()) - {"_CHECKPOINTABLE_OBJECT_GRAPH"} for r in readers]
  assert names[0] == names[1]
  # Adam's m and v (one pair per weight) are linear and quadratic in the summed gradients,
  # so they check the gradient scale, which Adam's update itself hides.
  moments = [n for n in names[0] if n.startswith("optimizer/_variables/")]
  weights = [n for n in names[0] if n.startswith("network/")]
  assert len(moments) == 2 * len(weights) > 0
  for name in sorted(names[0]):
    got, want = (np.asarray(r.get_tensor(name), np.float64) for r in readers)
    assert got.shape == want.shape, name
    if name in moments:
      assert np.linalg.norm(want) > 0, name
    assert np.linalg.norm(got - want) <= VARIABLE_RTOL * np.linalg.norm(want), name
  assert readers[0].get_tensor("global_step/.ATTRIBUTES/VARIABLE_VALUE") == 2 * STEPS


def test_only_the_chief_writes(runs):
  assert not os.path.exists(runs["dirs"]["bce_other"])  # the non-chief's own model dir
  assert runs["files"]["bce_chief"] == runs["files"]["bce_single"]
  assert runs["files"]["kaml"] == [
    ".lock",
    "checkpoints/checkpoint",
    "checkpoints/ckpt-1.data-00000-of-00001",
    "checkpoints/ckpt-1.index",
    "config.json",
    "logs/train/<events>",
    "schema.json",
    "train_summary.json",
  ]
  # In the shared KAML dir: the lock and the TensorBoard events are the chief's.
  assert runs["kaml_lock"] == f"pid {runs['kaml_pids'][0]}"
  assert runs["event_pids"] == {
    "bce_chief": [runs["bce_chief_pid"]] * 2,
    "kaml": [runs["kaml_pids"][0]],
  }


def test_chief_checkpoint_restores_and_predicts_like_the_single_process(runs, small_logs):
  schema = schema_lib.Schema.load(small_logs["schema"])
  columns = records.read_columns(records.list_files(small_logs["test"])[:1], schema)
  features = {k: tf.constant(columns[k][:50]) for k in schema.feature_names}
  chief = trained_model.load(runs["dirs"]["bce_chief"])
  single = trained_model.load(runs["dirs"]["bce_single"])
  np.testing.assert_allclose(chief.predict_all(features), single.predict_all(features), atol=1e-5)
  kaml = trained_model.load(runs["dirs"]["kaml"])
  assert kaml.uses_indicator
  assert np.all(np.isfinite(kaml.predict_all(features)))


def test_kaml_on_two_workers_reads_every_record_once(runs, small_logs):
  schema = schema_lib.Schema.load(small_logs["schema"])
  sizes = [
    len(records.read_columns([p], schema)[schema_lib.AD_TASK_ID])
    for p in records.list_files(small_logs["train"])
  ]
  summary = runs["summaries"]["kaml"]
  (epoch,) = summary["history"]
  assert sizes == [421, 448]
  assert epoch["samples_read"] == sum(sizes)  # summed over workers, each read its shard
  # The longer shard sets the number of steps; the other worker pads with empty batches.
  assert summary["steps"] == -(-max(sizes) // (KAML["batch_size"] // 2)) == 19
  assert epoch["rank"] > 0.0
  assert np.isfinite(epoch["total"])
  assert epoch["total"] == pytest.approx(0.9 * epoch["bce"] + 0.1 * epoch["rank"], rel=1e-5)


def test_rerun_resumes_every_worker_from_the_chiefs_checkpoint(runs):
  _assert_succeeded(runs["kaml_again"])
  again, first = runs["kaml_again_summary"], runs["summaries"]["kaml"]
  assert again["resumed_from"].endswith("checkpoints/ckpt-1")
  assert again["steps"] == first["steps"] and again["history"] == []


def test_workers_resuming_from_different_steps_refuse_to_train(runs):
  for job in runs["bce_again"]:
    assert job.returncode == 1, job.tail()
    assert (
      f"the workers resumed from different steps [{2 * STEPS}, 0]; the model directory "
      "must be on storage shared by every worker" in job.stderr()
    ), job.tail()
  assert not os.path.exists(runs["dirs"]["bce_other"])


def test_distributed_run_without_steps_fails_first(small_logs, tmp_path):
  data = config_lib.DataConfig(
    schema_path=small_logs["schema"],
    train_files=small_logs["train"],
    stats_path=small_logs["stats"],
    validation_files=small_logs["test"],
  )
  optim = config_lib.OptimConfig(batch_size=GLOBAL_BATCH)
  run_config = config_lib.RunConfig(data=data, model=model_config_lib.ModelConfig(), optim=optim)
  model_dir = tmp_path / "never"
  with pytest.raises(
    config_lib.ConfigError, match=r"steps_per_epoch: required under a tf.distribute strategy"
  ):
    trainer.train(run_config, str(model_dir), strategy=tf.distribute.OneDeviceStrategy("/cpu:0"))
  assert not model_dir.exists()


_STOP = re.compile(r"early stopping at global step (\d+): 2 evaluation\(s\) without improvement")


def test_workers_validate_and_stop_early_after_the_same_step(runs, small_logs):
  _assert_succeeded(runs["validate"])
  summary = _summary(runs["dirs"]["validate"])
  history = summary["validation_history"]
  assert summary["stopped_early"] and summary["validation_days"] == [25, 27]
  # Every worker logged the stop at the step the chief's history ends with.
  stops = [_STOP.findall(job.stderr()) for job in runs["validate"]]
  assert stops == [[str(history[-1]["global_step"])]] * 2
  assert summary["steps"] == history[-1]["global_step"]
  # Each worker read its shard's rows of days 0-24 in the first (full) epoch.
  assert summary["history"][0]["samples_read"] == 376 + 400
  replay = early_stopping.EarlyStopping(patience=2)
  for entry in history:
    replay.update(entry)
  assert replay.stopped and replay.best == summary["best"]
  # The chief's best checkpoint restores to the network that scored best.
  best = trained_model.load(runs["dirs"]["validate"])
  assert best.checkpoint_name == summary["best"]["checkpoint"]
  predictions = evaluator.predict(best, small_logs["train"], days=(25, 27))
  assert (
    evaluator.metrics_of(predictions, best.schema.actions)["overall"]["auc"]
    == summary["best"]["score"]
  )


def test_only_the_chief_writes_validation_outputs(runs):
  files = _files(runs["dirs"]["validate"])
  step = _summary(runs["dirs"]["validate"])["best"]["global_step"]
  # One training event file per epoch (each `fit` has its own TensorBoard callback).
  assert sorted(set(f for f in files if f.startswith(("best/", "logs/")))) == [
    "best/best.json",
    f"best/ckpt-{step}.data-00000-of-00001",
    f"best/ckpt-{step}.index",
    "logs/train/<events>",
    "logs/validation/<events>",
  ]
  assert files.count("logs/validation/<events>") == 1
  assert set(_event_file_pids(runs["dirs"]["validate"])) == {runs["validate"][0].pid}


def test_tf_config_names_the_cluster_and_the_task():
  assert json.loads(cluster.tf_config(["h0:1", "h1:2"], 1)) == {
    "cluster": {"worker": ["h0:1", "h1:2"]},
    "task": {"type": "worker", "index": 1},
  }
  with pytest.raises(ValueError, match=r"worker index 2 is not in 0\.\.1"):
    cluster.tf_config(["h0:1", "h1:2"], 2)
  with pytest.raises(ValueError, match="at least one worker"):
    cluster.tf_config([], 0)


def test_free_ports_are_distinct_and_bindable():
  ports = cluster.free_ports(3)
  assert len(set(ports)) == 3
  for port in ports:
    with socket.socket() as sock:
      sock.bind(("127.0.0.1", port))


@pytest.mark.parametrize(
  "make",
  [
    tf.distribute.get_strategy,
    lambda: tf.distribute.OneDeviceStrategy("/cpu:0"),
    lambda: tf.distribute.MirroredStrategy(["/cpu:0"]),
  ],
  ids=["default", "one_device", "mirrored"],
)
def test_single_worker_reductions_are_identities(make):
  strategy = make()
  assert not cluster.is_multi_worker(strategy)
  assert cluster.sum_over_workers(strategy, [3, 0, 7]) == [3, 0, 7]
  assert cluster.gather_over_replicas(strategy, 5) == [5]
