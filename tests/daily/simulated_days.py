"""Simulated days written one day=<D> folder per day, as the daily loop reads them (tests of
`kaml_tf.daily` and `pipelines.daily`)."""

import os

import numpy as np

DAYS = 5
ROWS_PER_DAY = 600
# The tiny network of tests/training/trainer_test.py.
TINY = dict(
  expert_units=(8,),
  num_experts=2,
  tower_units=(4,),
  embedding_dim=4,
  hke_sub_tower_units=(4,),
  hke_final_units=(),
)


def write_day(schema, columns, logs_root: str, day: int) -> None:
  """Writes `columns` (rows of day `day` only) as logs_root/day=<day>/logs-*.tfrecord."""
  from kaml_tf.logs import records  # pylint: disable=g-import-not-at-top

  folder = os.path.join(logs_root, f"day={day}")
  os.makedirs(folder, exist_ok=True)
  with records.LogWriter(schema, os.path.join(folder, "logs")) as writer:
    writer.write(columns)


def shuffled_labels(schema, columns, seed: int = 0):
  """The same rows with each reported label column permuted: the corrupted day."""
  rng = np.random.default_rng(seed)
  out = dict(columns)
  for key in schema.label_keys:
    out[key] = rng.permutation(columns[key])
  return out


def make_world(logs_root: str):
  """Days 0..4 of one simulation (in memory) and its schema, and a logs root with days 0..2.

  Returns:
    dict with `schema`, `days` ({day: columns}) and `logs_root` (schema.json, day=0..2).
  """
  from kaml_tf.datasets.simulation import simulator  # pylint: disable=g-import-not-at-top

  config = simulator.SimulationConfig(
    num_rows=DAYS * ROWS_PER_DAY,
    train_days=DAYS - 1,
    test_days=1,
    num_users=200,
    num_ad_tasks=40,
    seed=11,
  )
  schema = simulator.default_schema(config, embedding_dim=4)
  rows = simulator.simulate(config)
  days = {d: {k: v[rows["day"] == d] for k, v in rows.items()} for d in range(DAYS)}
  schema.save(os.path.join(logs_root, "schema.json"))
  for d in range(3):
    write_day(schema, days[d], logs_root, d)
  return {"schema": schema, "days": days, "logs_root": logs_root}
