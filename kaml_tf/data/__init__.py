"""The ADM data path: ad-task conversion statistics, mask policies and the tf.data pipeline.

Modules: `stats` (the statistics job, static or daily, its Parquet file and the in-graph join),
`point_in_time` (stats modes and the (ad task, day) join of daily statistics), `masks` (the
base / ADM / all / oracle training masks and the HKE indicator), `dataset` (the
`(features, targets)` input pipeline), `mask_report` (the paper's Table 1 for any logs) and
`days` (the days logs cover, and the hold-out of the last ones for validation). The log
formats themselves live in `kaml_tf.logs`.
"""
