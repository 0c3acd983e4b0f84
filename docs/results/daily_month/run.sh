#!/usr/bin/env bash
# The committed month (docs/results/daily_month/month.md): 28 simulated days of 20,000 rows,
# a drift on day 14, day 21's labels shuffled, the loop on days 7-26. One epoch: on this
# simulation the fair protocol's validation picked the end of epoch 1 (docs/results/fair_protocol).
# Seven training days: pipelines.daily's default.
# Usage: run.sh OUT   (OUT: a scratch folder; month.json and month.md land in it)
set -euo pipefail
cd "$(dirname "$0")/../../.."
OUT=${1:?usage: run.sh OUT}
exec .venv/bin/python -m pipelines.daily_month --output_dir="$OUT" \
  --month_days=28 --rows_per_day=20000 --first_run_day=7 --corrupt_day=21 \
  --num_users=20000 --num_ad_tasks=400 --seed=20261203 \
  --drift_day=14 --new_task_share=0.2 --report_switch_share=0.2 \
  --training_days=7 --window_days=7 --batch_size=1024 --epochs=1 --learning_rate=0.001
