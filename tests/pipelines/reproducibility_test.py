"""With a fixed seed the jobs repeat bit for bit: statistics, evaluation, deterministic training.

The simulator's repeatability (same seed, byte-identical files, plain and gzip) is checked by
`tests/pipelines/simulate_test.py::test_same_seed_same_bytes`, and a resumed run against an
uninterrupted one by `train_faults_test.py`; this file covers the rest. Training runs as two
separate `python -m pipelines.train --deterministic` processes, as a user would rerun it.
(Measured once with the flag off: these two runs were bit-for-bit equal as well, on CPU; the
flag is what guarantees it.)
"""

import json
import os

from absl.testing import flagsaver
import pytest
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.data import stats as stats_lib
from kaml_tf.training import model_dir as model_dir_lib
from pipelines import compute_stats
from pipelines import evaluate

TRAIN_TIMEOUT_S = 300
TRAIN_FLAGS = dict(
  mask="adm",
  hke=True,
  rank_gamma=0.9,
  expert_units="8",
  num_experts=2,
  tower_units="4",
  embedding_dim=4,
  batch_size=64,
  shuffle_buffer=1000,
  epochs=1,
  seed=5,
  deterministic=True,
)
STEPS = 14  # ceil(869 training rows / 64)
# Wall-clock measurements, the only fields of train_summary.json that may differ.
TIMING_FIELDS = ("seconds", "samples_per_second", "epoch_seconds")


def _read(path):
  with open(path, "rb") as f:
    return f.read()


def test_statistics_job_twice_gives_identical_bytes(small_logs, tmp_path):
  outputs = [str(tmp_path / name / "stats.parquet") for name in ("first", "second")]
  for output in outputs:
    with flagsaver.flagsaver(
      logs=small_logs["train"],
      schema=small_logs["schema"],
      window_days=28,
      end_day=None,
      output=output,
    ):
      compute_stats.main(["compute_stats"])
  assert _read(outputs[0]) == _read(outputs[1])
  stats = stats_lib.load_stats(outputs[0], schema_lib.Schema.load(small_logs["schema"]))
  assert stats.rows_read == 869 and stats.counts.sum() > 0


@pytest.fixture(scope="module")
def trained_twice(small_logs, module_jobs, tmp_path_factory):
  """Model dirs of the same deterministic training command run twice (concurrently)."""
  base = tmp_path_factory.mktemp("deterministic")
  dirs = [str(base / name) for name in ("first", "second")]
  runs = [
    module_jobs.start(
      "pipelines.train",
      dict(
        TRAIN_FLAGS,
        schema=small_logs["schema"],
        train=small_logs["train"],
        stats=small_logs["stats"],
        model_dir=directory,
      ),
      os.path.basename(directory),
    )
    for directory in dirs
  ]
  for run in runs:
    run.wait(TRAIN_TIMEOUT_S)
    assert run.returncode == 0, run.tail()
  return dirs


def _checkpoint_values(model_dir):
  """Every value saved in the latest checkpoint: weights, Adam moments, counters."""
  path = tf.train.latest_checkpoint(os.path.join(model_dir, model_dir_lib.CHECKPOINT_DIR))
  reader = tf.train.load_checkpoint(path)
  return {
    name: reader.get_tensor(name)
    for name in reader.get_variable_to_shape_map()
    if name != "_CHECKPOINTABLE_OBJECT_GRAPH"
  }


def test_deterministic_training_twice_gives_identical_checkpoints(trained_twice):
  first, second = (_checkpoint_values(d) for d in trained_twice)
  assert sorted(first) == sorted(second)
  # Adam's moments are compared too: twice as many optimizer slots as network variables.
  network = [n for n in first if n.startswith("network/")]
  slots = [n for n in first if n.startswith("optimizer/_variables/")]
  assert len(network) > 0 and len(slots) == 2 * len(network)
  assert first["global_step/.ATTRIBUTES/VARIABLE_VALUE"] == STEPS
  for name, value in first.items():
    assert value.tobytes() == second[name].tobytes(), name

  summaries = []
  for model_dir in trained_twice:
    with open(os.path.join(model_dir, model_dir_lib.SUMMARY_FILE), encoding="utf-8") as f:
      summary = json.load(f)
    summaries.append({k: v for k, v in summary.items() if k not in TIMING_FIELDS})
  assert summaries[0] == summaries[1]  # Per-epoch losses and AUCs, exactly.


def test_evaluating_a_model_twice_and_its_deterministic_twin_gives_identical_metrics(
  trained_twice, small_logs, tmp_path
):
  first, second = trained_twice
  outputs = []
  for name, model_dir in (("once", first), ("again", first), ("twin", second)):
    output = str(tmp_path / f"{name}.json")
    with flagsaver.flagsaver(
      model_dir=model_dir, test=small_logs["test"], output=output, oracle=True, base_metrics=""
    ):
      evaluate.main([])
    outputs.append(_read(output))
  assert outputs[0] == outputs[1] == outputs[2]
  metrics = json.loads(outputs[0])
  assert metrics["overall"]["count"] > 0 and metrics["oracle"]["overall"]["count"] > 0
