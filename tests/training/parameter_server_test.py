"""Parameter-server training for real: `pipelines.train` as chief, workers and ps on 127.0.0.1.

Every task runs the same command with its own TF_CONFIG (processes spawned with
`multi_worker_test`'s helpers): the 2 worker and 2 ps tasks serve until they are killed, and
serve three chiefs in turn, each running Keras fit through a ClusterCoordinator (a chief that
exits, or crashes, leaves them serving the next one).

What "reduced correctly" means here. A worker's step is one replica (a CPU worker has one
device), so `all_reduce_statistics` reduces over that worker's batch alone: the step's loss is
eq. 12's dynamic average over the `batch_size` records of that step, and its gradient is
applied to the ps variables on its own (asynchronous training, no sum over workers). The
logged loss terms are Keras means over every step of every worker, kept on a ps task.
`test_a_step_loss_is_the_dynamic_average_of_its_batch` checks the first part exactly: one step
at a learning rate of 1e-9 (the weights stay put to ~1e-9) on a batch whose records are known
(shuffle windows of one batch, two files interleaved record by record: whichever file a worker
shuffled first, its first batch holds the first 24 records of each), whose logged BCE must be
the masked BCE of the checkpoint's network on that batch.

The KAML run (MMoE + HKE + ADM masks + ranking + embedding L2) trains 2 epochs of 5 steps,
validates on the last 3 days after each epoch and calibrates on them; its loss must go down,
its embedding tables of at least 2 KiB must be split over both ps tasks, and the same command
with --epochs=3 must resume from the checkpoint of step 10.
"""

import dataclasses
import json
import os
import pathlib
from typing import Dict, List

import numpy as np
import pytest

from kaml_tf import schema as schema_lib
from kaml_tf.data import dataset as dataset_lib
from kaml_tf.data import stats as stats_lib
from kaml_tf.evaluation import evaluator
from kaml_tf.losses import joint
from kaml_tf.training import cluster
from kaml_tf.training import trained_model
from tests.training import multi_worker_test as processes

TIMEOUT_S = 240
STEPS = 5
MIN_SHARD_BYTES = 1024
TINY = dict(
  expert_units="8",
  num_experts=2,
  tower_units="4",
  embedding_dim=4,
  seed=3,
  batch_size=48,
  mask="adm",
  strategy="parameter_server",
  ps_min_shard_bytes=MIN_SHARD_BYTES,
)
# A learning rate of 0.01 overfits the tiny network quickly: the loss falls by a third or more
# from epoch to epoch (measured: 2.7 -> 1.5 -> 1.0), far beyond the asynchronous noise.
KAML = dict(
  TINY,
  hke=True,
  rank_gamma=0.9,
  shuffle_buffer=200,
  steps_per_epoch=STEPS,
  learning_rate=0.01,
  validation_days=3,
  calibrate=True,
  # The L2 of the looked-up rows, read from the sharded tables too.
  embedding_l2=1e-3,
)
# Seed 0 too: the graph seed a worker's drawn shuffle seed is paired with must not be 0.
ONE_STEP = dict(
  TINY, rank_gamma=1.0, shuffle_buffer=48, steps_per_epoch=1, epochs=1, learning_rate=1e-9, seed=0
)


def _servers(
  log_dir: pathlib.Path, flag_values: Dict[str, object], jobs: Dict[str, List[str]]
) -> List[processes._Job]:
  """Starts every worker and ps task of `jobs` with the chief's command."""
  return [
    processes._Job(f"{job}{index}", log_dir, flag_values, cluster.task_tf_config(jobs, job, index))
    for job in ("ps", "worker")
    for index in range(len(jobs[job]))
  ]


def _chief(
  name: str, log_dir: pathlib.Path, flag_values: Dict[str, object], jobs: Dict[str, List[str]]
) -> processes._Job:
  """Runs the chief's command to its end (the servers keep running)."""
  chief = processes._Job(name, log_dir, flag_values, cluster.task_tf_config(jobs, "chief", 0))
  processes._wait([chief], TIMEOUT_S)
  processes._assert_succeeded([chief])
  return chief


@pytest.fixture(scope="module")
def runs(small_logs, tmp_path_factory):
  """One cluster of 2 workers and 2 ps tasks serves three chiefs in turn: the KAML run, the
  same command with --epochs=3 (it must resume), then the one-step run in another model dir.
  A chief that exits leaves the servers serving, as after a chief's crash."""
  base = tmp_path_factory.mktemp("parameter_server")
  data = dict(schema=small_logs["schema"], train=small_logs["train"])
  dirs = {k: str(base / k) for k in ("kaml", "one_step")}
  # Validating on the last days needs statistics that never count them.
  kaml = dict(data, stats=small_logs["stats_daily"], model_dir=dirs["kaml"], **KAML)
  one_step = dict(data, stats=small_logs["stats"], model_dir=dirs["one_step"], **ONE_STEP)
  ports = iter(cluster.free_ports(5))
  sizes = {"chief": 1, "worker": 2, "ps": 2}
  jobs = {job: [f"127.0.0.1:{next(ports)}" for _ in range(n)] for job, n in sizes.items()}
  servers = _servers(base, dict(kaml, epochs=2), jobs)
  summaries = {}
  try:
    _chief("kaml", base, dict(kaml, epochs=2), jobs)
    summaries["kaml"] = processes._summary(dirs["kaml"])
    _chief("kaml-again", base, dict(kaml, epochs=3), jobs)
    summaries["again"] = processes._summary(dirs["kaml"])
    _chief("one-step", base, one_step, jobs)
    summaries["one_step"] = processes._summary(dirs["one_step"])
    serving = [job.process.poll() is None for job in servers]
  finally:
    for job in servers:
      if job.process.poll() is None:
        job.process.kill()
        job.process.wait()
  return dict(dirs=dirs, summaries=summaries, serving=serving)


