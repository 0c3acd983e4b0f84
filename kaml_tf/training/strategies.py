"""Chooses the `tf.distribute` strategy of a training job.

* `default`: one device (the default strategy).
* `mirrored`: `MirroredStrategy` over the local devices.
* `multi_worker`: `MultiWorkerMirroredStrategy`; each worker reads the cluster and its own
  role from the `TF_CONFIG` environment variable.
* `parameter_server`: `ParameterServerStrategy` over TF_CONFIG's "chief", "worker" and "ps"
  tasks. The chief runs the program (the `ClusterCoordinator` and Keras `fit`); a worker or
  ps task only serves (`serve_if_server_task`). Variables of at least `min_shard_bytes` are
  partitioned along their first axis into up to one shard per ps task
  (`MinSizePartitioner`), so the large embedding tables become `ShardedVariable`s spread
  over the parameter servers while small dense kernels stay whole.

`NAMES` is the one list of them (`OptimConfig.strategy` takes its choices from it).
"""

import json
import os

import kaml_tf  # noqa: F401
import tensorflow as tf

DEFAULT = "default"
MIRRORED = "mirrored"
MULTI_WORKER = "multi_worker"
PARAMETER_SERVER = "parameter_server"
NAMES = (DEFAULT, MIRRORED, MULTI_WORKER, PARAMETER_SERVER)
# TF's own default for MinSizePartitioner: a variable of less than 256 KiB stays whole.
DEFAULT_MIN_SHARD_BYTES = 256 << 10
# The TF_CONFIG task types of parameter-server training that serve instead of running fit.
SERVER_TASKS = ("worker", "ps")


def _tf_config(name: str) -> dict:
  """The parsed TF_CONFIG, which must name the cluster and this task."""
  config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
  if not config.get("cluster") or "task" not in config:
    raise ValueError(
      f"strategy: --strategy={name} needs TF_CONFIG with 'cluster' and "
      "'task' (see BUILD.md, multi-worker training)"
    )
  return config


def _multi_worker(min_shard_bytes: int) -> tf.distribute.Strategy:
  del min_shard_bytes
  _tf_config(MULTI_WORKER)
  return tf.distribute.MultiWorkerMirroredStrategy()


def _parameter_server(min_shard_bytes: int) -> tf.distribute.Strategy:
  cluster = _tf_config(PARAMETER_SERVER)["cluster"]
  missing = [job for job in ("chief", "worker", "ps") if not cluster.get(job)]
  if missing:
    raise ValueError(
      f"strategy: --strategy={PARAMETER_SERVER} needs TF_CONFIG's cluster to name "
      f"'chief', 'worker' and 'ps' tasks; it has no {missing} (see BUILD.md, "
      "parameter-server training)"
    )
  partitioner = tf.distribute.experimental.partitioners.MinSizePartitioner(
    min_shard_bytes=min_shard_bytes, max_shards=len(cluster["ps"])
  )
  return tf.distribute.ParameterServerStrategy(
    tf.distribute.cluster_resolver.TFConfigClusterResolver(), variable_partitioner=partitioner
  )


def _local(factory):
  """A one-host factory, which has no variables to partition (`min_shard_bytes` unused)."""
  return lambda min_shard_bytes: factory()


_FACTORIES = {
  DEFAULT: _local(tf.distribute.get_strategy),
  MIRRORED: _local(tf.distribute.MirroredStrategy),
  MULTI_WORKER: _multi_worker,
  PARAMETER_SERVER: _parameter_server,
}


def make(name: str, min_shard_bytes: int = DEFAULT_MIN_SHARD_BYTES) -> tf.distribute.Strategy:
  """Returns the strategy called `name`; the distributed ones need a TF_CONFIG.

  Args:
    name: One of `NAMES`.
    min_shard_bytes: Under `parameter_server`, the smallest shard a variable is cut into
      (so a variable below it stays whole); ignored by the other strategies.
  """
  if name not in _FACTORIES:
    expected = ", ".join(NAMES[:-1]) + f" or {NAMES[-1]}"
    raise ValueError(f"strategy: unknown {name!r}; expected {expected}")
  return _FACTORIES[name](min_shard_bytes)


def is_parameter_server(strategy: tf.distribute.Strategy) -> bool:
  """True under parameter-server training (only the chief then runs the program)."""
  return isinstance(strategy, tf.distribute.ParameterServerStrategy)


def serve_if_server_task(name: str) -> bool:
  """Under `parameter_server` on a "worker" or "ps" task: serves until the process is killed.

  Such a task runs no program of its own: the chief's coordinator places variables on the ps
  tasks and dispatches training steps to the workers. Returns False at once on the chief, and
  under every other strategy, so that the same command runs on every host.
  """
  if name != PARAMETER_SERVER:
    return False
  task = _tf_config(name)["task"]
  if task.get("type") not in SERVER_TASKS:
    return False
  # Lets a worker's failed RPCs reach the coordinator, which then reschedules the step
  # (TF's parameter-server fault tolerance), instead of being retried here forever.
  os.environ["GRPC_FAIL_FAST"] = "use_caller"
  resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
  server = tf.distribute.Server(
    resolver.cluster_spec(),
    job_name=resolver.task_type,
    task_index=resolver.task_id,
    protocol=resolver.rpc_layer or "grpc",
    start=True,
  )
  server.join()
  return True
