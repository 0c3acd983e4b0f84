"""Measurement code behind `python -m pipelines.benchmark` (figures, never pass/fail tests).

One module per section (`sections.SECTIONS`: `input_pipeline` for `input`, `input_stages`,
`train_step`, `determinism`, `train_throughput`, `peer`, `stats`, `serving`), each with
`run(config) -> figures` and `summary(figures) -> lines`; `config` holds the settings,
`inputs` loads what the sections read, `throughput` and `memory` are the timers they share.
Not part of the installed `kaml_tf` library: it runs from a checkout, next to `pipelines/`.
"""
