"""Experiment suites: the paper's tables, run K times with different seeds and summarised.

`suites` defines which configurations each suite trains (Table 2 `baselines`, Table 4
`ablation`, Table 3's design on simulated data `oracle` and on KuaiRand `kuairand`) with every
hyper-parameter explicit; `runner` trains and evaluates every (configuration, seed) run
resumably (`ExperimentConfig`, `run_experiment`); `report` aggregates the runs into
`results.json`, the paper-style `results.md` tables and PNG plots.

Not part of the installed `kaml_tf` library: it runs from a checkout, next to `pipelines/`.
"""
