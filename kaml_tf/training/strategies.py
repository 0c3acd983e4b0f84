"""Chooses the `tf.distribute` strategy of a training job.

* `default`: one device (the default strategy).
* `mirrored`: `MirroredStrategy` over the local devices.
* `multi_worker`: `MultiWorkerMirroredStrategy`; each worker reads the cluster and its own
  role from the `TF_CONFIG` environment variable.

`NAMES` is the one list of them (`OptimConfig.strategy` takes its choices from it).
"""

import json
import os

import kaml_tf  # noqa: F401
import tensorflow as tf

DEFAULT = "default"
MIRRORED = "mirrored"
MULTI_WORKER = "multi_worker"
NAMES = (DEFAULT, MIRRORED, MULTI_WORKER)


def _multi_worker() -> tf.distribute.Strategy:
  config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
  if not config.get("cluster") or "task" not in config:
    raise ValueError(
      f"strategy: --strategy={MULTI_WORKER} needs TF_CONFIG with 'cluster' and "
      "'task' (see BUILD.md, multi-worker training)"
    )
  return tf.distribute.MultiWorkerMirroredStrategy()


_FACTORIES = {
  DEFAULT: tf.distribute.get_strategy,
  MIRRORED: tf.distribute.MirroredStrategy,
  MULTI_WORKER: _multi_worker,
}


def make(name: str) -> tf.distribute.Strategy:
  """Returns the strategy called `name`; multi_worker needs a TF_CONFIG naming the cluster."""
  if name not in _FACTORIES:
    expected = ", ".join(NAMES[:-1]) + f" or {NAMES[-1]}"
    raise ValueError(f"strategy: unknown {name!r}; expected {expected}")
  return _FACTORIES[name]()
