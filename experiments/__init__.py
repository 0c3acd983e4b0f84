"""Experiment suites: the paper's tables, run K times with different seeds and summarised.

`suites` defines which configurations each suite trains (Table 2 `baselines`, Table 4
`ablation`, Table 3's design on simulated data `oracle` and on KuaiRand `kuairand`) with every
hyper-parameter explicit; `protocol` how the runs are trained and selected (by default each
configuration's settings chosen on validation with the same budget, early stopping,
calibration, point-in-time statistics); `runner` trains and evaluates every (configuration,
seed) run resumably (`ExperimentConfig`, `run_experiment`); `report` aggregates the runs into
`results.json`, the paper-style `results.md` tables and PNG plots, with the bootstrap
intervals over test rows of `intervals`.

Not part of the installed `kaml_tf` library: it runs from a checkout, next to `pipelines/`.
"""
