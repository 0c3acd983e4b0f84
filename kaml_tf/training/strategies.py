"""Chooses the `tf.distribute` strategy of a training job.

* `default`: one device (the default strategy).
* `mirrored`: `MirroredStrategy` over the local devices.
* `multi_worker`: `MultiWorkerMirroredStrategy`; each worker reads the cluster and its own
  role from the `TF_CONFIG` environment variable.
"""

import json
import os

import kaml_tf  # noqa: F401
import tensorflow as tf


def make(name: str) -> tf.distribute.Strategy:
  """Returns the strategy called `name`; multi_worker needs a TF_CONFIG naming the cluster."""
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "mirrored":
    return tf.distribute.MirroredStrategy()
  if name == "multi_worker":
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    if not config.get("cluster") or "task" not in config:
      raise ValueError(
        "strategy: --strategy=multi_worker needs TF_CONFIG with 'cluster' and "
        "'task' (see BUILD.md, multi-worker training)"
      )
    return tf.distribute.MultiWorkerMirroredStrategy()
  raise ValueError(f"strategy: unknown {name!r}; expected default, mirrored or multi_worker")
