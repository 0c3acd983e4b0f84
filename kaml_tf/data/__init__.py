"""The ADM data path: ad-task conversion statistics, mask policies and the tf.data pipeline.

Modules: `stats` (the statistics job, static or daily, its Parquet file and the in-graph join),
`point_in_time` (stats modes and the (ad task, day) join of daily statistics), `masks` (the
base / ADM / all / oracle training masks and the HKE indicator), `mask_report` (the paper's
Table 1 for any logs) and `days` (the days logs cover, and the hold-out of the last ones for
validation).

The input pipeline, `(features, targets)` batches from logs: `dataset` (the entry points,
`make_dataset` and `DatasetFactory`, composing the stages) and one module per stage:
`sources` (file listing, sharding per input pipeline, first-record checks, the TFRecord and
Parquet readers), `bad_records` (dropping the records --skip_bad_records found), `shuffling`
(file order and permuted windows), `parsing` (parse spec and in-graph value checks),
`day_filter` (the rows of some days), `joining` (statistics join, masks and targets) and
`counters` (`InputCounters`). The log formats themselves live in `kaml_tf.logs`.
"""
