"""KuaiRand -> this project's logs, following the paper's public-data protocol.

The paper (sections 4.1.1 and 4.2.2, Table 3) adapts KuaiRand-Pure into "asymmetric multi-label"
data: four feedbacks (is_like, is_follow, is_comment, is_forward) play conversion actions A..D;
every short video plays an ad task whose target action is one of them drawn at random; the
train and test sets are split 8:2 by timestamp; rows whose labels are all zero are
negative-sampled and all dense features are removed. Three experiments follow: Oracle trains
on every label, Vanilla only on the target action's label, and KAML also on two other randomly
drawn feedbacks per video ("approximates the mask strategy in ADM") plus the ranking loss, without
HKE (the targets are drawn at random, so there is no distribution discrepancy to model).

How this module maps that protocol onto the project (every knob is a `ConversionConfig` field
and a flag of `pipelines/kuairand.py`):

* Actions. `actions` names feedback columns of the log (`FEEDBACK_COLUMNS`): by default the
  paper's `like` (the file's `label` column: 1 liked, 0 hated), `follow`, `comment` and
  `forward`; e.g. `click`, `long_view` or `profile_enter` may be picked instead.
* Ad tasks. A video is an ad task: `ad_task_id` is the raw video id. Each video draws a random
  order of the N actions from `SeedSequence(seed, spawn_key=(0, video_id))`, so the draw
  depends on the seed and the video id only (not on the other rows of the file): the first
  action is the video's `target_action`, and the first 1 + `extra_reported_actions` (default
  1 + 2, the paper's KAML run) are the actions the video "reports".
* Labels. `true_label_<action>` is the feedback itself (the complete labels, for Oracle);
  `label_<action>` equals it for an action the video reports and is 0 otherwise (the
  incompleteness: the advertiser did not send that conversion back). So a reported label is
  never 1 where the feedback is 0, and a row's reported set is the same as its video's.
* Experiments. Oracle is the `oracle` mask policy (true labels), Vanilla the `base` policy
  (eq. 6: the target only), KAML the `adm` policy with alpha = 1 for every action on the
  statistics of the train logs (`pipelines.compute_stats`): they count reported conversions per
  video, so a reported action with at least one reported conversion in the window trains on
  all the video's rows, and an unreported one never does (its reported labels are all 0). This
  differs from the paper's wording in one case only: a reported action with no positive in the
  window is not trained for that video (by the paper's protocol it would add only negatives).
  `kaml_tf.data.masks.default_alpha` gives these action names the fallback threshold 2, so the
  KAML run needs an explicit alpha of 1 per action. The report's `adm_alpha1_share` is the share
  of train rows ADM with alpha = 1 would train per action (the paper's Table 1 "With ADM" row).
* Split. Rows are ordered by `time_ms`; the boundary t is the time of the row at position
  round((1 - `test_fraction`) * n) in that order; train holds the rows before t, test the rows
  at or after t, so rows with the same timestamp never straddle the split and every train row
  is older than every test row. The split is made on the input rows, before negative sampling,
  so it does not depend on the sampling rate or the seed.
* Negative sampling. A row is all-zero when every selected action's feedback (true label) is 0.
  In each split exactly round(`negative_keep_rate` * count) of its all-zero rows are kept
  (rounded half up), drawn uniformly without replacement from `SeedSequence(seed,
  spawn_key=(1, split))` (0 train, 1 test); the test split is sampled too unless
  `sample_test_negatives` is False. The default rate is 1 (keep all): in this slice the
  all-zero rows are the hated videos without follow / comment / forward (19 %), the only
  negatives `like` has, so sampling them away would only inflate its positive rate.
* Features. `user_id` and `video_id` (int64 ids 1 + rank of the raw id among the sorted
  distinct ids of the input log, 0 unused), `hour` (the time of day: the log's local
  `hourmin` // 100, 0..23) and the user features joined on `user_id` from the user features
  file: every column but `user_id` and `USER_NUMERIC_COLUMNS` is categorical and becomes an
  int64 id 1 + rank of its value among the sorted distinct values of the whole user file
  (numbers numerically, strings by code point), 0 for a missing value (an empty cell, or a
  user absent from the file when `allow_missing_users`); `USER_NUMERIC_COLUMNS` are dense
  float features log(1 + x) (heavy-tailed counts: fans reach 2 million), normalised with the
  mean and std of the train split's rows, a missing value written as that mean. A log user
  absent from the user file is an error unless `allow_missing_users`. Every sparse feature is
  vocabulary-free with `num_buckets` = its number of ids, so the embedding layer's
  `floormod(id, num_buckets)` is collision-free. The play-time columns (`PLAY_TIME_COLUMNS`)
  are dropped as the paper drops dense features; `play_time_features` keeps them as dense
  log(1 + ms) features, but they are measured after the exposure and leak the labels
  (`comment_stay_time` > 0 almost means a comment).
* Days. `day` is the number of days since the first `date` of the log (its local date), so
  the statistics job's window works: days 0..13 here; with the default split the test rows
  start at 23:39 on day 9 (2022-04-17, local time) and cover days 10..13.

What this data is not. The shared file is not KuaiRand-Pure (the paper's ~9e5 samples) but a
slice of KuaiRand-27K from which its publisher kept only the rows where the user liked or
hated the video, then 15-core filtered users and videos: 41,828 rows, 664 users, 9,359
videos, 2022-04-08..21. Most real traffic (rows with neither a like nor a hate) is absent, so
`like` is 81 % positive instead of a rare event and the other feedbacks are more frequent than
in uniform traffic (follow 0.7 %, comment 3.0 %, forward 0.8 %). Absolute AUC / LogLoss are
not comparable with the paper's Table 3; only the comparison of Oracle, Vanilla and KAML on
the same converted data is. The user features are KuaiRand-Pure's (27,285 users, said to share
ids with 27K, not independently confirmed); the video features cannot be used (their ids do
not match the 27K video ids). KuaiRand is licensed CC BY-SA 4.0 (Gao et al., CIKM 2022);
derived logs keep that license and attribution.

Output (`write_conversion`): `schema.json`, `train-*.tfrecord[.gz]`, `test-*.tfrecord[.gz]`
(rows in time order) and `conversion.json` (resolved config, files and the report: rows in /
out per split, per-action target, reporting and positive rates, negatives sampled), each
written atomically (`kaml_tf.datasets.output`).

Modules: `config` (`ConversionConfig`), `reading` (the inputs), `features` (ids, dense values,
schema), `report`; this one composes them with the generic protocol of
`kaml_tf.datasets.incomplete` (`draws`: the per-video draws, a video being a group whose
raw id is its stream key; `split`: the time split and the sampling; the writing).
"""

