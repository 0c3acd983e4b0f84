"""kaml_tf.training.strategies: the strategy names and their factories."""

import dataclasses

import kaml_tf  # noqa: F401
import pytest
import tensorflow as tf

from kaml_tf.training import cluster
from kaml_tf.training import config as config_lib
from kaml_tf.training import strategies


def test_the_names_are_the_strategy_settings_choices():
  fields = {f.name: f for f in dataclasses.fields(config_lib.OptimConfig)}
  assert fields["strategy"].metadata["choices"] == strategies.NAMES
  assert strategies.NAMES == ("default", "mirrored", "multi_worker", "parameter_server")


def test_default_is_the_default_strategy():
  assert strategies.make(strategies.DEFAULT) is tf.distribute.get_strategy()


def test_unknown_name_lists_the_names():
  with pytest.raises(
    ValueError,
    match=r"^strategy: unknown 'tpu'; expected default, mirrored, multi_worker or parameter_server$",
  ):
    strategies.make("tpu")


def test_multi_worker_needs_tf_config(monkeypatch):
  monkeypatch.delenv("TF_CONFIG", raising=False)
  with pytest.raises(ValueError, match="--strategy=multi_worker needs TF_CONFIG"):
    strategies.make(strategies.MULTI_WORKER)


@pytest.mark.parametrize(
  "tf_config, message",
  [
    ("", r"needs TF_CONFIG with 'cluster' and 'task'"),
    (
      cluster.task_tf_config({"chief": ["h:1"], "worker": ["h:2"]}, "chief", 0),
      r"it has no \['ps'\]",
    ),
  ],
  ids=["no_tf_config", "no_ps"],
)
def test_parameter_server_strategy_needs_a_full_cluster(monkeypatch, tf_config, message):
  monkeypatch.setenv("TF_CONFIG", tf_config)
  with pytest.raises(ValueError, match=message):
    strategies.make(strategies.PARAMETER_SERVER)


@pytest.mark.parametrize(
  "name, task",
  [
    (strategies.PARAMETER_SERVER, "chief"),
    (strategies.MULTI_WORKER, "worker"),
    (strategies.DEFAULT, "ps"),
  ],
)
def test_only_parameter_server_workers_and_ps_serve(monkeypatch, name, task):
  jobs = {"chief": ["h:1"], "worker": ["h:2"], "ps": ["h:3"]}
  monkeypatch.setenv("TF_CONFIG", cluster.task_tf_config(jobs, task, 0))
  # Returns at once: a task that served would block here until killed.
  assert strategies.serve_if_server_task(name) is False
