import pytest

from kaml_tf import configs
from kaml_tf.daily import config
from kaml_tf.training import config as config_lib

REQUIRED = dict(day=3, logs_root="/l", models_root="/m", exports_root="/e")


@pytest.mark.parametrize(
  "field,value",
  [("day", -1), ("train_days", 0), ("label_delay_days", -1), ("auc_tolerance", -0.1)],
)
def test_invalid_values_name_their_flag(field, value):
  with pytest.raises(configs.ConfigError) as e:
    config.DailyConfig(**{**REQUIRED, field: value})
  assert e.value.flag == {"day": "run_day", "train_days": "training_days"}.get(field, field)


def test_warm_start_comes_from_production_only():
  with pytest.raises(configs.ConfigError) as e:
    config.DailyConfig(**REQUIRED, optim=config_lib.OptimConfig(warm_start_from="/x"))
  assert e.value.flag == "warm_start_from"
