"""kaml_tf.training.strategies: the strategy names and their factories."""

import dataclasses

import kaml_tf  # noqa: F401
import pytest
import tensorflow as tf

from kaml_tf.training import config as config_lib
from kaml_tf.training import strategies


def test_the_names_are_the_strategy_settings_choices():
  fields = {f.name: f for f in dataclasses.fields(config_lib.OptimConfig)}
  assert fields["strategy"].metadata["choices"] == strategies.NAMES
  assert strategies.NAMES == ("default", "mirrored", "multi_worker")


def test_default_is_the_default_strategy():
  assert strategies.make(strategies.DEFAULT) is tf.distribute.get_strategy()


def test_unknown_name_lists_the_names():
  with pytest.raises(
    ValueError, match=r"^strategy: unknown 'tpu'; expected default, mirrored or multi_worker$"
  ):
    strategies.make("tpu")


def test_multi_worker_needs_tf_config(monkeypatch):
  monkeypatch.delenv("TF_CONFIG", raising=False)
  with pytest.raises(ValueError, match="--strategy=multi_worker needs TF_CONFIG"):
    strategies.make(strategies.MULTI_WORKER)
