#!/usr/bin/env bash
# Issue 14's first measurement under the fair protocol: base MMoE vs KAML, every run
# early-stopped on the last train day (validation), calibrated on it, scored on the test day.
# KAML with static statistics (window ending before the validation day) and with
# point-in-time statistics, each at extended weight w in {1, 0.5, 0.25}. Usage (repository root):
#   docs/results/fair_protocol/run.sh OUT_DIR train SEED...   # train these seeds
#   docs/results/fair_protocol/run.sh OUT_DIR compare         # score every trained seed
# About 30 minutes per seed on 2 cores; seeds may run as parallel processes. Every step
# resumes when rerun.
set -euo pipefail
OUT=${1:?usage: run.sh OUT_DIR train SEED... | run.sh OUT_DIR compare}
STEP=${2:?usage: run.sh OUT_DIR train SEED... | run.sh OUT_DIR compare}
shift 2
PY=${PY:-.venv/bin/python}
export TF_USE_LEGACY_KERAS=1 TF_CPP_MIN_LOG_LEVEL=2
D=$OUT/data
if [ ! -f "$D/pq/test-00000-of-00001.parquet" ]; then
  # A fresh seed and size, used nowhere else in the repository.
  $PY -m pipelines.simulate --num_rows=1000000 --seed=20261202 --output_dir="$D"
  for split in train test; do
    $PY -m pipelines.convert_logs --schema="$D/schema.json" \
        --logs="$D/$split-00000-of-00001.tfrecord" --output_prefix="$D/pq/$split"
  done
fi
TRAIN=$D/pq/train-00000-of-00001.parquet
TEST=$D/pq/test-00000-of-00001.parquet
# Static statistics: one window ending on day 26, the last training day (day 27 is the
# validation day, day 28 the test day). Point-in-time: counts of days d-28..d-1 for each day d.
[ -f "$D/stats_static.parquet" ] || $PY -m pipelines.compute_stats --schema="$D/schema.json" \
    --logs="$TRAIN" --end_day=26 --output="$D/stats_static.parquet"
[ -f "$D/stats_daily.parquet" ] || $PY -m pipelines.compute_stats --schema="$D/schema.json" \
    --logs="$TRAIN" --as_of=daily --output="$D/stats_daily.parquet"

# Validation twice an epoch (187 steps of 5000 rows); stop after one epoch without a better
# per-target AUC; at most 8 epochs.
COMMON=(--schema="$D/schema.json" --train="$TRAIN" --validation_days=1 --epochs=8
        --eval_every_steps=94 --early_stopping_patience=2 --calibrate)
KAML=(--mask=adm --hke --rank_gamma=0.9)
run() {  # run NAME SEED FLAGS...
  local name=$1 seed=$2; shift 2
  $PY -m pipelines.train "${COMMON[@]}" --seed="$seed" --model_dir="$OUT/runs/$name/seed-$seed" "$@"
}
if [ "$STEP" = train ]; then
  for seed in "$@"; do
    run mmoe "$seed" --mask=base
    for w in 1 0.5 0.25; do
      # w = 1 is the default (the paper's ADM); the static w = 1 runs were first made without
      # the flag, and a rerun must repeat a run's flags exactly to resume it.
      weight=(); [ "$w" = 1 ] || weight=(--extended_weight="$w")
      run "kaml_static_w$w" "$seed" "${KAML[@]}" --stats="$D/stats_static.parquet" "${weight[@]}"
      run "kaml_pit_w$w" "$seed" "${KAML[@]}" --stats="$D/stats_daily.parquet" --extended_weight="$w"
    done
  done
  exit 0
fi
RUNS=mmoe=$OUT/runs/mmoe/seed-*
for w in 1 0.5 0.25; do
  RUNS+=",kaml_static_w$w=$OUT/runs/kaml_static_w$w/seed-*,kaml_pit_w$w=$OUT/runs/kaml_pit_w$w/seed-*"
done
$PY -m pipelines.compare --test="$TEST" --reference=mmoe --runs="$RUNS" \
    --output_dir="$OUT/compare" --resamples=1000
