"""Parsed columns -> `(features, targets)`: the statistics join, the masks and the counts.

`StatsJoin` is the pipeline's last stage. Per batch it

1. joins the ad-task statistics in-graph (`stats.WindowCountsLookup`: a `StaticHashTable`
   from ad task id to a row of the counts matrix, then `tf.gather`; for daily statistics
   `point_in_time.DailyCountsLookup`, keyed on (ad task id, day));
2. computes the training mask of the policy (`masks.training_mask`) and the target indicator;
3. counts the batch in an `InputCounters`: an ad task missing from static statistics falls
   back to the base mask and is counted as unknown; under point-in-time statistics a row
   whose ad task has no statistics for its day (no click in the T days before) is a cold
   start: base mask, counted as `cold_start_samples`.

Each element it yields is `(features, targets)`:

* `features`: `{name: (batch,) tensor}` for every schema feature (`(batch, max_values)` padded
  ids for a multi-valued one), plus `"hke_indicator"`
  (batch, N) float32 = one_hot(target_action) (all zeros for "Other");
* `targets`: `"labels"`, `"mask"`, `"is_target"`, each (batch, N) float32, plus
  `"true_labels"` (batch, N) float32 when the schema has true labels. Under the `oracle`
  policy `"labels"` are the true labels and the mask is all ones.
"""

from typing import Dict, Optional, Sequence, Tuple

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.data import counters as counters_lib
from kaml_tf.data import masks as masks_lib
from kaml_tf.data import point_in_time
from kaml_tf.data import stats as stats_lib

HKE_INDICATOR = schema_lib.HKE_INDICATOR
LABELS = "labels"
MASK = "mask"
IS_TARGET = "is_target"
TRUE_LABELS = "true_labels"

Columns = Dict[str, tf.Tensor]
Features = Dict[str, tf.Tensor]
Targets = Dict[str, tf.Tensor]


def _stack(columns: Columns, keys: Sequence[str]) -> tf.Tensor:
  """(batch, len(keys)) float32 from int64 (batch,) label columns."""
  return tf.cast(tf.stack([columns[k] for k in keys], axis=1), tf.float32)


class StatsJoin:
  """`{field: (batch,)}` parsed columns -> `(features, targets)`, counted.

  Args:
    schema: The logs' schema.
    stats: Ad-task statistics, static or daily; None when the policy needs none.
    mask: The resolved mask configuration (`MaskConfig.resolve`).
    stats_mode: The resolved stats mode (`point_in_time.resolve_stats_mode`).
    counters: Where each batch is counted.
  """

  def __init__(
    self,
    schema: schema_lib.Schema,
    stats: Optional[stats_lib.ConversionStats],
    mask: masks_lib.MaskConfig,
    stats_mode: str,
    counters: counters_lib.InputCounters,
  ):
    self._schema = schema
    self._mask = mask
    self._stats_mode = stats_mode
    self._counters = counters
    self._lookup = (
      point_in_time.counts_lookup(stats, stats_mode)
      if stats is not None and mask.needs_stats
      else None
    )

  @property
  def by_day(self) -> bool:
    """Whether the join reads each row's `day` (point-in-time statistics)."""
    return self._lookup is not None and self._stats_mode == point_in_time.POINT_IN_TIME

  def __call__(self, columns: Columns) -> Tuple[Features, Targets]:
    """Joins one batch; `columns` hold the `parsing.parse_spec` fields (with `day` if `by_day`)."""
    schema = self._schema
    n = schema.num_actions
    target = columns[schema_lib.TARGET_ACTION]
    is_target = masks_lib.target_indicator(target, n)
    batch = tf.shape(target, out_type=tf.int64)[0]
    unknown = cold_start = tf.constant(0, tf.int64)
    if self._lookup is not None:
      counts, known = self._lookup(columns[schema_lib.AD_TASK_ID], columns.get(schema_lib.DAY))
      mask = masks_lib.training_mask(self._mask, target, n, counts, known)
      missing = batch - tf.reduce_sum(tf.cast(known, tf.int64))
      if self._stats_mode == point_in_time.POINT_IN_TIME:
        cold_start = missing
      else:
        unknown = missing
    else:
      mask = masks_lib.training_mask(self._mask, target, n)
    labels = _stack(columns, schema.label_keys)
    targets = {IS_TARGET: is_target}
    if schema.has_true_labels:
      targets[TRUE_LABELS] = _stack(columns, schema.true_label_keys)
    targets[LABELS] = targets[TRUE_LABELS] if self._mask.uses_true_labels else labels
    with tf.control_dependencies(self._counters.add(unknown, batch, cold_start)):
      targets[MASK] = tf.identity(mask)
    features = {name: columns[name] for name in schema.feature_names}
    features[HKE_INDICATOR] = is_target
    return features, targets
