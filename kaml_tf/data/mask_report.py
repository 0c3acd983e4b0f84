"""The paper's Table 1 for any logs: the share of samples each action trains on, base vs ADM.

For action j, the `base` share is the fraction of all samples whose target is j (eq. 6); the
`adm` share is the fraction of all samples whose ADM mask for j is 1 (eq. 8). The `Other`
column is the fraction of samples targeting "Other", which the base mask never uses; the
report also gives the fraction of those that ADM brings back for at least one action.

The masks are computed by the same functions the training pipeline uses
(`stats.WindowCountsLookup` and `masks.training_mask`), on the ad task id and target of every
record, streamed in batches.
"""

import dataclasses
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import numpy as np
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.data import masks as masks_lib
from kaml_tf.data import stats as stats_lib
from kaml_tf.data import validation

OTHER = "Other"


@dataclasses.dataclass(frozen=True)
class MaskReport:
  """Sample counts behind Table 1.

  Attributes:
    actions: Action names.
    samples: Records read.
    base_samples: (N,) samples whose target is action j.
    other_samples: Samples targeting "Other".
    adm_samples: (N,) samples whose ADM mask for action j is 1.
    other_adm_samples: "Other" samples with an ADM mask of 1 for at least one action.
    unknown_ad_task_samples: Samples whose ad task is missing from the statistics.
    alpha: The ADM thresholds used.
    window_start: First day of the statistics window.
    window_end: Last day of the statistics window.
    stats_source: Where the statistics came from.
    skipped_bad_records: What `skip_bad_records` skipped (`BadRecords.to_dict()`), or None.
  """
  actions: Tuple[str, ...]
  samples: int
  base_samples: Tuple[int, ...]
  other_samples: int
  adm_samples: Tuple[int, ...]
  other_adm_samples: int
  unknown_ad_task_samples: int
  alpha: Tuple[int, ...]
  window_start: int
  window_end: int
  stats_source: str
  skipped_bad_records: Optional[Dict[str, Any]] = None

  def _share(self, count: int) -> float:
    return count / self.samples if self.samples else 0.0

  @property
  def base_shares(self) -> Tuple[float, ...]:
    return tuple(self._share(c) for c in self.base_samples)

  @property
  def adm_shares(self) -> Tuple[float, ...]:
    return tuple(self._share(c) for c in self.adm_samples)

  @property
  def other_share(self) -> float:
    return self._share(self.other_samples)

  def to_dict(self) -> Dict[str, Any]:
    """JSON-ready form: counts and shares (fractions in [0, 1])."""
    return {
        "actions": list(self.actions),
        "samples": self.samples,
        "base": {"samples": dict(zip(self.actions, self.base_samples)),
                 "share": dict(zip(self.actions, self.base_shares)),
                 "other_samples": self.other_samples, "other_share": self.other_share},
        "adm": {"samples": dict(zip(self.actions, self.adm_samples)),
                "share": dict(zip(self.actions, self.adm_shares)),
                "other_samples_used": self.other_adm_samples,
                "other_share_of_other_used": (self.other_adm_samples / self.other_samples
                                              if self.other_samples else 0.0)},
        "unknown_ad_task_samples": self.unknown_ad_task_samples,
        "alpha": dict(zip(self.actions, self.alpha)),
        "window": {"start_day": self.window_start, "end_day": self.window_end},
        "stats": self.stats_source,
    } | ({"skipped_bad_records": self.skipped_bad_records}
         if self.skipped_bad_records is not None else {})

  def to_markdown(self) -> str:
    """Table 1 as a markdown table, followed by the settings and the side counts."""
    pct = lambda x: f"{100.0 * x:.2f}%"  # noqa: E731
    header = ["Mask strategy"] + list(self.actions) + [OTHER]
    rows = [["Base"] + [pct(s) for s in self.base_shares] + [pct(self.other_share)],
            ["With ADM"] + [pct(s) for s in self.adm_shares] + ["-"]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    used = (self.other_adm_samples / self.other_samples) if self.other_samples else 0.0
    lines += [
        "",
        f"Samples: {self.samples}. Statistics window: days {self.window_start}-"
        f"{self.window_end} ({self.stats_source}). "
        f"Alpha: {', '.join(f'{a}={t}' for a, t in zip(self.actions, self.alpha))}.",
        f"'Other'-target samples used by ADM for at least one action: {self.other_adm_samples} "
        f"({pct(used)} of them). Samples of ad tasks missing from the statistics (base mask): "
        f"{self.unknown_ad_task_samples}.",
    ]
    return "\n".join(lines) + "\n"


def compute_mask_report(files: Union[str, Sequence[str]], schema: schema_lib.Schema,
                        stats: stats_lib.ConversionStats,
                        alpha: Optional[Sequence[int]] = None, batch_size: int = 65536,
                        progress: Optional[Callable[[int], None]] = None,
                        skip_bad_records: bool = False) -> MaskReport:
  """Streams the logs and counts, per action, the samples the base and ADM masks use.

  Args:
    files: Logs (glob, comma-separated globs or list; TFRecord, `.gz` or `.parquet`).
    schema: The logs' schema.
    stats: Ad-task statistics computed with `schema`.
    alpha: ADM thresholds, one per action (None: `masks.default_alpha`).
    batch_size: Records per read batch.
    progress: Called with the number of records read so far after every batch.
    skip_bad_records: Skip and count malformed records instead of failing on the first.

  Raises:
    StatsError: when `stats` were computed with another schema.
    LogError: naming file, record and field for a malformed record (e.g. a target outside
      [-1, N)), unless `skip_bad_records`.
  """
  stats.check_schema(schema)
  n = schema.num_actions
  adm = masks_lib.MaskConfig(masks_lib.ADM, alpha).resolve(schema)
  lookup = stats_lib.WindowCountsLookup(stats)
  fields = {schema_lib.AD_TASK_ID: tf.int64, schema_lib.TARGET_ACTION: tf.int64}
  samples = other = other_used = unknown = 0
  base_counts = np.zeros([n], np.int64)
  adm_counts = np.zeros([n], np.int64)
  bad = validation.BadRecords() if skip_bad_records else None
  for _, _, batch in stats_lib.iter_log_batches(files, fields, batch_size, schema, bad):
    target = batch[schema_lib.TARGET_ACTION]
    counts, known = lookup(tf.constant(batch[schema_lib.AD_TASK_ID]))
    mask = masks_lib.training_mask(adm, tf.constant(target), n, counts, known).numpy()
    is_other = target == schema_lib.OTHER_TARGET
    samples += len(target)
    other += int(is_other.sum())
    other_used += int((mask[is_other].sum(axis=1) > 0).sum())
    unknown += int(len(target) - known.numpy().sum())
    base_counts += np.bincount(target[~is_other], minlength=n)[:n]
    adm_counts += mask.sum(axis=0).astype(np.int64)
    if progress is not None:
      progress(samples)
  if bad is not None:
    bad.log("mask_report")
  return MaskReport(
      actions=tuple(schema.actions), samples=samples,
      base_samples=tuple(int(c) for c in base_counts), other_samples=other,
      adm_samples=tuple(int(c) for c in adm_counts), other_adm_samples=other_used,
      unknown_ad_task_samples=unknown, alpha=adm.alpha, window_start=stats.window_start,
      window_end=stats.window_end, stats_source=stats.source,
      skipped_bad_records=bad.to_dict() if bad is not None else None)
