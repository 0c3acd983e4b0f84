"""Log formats and the checks every reader applies to them.

Modules: `records` (TFRecord logs of `tf.train.Example`, the vectorised encoder and the sharded
atomic writer), `parquet` (the columnar log format), `conversion` (TFRecord <-> Parquet),
`validation` (malformed records, named by file, record and field), `check` (the
pre-training data check of `pipelines.validate_logs`) and `multivalued` (lists of ids as read,
and the padded `(n, max_values)` columns of multi-valued features).
"""
