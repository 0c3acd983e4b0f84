"""Search space: which knobs a run searches, base values first, points back to configs."""

import dataclasses

import pytest

from kaml_tf import schema as schema_lib
from kaml_tf.models import config as model_config_lib
from kaml_tf.training import config as config_lib
from kaml_tf.tuning import search_space


@pytest.fixture(scope="module")
def schema(small_logs):
  return schema_lib.Schema.load(small_logs["schema"])


def _run(small_logs, mask="adm", gamma=0.9, **data):
  return config_lib.RunConfig(
    data=config_lib.DataConfig(
      schema_path=small_logs["schema"],
      train_files="x",
      stats_path="s.parquet",
      mask_policy=mask,
      **data,
    ),
    model=model_config_lib.ModelConfig(backbone="mmoe", hke=mask == "adm"),
    loss=config_lib.LossConfig(gamma=gamma),
  )


SPACE = search_space.SearchSpace(
  learning_rate=(5e-4, 1e-3),
  rank_gamma=(0.8, 0.9),
  dropout=(0.0, 0.1),
  embedding_l2=(),
  alpha=(1, 2),
  extended_weight=(0.0, 1.0),
)


def test_baseline_searches_only_what_it_has(small_logs, schema):
  coords = search_space.coordinates(SPACE, _run(small_logs, mask="base", gamma=1.0), schema)
  assert [(c.name, c.values) for c in coords] == [
    ("learning_rate", (1e-3, 5e-4)),
    ("dropout", (0.0, 0.1)),
  ]


def test_kaml_searches_gamma_then_each_action_weight_and_threshold(small_logs, schema):
  coords = search_space.coordinates(SPACE, _run(small_logs), schema)
  names = [c.name for c in coords]
  assert names[:3] == ["learning_rate", "dropout", "rank_gamma"]
  assert names[3:] == [n for a in schema.actions for n in (f"extended_weight/{a}", f"alpha/{a}")]
  by_name = {c.name: c for c in coords}
  assert by_name["rank_gamma"].values == (0.9, 0.8)
  assert by_name["extended_weight/payment"].values == (1.0, 0.0)
  # activation's default threshold is 3, so both candidates are new; the others default to 2.
  assert by_name["alpha/activation"].values == (3, 1, 2)
  assert by_name["alpha/payment"].values == (2, 1)
  assert by_name["alpha/payment"].unless_zero == "extended_weight/payment"


def test_apply_of_the_base_point_resolves_defaults_only(small_logs, schema):
  run = _run(small_logs)
  applied = search_space.apply(search_space.base_point(run, schema), run, schema)
  n = schema.num_actions
  assert applied.loss.extended_weight == (1.0,) * n
  assert applied.data.alpha == (3, 2, 2, 2, 2)
  assert dataclasses.replace(applied, data=run.data, loss=run.loss) == run


def test_apply_sets_each_knob(small_logs, schema):
  run = _run(small_logs)
  point = search_space.base_point(run, schema)
  point.update(
    {
      "learning_rate": 2e-3,
      "dropout": 0.2,
      "embedding_l2": 1e-5,
      "rank_gamma": 0.8,
      "extended_weight/retention": 0.0,
      "alpha/payment": 7,
    }
  )
  applied = search_space.apply(point, run, schema)
  retention, payment = schema.actions.index("retention"), schema.actions.index("payment")
  assert applied.optim.learning_rate == 2e-3 and applied.loss.gamma == 0.8
  assert applied.model.dropout == 0.2 and applied.model.embedding_l2 == 1e-5
  assert applied.loss.extended_weight[retention] == 0.0
  assert applied.data.alpha[payment] == 7


def test_a_baseline_keeps_its_mask_settings(small_logs, schema):
  run = _run(small_logs, mask="base", gamma=1.0)
  applied = search_space.apply(search_space.base_point(run, schema), run, schema)
  assert applied == run


@pytest.mark.parametrize(
  "field, values, message",
  [
    ("learning_rate", (0.0,), "tune_learning_rate: values must be > 0"),
    ("rank_gamma", (1.5,), "tune_rank_gamma: values must be in [0, 1]"),
    ("dropout", (1.0,), "tune_dropout: values must be in [0, 1)"),
    ("alpha", (0,), "tune_alpha: values must be integers >= 1"),
    ("extended_weight", (-0.1,), "tune_extended_weight: values must be in [0, 1]"),
  ],
)
def test_bad_candidates_name_the_flag(field, values, message):
  with pytest.raises(
    config_lib.ConfigError,
    match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(").replace(")", r"\)"),
  ):
    search_space.SearchSpace(**{field: values})