import time
from typing import Any, Dict, Mapping, Sequence, Tuple

from absl import logging
import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import numpy as np

from kaml_tf import schema as schema_lib
from kaml_tf.datasets import output
from kaml_tf.datasets import report as shared_report
from kaml_tf.datasets.incomplete import conversion as incomplete_conversion
from kaml_tf.datasets.incomplete import draws
from kaml_tf.datasets.incomplete import split as split_lib
from kaml_tf.datasets.incomplete.conversion import ConvertedLog
from kaml_tf.datasets.kuairand import features as features_lib
from kaml_tf.datasets.kuairand import reading
from kaml_tf.datasets.kuairand import report as report_lib
from kaml_tf.datasets.kuairand.config import DEFAULT_ACTIONS
from kaml_tf.datasets.kuairand.config import FEEDBACK_COLUMNS
from kaml_tf.datasets.kuairand.config import ConversionConfig
from kaml_tf.datasets.kuairand.config import ConversionError
from kaml_tf.datasets.kuairand.reading import PLAY_TIME_COLUMNS
from kaml_tf.datasets.kuairand.reading import USER_NUMERIC_COLUMNS
from kaml_tf.datasets.kuairand.report import format_report

# The names callers use: this module is the conversion's public face.
__all__ = [
  "ALL",
  "DEFAULT_ACTIONS",
  "FEEDBACK_COLUMNS",
  "PLAY_TIME_COLUMNS",
  "REPORT_FILE",
  "SPLITS",
  "TEST",
  "TRAIN",
  "USER_NUMERIC_COLUMNS",
  "ConversionConfig",
  "ConversionError",
  "ConvertedLog",
  "convert",
  "format_report",
  "write_conversion",
]

