"""README's "Train on your own logs", end to end on a small table of foreign column names.

infer_schema -> validate_logs -> compute_stats -> train -> evaluate -> export, then scoring
through `serving_default` of the exported SavedModel in a fresh process. The table has its own
names for the ad task, the target (action names), the time (a Unix timestamp) and the labels,
and one list column (interest tags).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import kaml_tf  # noqa: F401
from absl import flags
from absl.testing import flagsaver

from export import export_model
from kaml_tf import schema as schema_lib
from pipelines import compute_stats
from pipelines import evaluate
from pipelines import infer_schema
from pipelines import train
from pipelines import validate_logs

ACTIONS = ("install", "purchase")
DAY_SECONDS = 86400
START = 1_700_006_400  # 2023-11-15 00:00 UTC: a day boundary.
TAGS = np.array(["sports", "music", "games", "travel", "food", "news"])


@pytest.fixture(autouse=True)
def _parsed_flags():
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


def _table(rng, rows, first_day, days):
  """Clicks of 12 campaigns over `days` days: each campaign targets one action and reports
  only some of the other one."""
  campaign = rng.integers(100, 112, rows)
  goal = np.where(campaign % 3 == 0, "purchase", "install")
  user = rng.integers(0, 80, rows)
  tags = [list(rng.choice(TAGS, rng.integers(0, 4), replace=False)) for _ in range(rows)]
  spend = rng.pareto(1.5, rows) * 10.0
  likes_games = np.array(["games" in t for t in tags])
  p_install = 0.15 + 0.3 * likes_games + 0.1 * (user % 2)
  install = (rng.random(rows) < p_install).astype(np.int64)
  purchase = (install * (rng.random(rows) < 0.3 + 0.01 * np.minimum(spend, 30))).astype(np.int64)
  # Campaigns 100-105 report both actions; the others only their target.
  reports_both = campaign < 106
  install = np.where(reports_both | (goal == "install"), install, 0)
  purchase = np.where(reports_both | (goal == "purchase"), purchase, 0)
  ts = (
    START + (first_day + rng.integers(0, days, rows)) * DAY_SECONDS + rng.integers(0, 86000, rows)
  )
  return pa.table(
    {
      "campaign": pa.array(campaign, pa.int64()),
      "goal": pa.array(goal),
      "event_time": pa.array(ts, pa.int64()),
      "did_install": pa.array(install, pa.int64()),
      "did_purchase": pa.array(purchase, pa.int64()),
      "user": pa.array(user, pa.int64()),
      "interests": pa.array(tags, pa.list_(pa.string())),
      "spend": pa.array(spend, pa.float64()),
    }
  )


def _score(export_dir, features):
  """`serving_default` of the SavedModel, loaded in a fresh Python process."""
  script = f"""
import json, sys
import numpy as np
import tensorflow as tf
model = tf.saved_model.load({export_dir!r})
features = json.loads(sys.stdin.read())
serve = model.signatures["serving_default"]
specs = serve.structured_input_signature[1]
out = serve(**{{k: tf.constant(v, specs[k].dtype) for k, v in features.items()}})
print(json.dumps({{k: v.numpy().tolist() for k, v in out.items()}}))
"""
  done = subprocess.run(
    [sys.executable, "-c", script],
    input=json.dumps(features),
    capture_output=True,
    text=True,
    env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
  )
  assert done.returncode == 0, done.stderr[-3000:]
  return json.loads(done.stdout.strip().splitlines()[-1])


def test_train_on_your_own_logs(tmp_path):
  rng = np.random.default_rng(5)
  logs = tmp_path / "logs"
  logs.mkdir()
  pq.write_table(_table(rng, 700, 0, 10), str(logs / "train.parquet"))
  pq.write_table(_table(rng, 300, 10, 2), str(logs / "test.parquet"))
  out = tmp_path / "out"
  schema_path = str(out / "schema.json")
  with flagsaver.flagsaver(
    logs=str(logs / "train.parquet"),
    log_actions=["install=did_install", "purchase=did_purchase"],
    ad_task="campaign",
    target="goal",
    timestamp="event_time",
    log1p="auto",
    output=schema_path,
  ):
    infer_schema.main(["infer_schema"])
  schema = schema_lib.Schema.load(schema_path)
  assert schema.actions == ACTIONS
  (tags,) = schema.multivalued_features
  assert tags.name == "interests" and tags.max_values == 3
  assert schema.columns.target_names and schema.columns.timestamp_unit == "s"
  assert [f.transform for f in schema.dense_features if f.name == "spend"] == ["log1p"]

  with flagsaver.flagsaver(logs=str(logs / "*.parquet"), schema=schema_path):
    validate_logs.main(["validate_logs"])
  stats = str(out / "stats.parquet")
  with flagsaver.flagsaver(
    logs=str(logs / "train.parquet"), schema=schema_path, output=stats, as_of="daily"
  ):
    compute_stats.main(["compute_stats"])

  model_dir = str(out / "model")
  with flagsaver.flagsaver(
    schema=schema_path,
    train=str(logs / "train.parquet"),
    stats=stats,
    model_dir=model_dir,
    mask="adm",
    alpha=["1", "1"],
    hke=True,
    rank_gamma=0.9,
    expert_units=["8"],
    num_experts=2,
    tower_units=["4"],
    embedding_dim=4,
    batch_size=64,
    epochs=2,
    validation_days=2,
  ):
    train.main(["train"])
  metrics_path = str(out / "metrics.json")
  with flagsaver.flagsaver(
    model_dir=model_dir, test=str(logs / "test.parquet"), output=metrics_path
  ):
    evaluate.main(["evaluate"])
  with open(metrics_path, encoding="utf-8") as f:
    metrics = json.load(f)
  assert set(metrics["actions"]) == set(ACTIONS)
  assert 0.0 <= metrics["overall"]["auc"] <= 1.0

  export_base = str(out / "serving")
  with flagsaver.flagsaver(model_dir=model_dir, export_base=export_base, version=1):
    export_model.main(["export_model"])
  features = {
    "ad_task_id": [100, 103],
    "user": [3, 4],
    "interests": [["games", "music", ""], ["", "", ""]],  # padded to max_values with ""
    "spend": [12.5, 0.0],
    "target_action": [0, 1],
  }
  scored = _score(os.path.join(export_base, "1"), features)
  assert scored["valid"] == [True, True]
  assert all(0.0 < p < 1.0 for p in scored["cvr"])
