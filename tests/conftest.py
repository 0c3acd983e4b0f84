"""Test-wide set-up: quiet TensorFlow logs, Keras 2, and the repo root on sys.path."""

import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
  sys.path.insert(0, str(ROOT))

import kaml_tf  # noqa: E402,F401  (pins Keras 2 before any test imports TensorFlow)

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def small_logs(tmp_path_factory):
  """A few hundred simulated records with conversion statistics, shared by end-to-end tests.

  Returns:
    dict with `dir`, `schema` (path), `train` and `test` (globs), `stats` (path).
  """
  from kaml_tf import schema as schema_lib  # pylint: disable=g-import-not-at-top
  from kaml_tf.data import stats as stats_lib  # pylint: disable=g-import-not-at-top
  from kaml_tf.simulation import simulator  # pylint: disable=g-import-not-at-top
  out = str(tmp_path_factory.mktemp("small_logs"))
  config = simulator.SimulationConfig(num_rows=900, num_users=300, num_ad_tasks=60, seed=7)
  simulator.write_simulation(config, out, num_shards=2)
  schema = schema_lib.Schema.load(f"{out}/schema.json")
  stats = stats_lib.compute_stats(f"{out}/train-*", schema, stats_lib.StatsConfig(window_days=28))
  stats.save(f"{out}/stats.parquet")
  return {"dir": out, "schema": f"{out}/schema.json", "train": f"{out}/train-*",
          "test": f"{out}/test-*", "stats": f"{out}/stats.parquet"}


@pytest.fixture(autouse=True, scope="session")
def _absl_flags_parsed():
  """Jobs run in-process under flagsaver; their flags must count as parsed."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()