TRAIN = output.TRAIN
TEST = output.TEST
SPLITS = output.SPLITS
ALL = shared_report.ALL
REPORT_FILE = "conversion.json"


def convert(config: ConversionConfig) -> ConvertedLog:
  """Converts the KuaiRand log of `config` in memory (see the module docstring).

  Raises:
    ConversionError: for malformed inputs (naming file, row and column), a log user missing
      from the user features (unless `allow_missing_users`), or an empty split.
  """
  log = reading.read_log(config.log_path, config.actions, config.play_time_features)
  users = reading.read_user_features(config.user_features_path)
  truth = np.stack([log[FEEDBACK_COLUMNS[a]] for a in config.actions], axis=1)  # (n, N)
  labels = draws.label_rows(
    log[reading.VIDEO_ID], truth, config.extra_reported_actions, config.seed
  )
  split = split_lib.split_rows(
    log[reading.TIME_MS],
    truth,
    config.test_fraction,
    config.negative_keep_rate,
    config.sample_test_negatives,
    config.seed,
  )
  features = features_lib.build_features(
    log, users, config.log_path, config.play_time_features, config.allow_missing_users
  )
  moments = features_lib.dense_moments(features, split.source_rows[TRAIN])
  schema = features_lib.build_schema(config.actions, features, moments, config.embedding_dim)
  splits = {
    name: _records(config.actions, log, labels, features, moments, rows)
    for name, rows in split.source_rows.items()
  }
  return ConvertedLog(
    schema=schema,
    splits=splits,
    source_rows=split.source_rows,
    report=report_lib.build_report(config, log, users, labels, split, features),
  )


def _records(
  actions: Sequence[str],
  log: Mapping[str, np.ndarray],
  labels: draws.Labels,
  features: features_lib.Features,
  moments: Mapping[str, Tuple[float, float]],
  rows: np.ndarray,
) -> Dict[str, np.ndarray]:
  """The record columns of `rows` ((rows,) input row indices), keyed like the schema."""
  columns = {
    schema_lib.AD_TASK_ID: log[reading.VIDEO_ID][rows],
    schema_lib.TARGET_ACTION: labels.target[rows],
    schema_lib.DAY: features.day[rows],
  }
  columns.update(features_lib.feature_columns(features, rows, moments))
  for j, action in enumerate(actions):
    columns[schema_lib.LABEL_PREFIX + action] = labels.labels[rows, j]
  for j, action in enumerate(actions):
    columns[schema_lib.TRUE_LABEL_PREFIX + action] = labels.truth[rows, j]
  return columns


def write_conversion(
  config: ConversionConfig, output_dir: str, num_shards: int = 1, compression: str = ""
) -> Dict[str, Any]:
  """Converts and writes `schema.json`, train / test shards and `conversion.json`.

  Files: `<output_dir>/train-<shard>-of-<shards>.tfrecord[.gz]`, `test-...` (each split's rows in
  time order, spread over the shards in contiguous blocks), then `schema.json` and
  `conversion.json`, each written atomically.

  Args:
    config: The conversion.
    output_dir: Destination folder (created if missing).
    num_shards: Shards per split.
    compression: "" or "GZIP".

  Returns:
    The content of `conversion.json`: `config` (resolved), `output` (shard count,
    compression, schema fingerprint, file names) and `report` (rows in / out per split,
    per-action target, reporting and positive rates, negative sampling counts, the user join).

  Raises:
    ConversionError: for bad inputs (see `convert`).
    ValueError: if `num_shards` < 1 or `compression` is not "" or "GZIP".
    FileExistsError: if `output_dir` holds log shards this run would not overwrite.
  """
  output.check_destination(output_dir, num_shards, compression)
  start_time = time.time()
  converted = convert(config)
  summary = incomplete_conversion.write_converted(
    converted, config, output_dir, REPORT_FILE, num_shards, compression
  )
  logging.info(
    "converted %s into %s in %.1f s\n%s",
    config.log_path,
    output_dir,
    time.time() - start_time,
    format_report(converted.report),
  )
  return summary
