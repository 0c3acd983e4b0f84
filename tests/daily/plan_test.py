import pytest

from kaml_tf.daily import errors
from kaml_tf.daily import plan


def test_without_delay_the_run_day_is_evaluated_and_the_days_before_train():
  p = plan.plan_day(5, label_delay_days=0, train_days=3, available=range(6))
  assert p == plan.DayPlan(run_day=5, eval_day=5, train_days=(2, 3, 4), stats_end_day=4)


def test_delay_moves_evaluation_training_and_statistics_back():
  # L = 2: days 4 and 5 are not final; day 3 is evaluated, days 1-2 train, counts end at 2.
  p = plan.plan_day(5, label_delay_days=2, train_days=2, available=range(6))
  assert p == plan.DayPlan(run_day=5, eval_day=3, train_days=(1, 2), stats_end_day=2)


def test_missing_days_are_skipped():
  p = plan.plan_day(5, label_delay_days=0, train_days=3, available=[0, 2, 4, 5])
  assert p.train_days == (2, 4)


def test_nothing_to_train_on_is_bad_input():
  with pytest.raises(errors.InputError, match="no logs to train on"):
    plan.plan_day(0, label_delay_days=0, train_days=3, available=[0])


def test_an_evaluation_day_without_logs_is_bad_input():
  with pytest.raises(errors.InputError, match="evaluates on day 3, which has no logs"):
    plan.plan_day(5, label_delay_days=2, train_days=3, available=[0, 1, 2, 4, 5])