def test_workers_and_ps_serve_until_killed(runs):
  assert runs["serving"] == [True] * 4


def test_kaml_loss_goes_down(runs):
  summary = runs["summaries"]["kaml"]
  assert summary["steps"] == 2 * STEPS
  first, second = summary["history"]
  for term in ("bce", "rank", "total"):
    assert np.isfinite(first[term]) and first[term] > 0, term
  assert second["total"] < 0.9 * first["total"]
  assert second["bce"] < first["bce"]
  assert first["regularization"] > 0
  assert first["total"] == pytest.approx(
    0.9 * first["bce"] + 0.1 * first["rank"] + first["regularization"], rel=1e-5
  )


def test_embedding_tables_are_sharded_over_both_ps(runs, small_logs):
  schema = schema_lib.Schema.load(small_logs["schema"])
  shards = runs["summaries"]["kaml"]["variable_shards"]
  tables = {
    name.split("/")[-2][len("embedding_") :]: devices
    for name, devices in shards.items()
    if name.endswith("/embeddings")
  }
  # MinSizePartitioner: shards of at least MIN_SHARD_BYTES, at most one per ps task.
  rows = {f.name: f.input_dim for f in schema.sparse_features}
  big = sorted(f for f, n in rows.items() if n * TINY["embedding_dim"] * 4 >= 2 * MIN_SHARD_BYTES)
  assert sorted(tables) == big and "user_id" in big and "gender" not in big
  for feature, devices in tables.items():
    assert sorted(d.split("/")[1:4] for d in devices) == [
      ["job:ps", "replica:0", "task:0"],
      ["job:ps", "replica:0", "task:1"],
    ], feature


def test_chief_writes_validation_calibration_and_a_restorable_best_checkpoint(runs, small_logs):
  first, again = runs["summaries"]["kaml"], runs["summaries"]["again"]
  assert first["validation_days"] == [25, 27]
  steps = [e["global_step"] for e in again["validation_history"]]
  assert steps == [STEPS, 2 * STEPS, 3 * STEPS]
  assert again["validation_history"][:2] == first["validation_history"]
  assert os.path.exists(os.path.join(runs["dirs"]["kaml"], "calibration.json"))
  # The checkpoint of ShardedVariables restores into the unsharded network of evaluation, and
  # to the very network the chief scored while the variables lived on the ps tasks.
  best = trained_model.load(runs["dirs"]["kaml"])
  assert best.checkpoint_name == again["best"]["checkpoint"]
  # The calibration (fitted for this checkpoint) shifts each action's logits, which moves the
  # pooled AUC; the chief scored the raw network.
  assert best.calibration is not None
  raw = dataclasses.replace(best, calibration=None)
  predictions = evaluator.predict(raw, small_logs["train"], days=(25, 27))
  assert (
    evaluator.metrics_of(predictions, raw.schema.actions)["overall"]["auc"]
    == again["best"]["score"]
  )


def test_rerun_resumes_from_the_checkpoint_step(runs):
  again, first = runs["summaries"]["again"], runs["summaries"]["kaml"]
  # The manager numbers checkpoints by save: one per epoch here.
  assert again["resumed_from"].endswith("checkpoints/ckpt-2")
  assert again["steps"] == 3 * STEPS and again["epochs"] == 3
  (third,) = again["history"]
  # Trained on from the restored weights: below the first epoch of the first run.
  assert third["total"] < first["history"][0]["total"]


def test_a_step_loss_is_the_dynamic_average_of_its_batch(runs, small_logs):
  summary = runs["summaries"]["one_step"]
  assert summary["steps"] == 1
  schema = schema_lib.Schema.load(small_logs["schema"])
  # Unshuffled, the two files interleaved record by record: the same 48 records.
  features, targets = next(
    iter(
      dataset_lib.make_dataset(
        small_logs["train"],
        schema,
        stats=stats_lib.load_stats(small_logs["stats"], schema),
        policy="adm",
        batch_size=TINY["batch_size"],
      )
    )
  )
  model = trained_model.load(runs["dirs"]["one_step"], "latest")
  logits = model.network({k: features[k] for k in model.network.input_names})
  loss = joint.KamlLoss(gamma=1.0)
  statistics = loss.statistics(targets["labels"], logits, targets["mask"])
  want = float(loss.from_statistics(statistics)["bce"])
  (epoch,) = summary["history"]
  np.testing.assert_allclose(epoch["bce"], want, rtol=1e-5)
  assert epoch["total"] == pytest.approx(epoch["bce"], rel=1e-6)


def test_task_tf_config_names_every_job():
  jobs = {"chief": ["h0:1"], "worker": ["h1:2", "h2:3"], "ps": ["h3:4"]}
  assert json.loads(cluster.task_tf_config(jobs, "ps", 0)) == {
    "cluster": jobs,
    "task": {"type": "ps", "index": 0},
  }
  with pytest.raises(ValueError, match=r"worker index 2 is not in 0\.\.1"):
    cluster.task_tf_config(jobs, "worker", 2)
  with pytest.raises(ValueError, match=r"the cluster has no 'evaluator' job"):
    cluster.task_tf_config(jobs, "evaluator", 0)
