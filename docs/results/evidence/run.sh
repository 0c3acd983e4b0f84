#!/bin/bash
# Reruns issue 15's evidence into ROOT (docs/results/evidence/README.md), from the repository
# root: bash docs/results/evidence/run.sh ROOT. About 3 hours on 2 cores with the three
# simulated experiments in parallel (as they were run); each step resumes if killed.
set -euo pipefail
root=$1
py=${PYTHON:-.venv/bin/python}
mkdir -p "$root"

# 300,000 rows over 28 train days (day 27 validates), and a 3.6M-row test day: at the
# simulator's rates that is >= 300 target positives for every action (retention: 329). The
# generative model is the default one; the test split's size does not change the train split.
$py -m pipelines.simulate --output_dir="$root/sim" --num_rows=300000 --seed=20261203 \
  --test_rows_per_day=3600000 --num_shards=8
for split in train test; do
  $py -m pipelines.convert_logs --logs="$root/sim/$split-*" --schema="$root/sim/schema.json" \
    --output_prefix="$root/data/$split" --to_format=parquet --num_shards=4
done

# The validation protocol (the default): 3 trials per configuration, the same for all, then
# 3 seeds; early stopping on day 27 (evaluated every 70 steps, half an epoch), calibration.
experiment() {
  suite=$1; out=$2; shift 2
  $py -m pipelines.experiment --suite="$suite" --data_dir="$root/data" --output_dir="$root/$out" \
    --repeats=3 --seed=0 --epochs=6 --batch_size=2000 --learning_rate=0.001 \
    --trials_per_config=3 --protocol_eval_every_steps=70 --protocol_patience=2 \
    --bootstrap_resamples=1000 --interval_method=normal "$@"
}
experiment ablation ablation &
experiment baselines baselines --configs=PLE,TAML,PLE+KAML,TAML+KAML &
experiment ablation lever_adagrad --configs=MMoE,KAML --embedding_optimizer=adagrad \
  --embedding_learning_rate=0.05 &
wait
# A second look at the lever, started once the first had hit its 6-epoch cap: a larger
# embedding learning rate and cap, the suite's settings (1 trial) for both configurations.
experiment ablation lever_adagrad_lr02 --configs=MMoE,KAML --embedding_optimizer=adagrad \
  --embedding_learning_rate=0.2 --epochs=10 --trials_per_config=1

# KuaiRand (Table 3): the slice in data/kuairand/, converted again per seed; 4 trials.
$py -m pipelines.experiment --suite=kuairand --output_dir="$root/kuairand" --repeats=5 --seed=0 \
  --epochs=8 --batch_size=1000 --learning_rate=0.001 --trials_per_config=4 \
  --min_test_positives=0

PYTHONPATH=. $py docs/results/evidence/summarize.py "$root" > "$root/tables.md"
