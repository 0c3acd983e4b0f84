"""The evaluator on a trained tiny model: predictions, metrics.json shape, oracle, NaN."""

import json

import numpy as np
import pytest

from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.evaluation import evaluator
from kaml_tf.evaluation import metrics as metrics_lib
from kaml_tf.models import config as model_config_lib
from kaml_tf.training import config as config_lib
from kaml_tf.training import trained_model
from kaml_tf.training import trainer


@pytest.fixture(scope="module")
def model_dir(small_logs, tmp_path_factory):
  directory = str(tmp_path_factory.mktemp("eval") / "kaml")
  run_config = config_lib.RunConfig(
    data=config_lib.DataConfig(
      schema_path=small_logs["schema"],
      train_files=small_logs["train"],
      stats_path=small_logs["stats"],
      mask_policy="adm",
    ),
    model=model_config_lib.ModelConfig(
      hke=True,
      expert_units=(8,),
      num_experts=2,
      tower_units=(4,),
      embedding_dim=4,
      hke_sub_tower_units=(4,),
      hke_final_units=(),
    ),
    loss=config_lib.LossConfig(gamma=0.9),
    optim=config_lib.OptimConfig(batch_size=128),
  )
  trainer.train(run_config, directory, verbose=0)
  return directory


def test_predictions_follow_file_order_and_match_the_network(small_logs, model_dir):
  model = trained_model.load(model_dir)
  predictions = evaluator.predict(model, small_logs["test"], batch_size=7)
  rows = records.read_columns(small_logs["test"], model.schema)
  np.testing.assert_array_equal(predictions.target_action, rows["target_action"])
  np.testing.assert_array_equal(predictions.labels[:, 2], rows["label_registration"])
  np.testing.assert_array_equal(predictions.true_labels[:, 4], rows["true_label_retention"])
  features = {k: rows[k] for k in model.schema.feature_names}
  features[schema_lib.HKE_INDICATOR] = np.ones((len(rows["day"]), 5), np.float32)
  expected = 1 / (1 + np.exp(-model.network(features).numpy()))
  np.testing.assert_allclose(predictions.probabilities, expected, rtol=1e-5, atol=1e-6)


def test_metrics_equal_per_target_metrics_of_the_predictions(small_logs, model_dir):
  model = trained_model.load(model_dir)
  result = evaluator.evaluate(model, small_logs["test"], oracle=True)
  p = evaluator.predict(model, small_logs["test"])
  expected = metrics_lib.per_target_metrics(
    p.probabilities, p.labels, p.target_action, model.schema.actions
  )
  assert result["overall"] == expected["overall"]
  assert result["skipped_other"] == int(np.sum(p.target_action == -1))
  assert result["oracle"]["overall"]["count"] == p.labels.size


def test_write_metrics_is_strict_json_with_null_for_undefined(tmp_path):
  path = str(tmp_path / "metrics.json")
  evaluator.write_metrics(path, {"overall": {"auc": float("nan"), "count": 3}})
  text = open(path).read()
  assert "NaN" not in text
  assert json.loads(text) == {"overall": {"auc": None, "count": 3}}


def test_oracle_without_true_labels_is_a_clear_error(small_logs, model_dir, monkeypatch):
  model = trained_model.load(model_dir)
  monkeypatch.setattr(
    model,
    "schema",
    schema_lib.Schema(
      actions=model.schema.actions,
      sparse_features=model.schema.sparse_features,
      dense_features=model.schema.dense_features,
      has_true_labels=False,
    ),
  )
  with pytest.raises(ValueError, match="--oracle needs logs with true labels"):
    evaluator.evaluate(model, small_logs["test"], oracle=True)
