"""The flags of `pipelines.daily_month` (the month itself: tests/experiments/month_test.py)."""

from absl import app
from absl import flags
from absl.testing import flagsaver
import pytest

from pipelines import daily_month


@pytest.fixture(autouse=True)
def parsed_flags():
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


def test_flags_become_the_month_the_world_and_the_loop(tmp_path):
  values = dict(
    output_dir=str(tmp_path),
    month_days=10,
    rows_per_day=300,
    first_run_day=4,
    corrupt_day=6,
    drift_day=5,
    new_task_share=0.1,
    num_users=500,
    training_days=2,
    auc_tolerance=0.01,
    num_experts=3,
    epochs=1,
  )
  with flagsaver.flagsaver(**values):
    month, world, daily = daily_month.configs_from_flags()
  assert (month.output_dir, month.month_days, month.first_run_day) == (str(tmp_path), 10, 4)
  resized = month.simulation(world)
  assert (resized.num_rows, resized.train_days, resized.test_days) == (3000, 9, 1)
  assert (world.drift_day, world.new_task_share, world.num_users) == (5, 0.1, 500)
  assert (daily.train_days, daily.auc_tolerance) == (2, 0.01)
  assert (daily.model.num_experts, daily.optim.epochs) == (3, 1)


def test_a_run_day_the_month_cannot_score_names_the_flag(tmp_path):
  with flagsaver.flagsaver(output_dir=str(tmp_path), month_days=5, first_run_day=4):
    with pytest.raises(app.UsageError, match="--first_run_day: must be in"):
      daily_month.configs_from_flags()
