"""The paper's Table 1 for any logs: the share of samples each action trains on, base vs ADM.

For action j, the `base` share is the fraction of all samples whose target is j (eq. 6); the
`adm` share is the fraction of all samples whose ADM mask for j is 1 (eq. 8). The `Other`
column is the fraction of samples targeting "Other", which the base mask never uses; the
report also gives the fraction of those that ADM brings back for at least one action.

Extended cells: the (sample, action j) cells that ADM adds, i.e. mask 1 where j is not the
sample's target. Per action the report gives their share of the samples, P(mask | y = 1)
among non-target cells (how many reported positives of action j outside its target traffic
ADM trains on) and their positive rate, all with the REPORTED labels `label_<action>` (what
training sees), never the simulator's true labels. Under static statistics a reported
conversion counts towards its own row's mask, which inflates both; point-in-time statistics
(`kaml_tf.data.point_in_time`) remove that.

The masks are computed by the same functions the training pipeline uses
(`point_in_time.counts_lookup` and `masks.training_mask`), on the ad task id, day, target and
labels of every record, streamed in batches.
"""

import dataclasses
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import numpy as np
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.data import masks as masks_lib
from kaml_tf.data import point_in_time
from kaml_tf.data import stats as stats_lib
from kaml_tf.logs import validation

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
    unknown_ad_task_samples: Static statistics: samples whose ad task is missing from them.
    alpha: The ADM thresholds used.
    window_start: First day of the statistics window (daily: first day covered).
    window_end: Last day of the statistics window (daily: last day covered).
    stats_source: Where the statistics came from.
    skipped_bad_records: What `skip_bad_records` skipped (`BadRecords.to_dict()`), or None.
    stats_mode: `point_in_time.STATIC` or `POINT_IN_TIME`.
    window_days: T, the days each statistics row counts.
    cold_start_samples: Point-in-time statistics: samples whose ad task has no statistics
      for their day (base mask).
    extended_samples: (N,) extended cells of action j: ADM mask 1, target not j.
    extended_positives: (N,) extended cells of action j with reported label 1.
    nontarget_positives: (N,) samples not targeting j with reported label 1 for j.
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
  stats_mode: str = point_in_time.STATIC
  window_days: int = 0
  cold_start_samples: int = 0
  extended_samples: Tuple[int, ...] = ()
  extended_positives: Tuple[int, ...] = ()
  nontarget_positives: Tuple[int, ...] = ()

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

  @property
  def extended_shares(self) -> Tuple[float, ...]:
    """Per action: extended cells / samples."""
    return tuple(self._share(c) for c in self.extended_samples)

  @property
  def extended_positive_rates(self) -> Tuple[float, ...]:
    """Per action: reported positives among extended cells (0 without extended cells)."""
    return tuple(
      p / c if c else 0.0 for p, c in zip(self.extended_positives, self.extended_samples)
    )

  @property
  def extended_recall(self) -> Tuple[float, ...]:
    """Per action: P(mask | y = 1) over non-target cells (0 without such positives)."""
    return tuple(
      p / c if c else 0.0 for p, c in zip(self.extended_positives, self.nontarget_positives)
    )

  def _extended_dict(self) -> Dict[str, Any]:
    per_action = lambda values: dict(zip(self.actions, values))  # noqa: E731
    return {
      "labels": "reported (label_<action>)",
      "samples": per_action(self.extended_samples),
      "share": per_action(self.extended_shares),
      "positives": per_action(self.extended_positives),
      "positive_rate": per_action(self.extended_positive_rates),
      "nontarget_positives": per_action(self.nontarget_positives),
      "p_mask_given_positive": per_action(self.extended_recall),
    }

  def to_dict(self) -> Dict[str, Any]:
    """JSON-ready form: counts and shares (fractions in [0, 1])."""
    return {
      "actions": list(self.actions),
      "samples": self.samples,
      "base": {
        "samples": dict(zip(self.actions, self.base_samples)),
        "share": dict(zip(self.actions, self.base_shares)),
        "other_samples": self.other_samples,
        "other_share": self.other_share,
      },
      "adm": {
        "samples": dict(zip(self.actions, self.adm_samples)),
        "share": dict(zip(self.actions, self.adm_shares)),
        "other_samples_used": self.other_adm_samples,
        "other_share_of_other_used": (
          self.other_adm_samples / self.other_samples if self.other_samples else 0.0
        ),
      },
      "unknown_ad_task_samples": self.unknown_ad_task_samples,
      "cold_start_samples": self.cold_start_samples,
      "stats_mode": self.stats_mode,
      "window_days": self.window_days,
      "extended": self._extended_dict(),
      "alpha": dict(zip(self.actions, self.alpha)),
      "window": {"start_day": self.window_start, "end_day": self.window_end},
      "stats": self.stats_source,
    } | (
      {"skipped_bad_records": self.skipped_bad_records}
      if self.skipped_bad_records is not None
      else {}
    )

  def to_markdown(self) -> str:
    """Table 1 as a markdown table, followed by the settings and the side counts."""
    pct = lambda x: f"{100.0 * x:.2f}%"  # noqa: E731
    header = ["Mask strategy"] + list(self.actions) + [OTHER]
    rows = [
      ["Base"] + [pct(s) for s in self.base_shares] + [pct(self.other_share)],
      ["With ADM"] + [pct(s) for s in self.adm_shares] + ["-"],
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    used = (self.other_adm_samples / self.other_samples) if self.other_samples else 0.0
    lines += [
      "",
      f"Samples: {self.samples}. {self._window_text()} ({self.stats_source}). "
      f"Alpha: {', '.join(f'{a}={t}' for a, t in zip(self.actions, self.alpha))}.",
      f"'Other'-target samples used by ADM for at least one action: {self.other_adm_samples} "
      f"({pct(used)} of them). {self._missing_text()}",
    ]
    if self.extended_samples:
      lines += ["", *self._extended_markdown()]
    return "\n".join(lines) + "\n"

  def _window_text(self) -> str:
    if self.stats_mode == point_in_time.POINT_IN_TIME:
      return (
        f"Point-in-time statistics: a sample of day d uses days d-{self.window_days}.."
        f"d-1, for days {self.window_start}-{self.window_end}"
      )
    return f"Statistics window: days {self.window_start}-{self.window_end}"

  def _missing_text(self) -> str:
    if self.stats_mode == point_in_time.POINT_IN_TIME:
      return (
        f"Cold-start samples (no statistics for their day, base mask): {self.cold_start_samples}."
      )
    return (
      "Samples of ad tasks missing from the statistics (base mask): "
      f"{self.unknown_ad_task_samples}."
    )

  def _extended_markdown(self) -> List[str]:
    """Extended (ADM-only, non-target) cells per action, with the reported labels."""
    pct = lambda x: f"{100.0 * x:.2f}%"  # noqa: E731
    header = ["Extended cells (reported labels)"] + list(self.actions)
    rows = [
      ["Share of samples"] + [pct(s) for s in self.extended_shares],
      ["P(mask \\| y = 1), non-target"] + [f"{r:.4f}" for r in self.extended_recall],
      ["Positive rate"] + [pct(r) for r in self.extended_positive_rates],
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def report_fields(schema: schema_lib.Schema) -> Dict[str, tf.DType]:
  """The record fields the report reads: ad task, target, day and the reported labels."""
  fields = {
    schema_lib.AD_TASK_ID: tf.int64,
    schema_lib.TARGET_ACTION: tf.int64,
    schema_lib.DAY: tf.int64,
  }
  fields.update({k: tf.int64 for k in schema.label_keys})
  return fields


@dataclasses.dataclass(frozen=True)
class MaskSetting:
  """What the masks of a report are computed with: the ADM config and the statistics' join.

  Build it with `MaskSetting.of`; `lookup()` makes the in-graph join (TF objects are made
  where they are used, so that a setting can be shipped to other processes).
  """

  schema: schema_lib.Schema
  stats: stats_lib.ConversionStats
  adm: masks_lib.MaskConfig
  mode: str

  @classmethod
  def of(
    cls,
    schema: schema_lib.Schema,
    stats: stats_lib.ConversionStats,
    alpha: Optional[Sequence[int]] = None,
    stats_mode: str = point_in_time.AUTO,
  ) -> "MaskSetting":
    """Checks `stats` against `schema` and resolves alpha and the statistics mode.

    Raises:
      StatsError: when `stats` were computed with another schema.
      StatsModeError: when `stats_mode` does not fit `stats`.
    """
    stats.check_schema(schema)
    adm = masks_lib.MaskConfig(masks_lib.ADM, alpha).resolve(schema)
    return cls(schema, stats, adm, point_in_time.resolve_stats_mode(stats_mode, stats))

  def lookup(self) -> Callable:
    return point_in_time.counts_lookup(self.stats, self.mode)


@dataclasses.dataclass
class MaskCounts:
  """The running sums behind a `MaskReport`; see its attributes (arrays: (N,) int64).

  Sums of disjoint parts of the logs add up (`merge`), so parts can be counted apart.
  """

  num_actions: int
  samples: int = 0
  other: int = 0
  other_used: int = 0
  missing: int = 0
  base: Optional[np.ndarray] = None
  adm: Optional[np.ndarray] = None
  extended: Optional[np.ndarray] = None
  extended_positives: Optional[np.ndarray] = None
  nontarget_positives: Optional[np.ndarray] = None

  _ARRAYS = ("base", "adm", "extended", "extended_positives", "nontarget_positives")

  def __post_init__(self):
    for name in self._ARRAYS:
      if getattr(self, name) is None:
        setattr(self, name, np.zeros([self.num_actions], np.int64))

  def add(self, batch: Mapping[str, np.ndarray], setting: MaskSetting, lookup: Callable) -> None:
    """Counts one batch of `report_fields` columns, masked as training masks them."""
    n = self.num_actions
    target = batch[schema_lib.TARGET_ACTION]
    counts, known = lookup(
      tf.constant(batch[schema_lib.AD_TASK_ID]), tf.constant(batch[schema_lib.DAY])
    )
    mask = masks_lib.training_mask(setting.adm, tf.constant(target), n, counts, known).numpy()
    is_other = target == schema_lib.OTHER_TARGET
    self.samples += len(target)
    self.other += int(is_other.sum())
    self.other_used += int((mask[is_other].sum(axis=1) > 0).sum())
    self.missing += int(len(target) - known.numpy().sum())
    self.base += np.bincount(target[~is_other], minlength=n)[:n]
    self.adm += mask.sum(axis=0).astype(np.int64)
    # (batch, N) 0/1: cells off the target, their ADM mask, their reported labels.
    off_target = (target[:, None] != np.arange(n)[None, :]).astype(np.int64)
    labels = np.stack([batch[k] for k in setting.schema.label_keys], axis=1)
    cells = mask.astype(np.int64) * off_target
    self.extended += cells.sum(axis=0)
    self.extended_positives += (cells * labels).sum(axis=0)
    self.nontarget_positives += (off_target * labels).sum(axis=0)

  def merge(self, other: "MaskCounts") -> "MaskCounts":
    """The sums of both (a new object)."""
    merged = {
      name: getattr(self, name) + getattr(other, name)
      for name in ("samples", "other", "other_used", "missing") + self._ARRAYS
    }
    return MaskCounts(self.num_actions, **merged)

  def report(
    self, setting: MaskSetting, skipped_bad_records: Optional[Dict[str, Any]] = None
  ) -> MaskReport:
    pit = setting.mode == point_in_time.POINT_IN_TIME
    as_tuple = lambda a: tuple(int(c) for c in a)  # noqa: E731
    stats = setting.stats
    return MaskReport(
      actions=tuple(setting.schema.actions),
      samples=self.samples,
      base_samples=as_tuple(self.base),
      other_samples=self.other,
      adm_samples=as_tuple(self.adm),
      other_adm_samples=self.other_used,
      unknown_ad_task_samples=0 if pit else self.missing,
      alpha=setting.adm.alpha,
      window_start=stats.window_start,
      window_end=stats.window_end,
      stats_source=stats.source,
      skipped_bad_records=skipped_bad_records,
      stats_mode=setting.mode,
      window_days=stats.window_days,
      cold_start_samples=self.missing if pit else 0,
      extended_samples=as_tuple(self.extended),
      extended_positives=as_tuple(self.extended_positives),
      nontarget_positives=as_tuple(self.nontarget_positives),
    )


def compute_mask_report(
  files: Union[str, Sequence[str]],
  schema: schema_lib.Schema,
  stats: stats_lib.ConversionStats,
  alpha: Optional[Sequence[int]] = None,
  batch_size: int = 65536,
  progress: Optional[Callable[[int], None]] = None,
  skip_bad_records: bool = False,
  stats_mode: str = point_in_time.AUTO,
) -> MaskReport:
  """Streams the logs and counts, per action, the samples the base and ADM masks use.

  Args:
    files: Logs (glob, comma-separated globs or list; TFRecord, `.gz` or `.parquet`).
    schema: The logs' schema.
    stats: Ad-task statistics computed with `schema`, static or daily.
    alpha: ADM thresholds, one per action (None: `masks.default_alpha`).
    batch_size: Records per read batch.
    progress: Called with the number of records read so far after every batch.
    skip_bad_records: Skip and count malformed records instead of failing on the first.
    stats_mode: "", "static" or "point_in_time" (`point_in_time.resolve_stats_mode`).

  Raises:
    StatsError: when `stats` were computed with another schema.
    StatsModeError: when `stats_mode` does not fit `stats`.
    LogError: naming file, record and field for a malformed record (e.g. a target outside
      [-1, N)), unless `skip_bad_records`.
    tf.errors.InvalidArgumentError: for a record of a day that daily statistics do not cover.
  """
  setting = MaskSetting.of(schema, stats, alpha, stats_mode)
  lookup = setting.lookup()
  counts = MaskCounts(schema.num_actions)
  bad = validation.BadRecords() if skip_bad_records else None
  fields = report_fields(schema)
  for _, _, batch in stats_lib.iter_log_batches(files, fields, batch_size, schema, bad):
    counts.add(batch, setting, lookup)
    if progress is not None:
      progress(counts.samples)
  if bad is not None:
    bad.log("mask_report")
  return counts.report(setting, bad.to_dict() if bad is not None else None)
