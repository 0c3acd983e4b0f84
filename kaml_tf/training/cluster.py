"""The cluster of a distributed job: `TF_CONFIG`, free ports, and host values across workers.

Under `tf.distribute.MultiWorkerMirroredStrategy` every worker process reads the cluster and
its own role from the `TF_CONFIG` environment variable, e.g. for worker 1 of two:

  {"cluster": {"worker": ["host0:12345", "host1:12345"]},
   "task": {"type": "worker", "index": 1}}

Worker 0 is the chief (it writes the model directory). Host-side numbers each worker counts
on its own (samples read, the step it resumed from) are combined here with collectives, which
every worker must call at the same point of the program.
"""

import contextlib
import json
import socket
from typing import List, Mapping, Sequence

import kaml_tf  # noqa: F401
import numpy as np
import tensorflow as tf

from kaml_tf.training import strategies


def free_ports(count: int, host: str = "127.0.0.1") -> List[int]:
  """`count` distinct TCP ports on `host` that were free a moment ago (the OS picks them).

  The sockets stay bound until all ports are chosen, so the ports differ; another process may
  still take one before a worker binds it, which is good enough for tests on one host.
  """
  with contextlib.ExitStack() as stack:
    ports = []
    for _ in range(count):
      sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
      sock.bind((host, 0))
      ports.append(sock.getsockname()[1])
    return ports


def tf_config(workers: Sequence[str], index: int) -> str:
  """The `TF_CONFIG` JSON of worker `index` of a cluster of `workers` ("host:port" each).

  Raises:
    ValueError: if there are no workers or `index` is not one of them.
  """
  return task_tf_config({"worker": workers}, "worker", index)


def task_tf_config(jobs: Mapping[str, Sequence[str]], task_type: str, index: int) -> str:
  """The `TF_CONFIG` JSON of task `index` of job `task_type` in a cluster of `jobs`.

  Args:
    jobs: Addresses ("host:port") by job name, e.g. {"chief": [...], "worker": [...],
      "ps": [...]} for parameter-server training.
    task_type: This task's job.
    index: This task's index in its job.

  Raises:
    ValueError: if the cluster has no worker, or the task is not in it.
  """
  jobs = {job: list(addresses) for job, addresses in jobs.items()}
  if not jobs.get("worker"):
    raise ValueError("tf_config: the cluster needs at least one worker address")
  tasks = jobs.get(task_type, [])
  if not 0 <= index < len(tasks):
    raise ValueError(
      f"tf_config: {task_type} index {index} is not in 0..{len(tasks) - 1}"
      if tasks
      else f"tf_config: the cluster has no {task_type!r} job; it has {sorted(jobs)}"
    )
  return json.dumps({"cluster": jobs, "task": {"type": task_type, "index": index}})


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
  """True when several worker processes run this program in step (a cluster from TF_CONFIG).

  False under parameter-server training: its chief alone runs the program (workers and ps
  tasks only serve), so its host values need no combining.
  """
  if strategies.is_parameter_server(strategy):
    return False
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None:
    return False
  spec = resolver.cluster_spec().as_dict()
  return sum(len(tasks) for tasks in spec.values()) > 1


def sum_over_workers(strategy: tf.distribute.Strategy, values: Sequence[int]) -> List[int]:
  """Element-wise sum of integer host counts, each worker contributing its own `values`.

  A collective: every worker must call it with the same number of values. Without multiple
  workers it returns `values` unchanged.
  """
  local = np.asarray(values, dtype=np.float64)
  if not is_multi_worker(strategy):
    return [int(v) for v in values]
  # Each of this worker's replicas carries an equal part, so the replica sum counts every
  # worker once, however many devices it has.
  replicas_here = len(strategy.extended.worker_devices)
  parts = strategy.experimental_distribute_values_from_function(
    lambda ctx: tf.constant(local / replicas_here)
  )
  total = strategy.reduce(tf.distribute.ReduceOp.SUM, parts, axis=None)
  return [int(round(v)) for v in total.numpy()]


def gather_over_replicas(strategy: tf.distribute.Strategy, value: int) -> List[int]:
  """Every replica's copy of an integer host value, in replica order (a collective).

  All replicas of one worker carry that worker's `value`; a single worker gets `[value]`.
  """
  if not is_multi_worker(strategy):
    return [int(value)]
  local = tf.constant([value], tf.int64)

  @tf.function
  def gather():
    return strategy.run(lambda: tf.distribute.get_replica_context().all_gather(local, axis=0))

  return [int(v) for v in strategy.experimental_local_results(gather())[0].numpy()]


def wait_for_scheduled_steps(strategy: tf.distribute.Strategy) -> None:
  """Under parameter-server training, waits until every step dispatched so far has run.

  Keras `fit` schedules steps on the workers and returns at once, so the chief's callbacks
  run ahead of the variables; a checkpoint saved without waiting could lack the updates of
  the steps still queued. A no-op under every other strategy.
  """
  if strategies.is_parameter_server(strategy):
    # One coordinator per strategy: the constructor returns the one Keras fit uses.
    tf.distribute.experimental.coordinator.ClusterCoordinator(strategy).join()
