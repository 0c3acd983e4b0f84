"""The pre-training data check of `pipelines.validate_logs`: what the logs hold, what is broken.

`check_logs` reads every record of the logs with every field of the schema through
`validation.checked_batches`, counting malformed records (by reason and field, with the first
offending record of each) instead of stopping at the first, and summarises the good ones: row
count, day range, ad tasks, the share of each target action (and "Other"), and per action the
reported label rate (and the true label rate when the logs carry true labels). A scheduler
gates training on `LogCheck.ok`: no malformed record, no empty file, at least one row.
"""

import dataclasses
from typing import Any, Callable, Dict, Optional, Sequence, Set, Union

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import numpy as np

from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.logs import validation

OTHER = "Other"


@dataclasses.dataclass
class LogCheck:
  """Counts over the good records of the logs, and the problems found.

  Attributes:
    actions: The schema's action names.
    files: Files read.
    rows: Good records.
    target_counts: (N + 1,) records per target action, "Other" last.
    label_positives: (N,) records with a reported conversion of each action.
    true_label_positives: (N,) the same for the true labels, or None without them.
    day_min: Smallest `day`, None without rows.
    day_max: Largest `day`, None without rows.
    ad_task_ids: Distinct ad task ids seen.
    bad: The malformed records and files.
  """

  actions: Sequence[str]
  files: int = 0
  rows: int = 0
  target_counts: np.ndarray = None
  label_positives: np.ndarray = None
  true_label_positives: Optional[np.ndarray] = None
  day_min: Optional[int] = None
  day_max: Optional[int] = None
  ad_task_ids: Set[int] = dataclasses.field(default_factory=set)
  bad: validation.BadRecords = dataclasses.field(default_factory=validation.BadRecords)

  @property
  def ok(self) -> bool:
    """True when training may start: rows, and nothing malformed."""
    return self.rows > 0 and not self.bad.field_counts

  def add(self, batch: Dict[str, np.ndarray], schema: schema_lib.Schema) -> None:
    """Adds one batch of good records (every field of `schema.parse_spec()`)."""
    n = schema.num_actions
    if self.target_counts is None:
      self.target_counts = np.zeros([n + 1], np.int64)
      self.label_positives = np.zeros([n], np.int64)
      if schema.has_true_labels:
        self.true_label_positives = np.zeros([n], np.int64)
    target = batch[schema_lib.TARGET_ACTION]
    if not target.size:
      return
    # "Other" (-1) lands in the last bin.
    self.target_counts += np.bincount(np.where(target < 0, n, target), minlength=n + 1)
    self.label_positives += np.array([batch[k].sum() for k in schema.label_keys], np.int64)
    if self.true_label_positives is not None:
      self.true_label_positives += np.array(
        [batch[k].sum() for k in schema.true_label_keys], np.int64
      )
    day = batch[schema_lib.DAY]
    low, high = int(day.min()), int(day.max())
    self.day_min = low if self.day_min is None else min(self.day_min, low)
    self.day_max = high if self.day_max is None else max(self.day_max, high)
    self.ad_task_ids.update(np.unique(batch[schema_lib.AD_TASK_ID]).tolist())
    self.rows += len(target)

  def _rates(self, counts: Optional[np.ndarray]) -> Optional[Dict[str, float]]:
    if counts is None:
      return None
    return {a: (float(c) / self.rows if self.rows else 0.0) for a, c in zip(self.actions, counts)}

  def to_dict(self) -> Dict[str, Any]:
    """JSON-ready report."""
    names = list(self.actions) + [OTHER]
    targets = self.target_counts if self.target_counts is not None else np.zeros(len(names))
    result = {
      "ok": self.ok,
      "files": self.files,
      "rows": self.rows,
      "ad_tasks": len(self.ad_task_ids),
      "day_range": [self.day_min, self.day_max],
      "target_share": {
        a: (float(c) / self.rows if self.rows else 0.0) for a, c in zip(names, targets)
      },
      "label_rate": self._rates(self.label_positives),
      "problems": self.bad.to_dict(),
    }
    if self.true_label_positives is not None:
      result["true_label_rate"] = self._rates(self.true_label_positives)
    return result

  def to_markdown(self) -> str:
    """The report as markdown: a summary line, the per-action table, the problems."""
    d = self.to_dict()
    pct = lambda x: f"{100.0 * x:.2f}%"  # noqa: E731
    lines = [
      f"Rows: {self.rows:,} in {self.files} file(s); days {self.day_min}-{self.day_max}; "
      f"{len(self.ad_task_ids):,} ad tasks.",
      "",
    ]
    header = ["action", "target share", "reported label rate"]
    if "true_label_rate" in d:
      header.append("true label rate")
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for a in list(self.actions) + [OTHER]:
      row = [a, pct(d["target_share"][a])]
      if a != OTHER:
        row.append(pct(d["label_rate"][a]))
        if "true_label_rate" in d:
          row.append(pct(d["true_label_rate"][a]))
      else:
        row += ["-"] * (len(header) - 2)
      lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    problems = d["problems"]["by_field"]
    if not problems:
      lines.append("No malformed records." if self.rows else "No records.")
    else:
      lines += ["| problem | field | records | first |", "|---|---|---|---|"]
      lines += [
        f"| {p['reason']} | {p['field'] or '-'} | {p['count']:,} | {p['first']} |" for p in problems
      ]
    lines.append("")
    lines.append("OK" if self.ok else "FAILED: fix the logs (or train with --skip_bad_records)")
    return "\n".join(lines) + "\n"


def check_logs(
  files: Union[str, Sequence[str]],
  schema: schema_lib.Schema,
  batch_size: int = 65536,
  progress: Optional[Callable[[int], None]] = None,
) -> LogCheck:
  """Reads every record of `files` and returns the check (never raises on a bad record).

  Raises:
    FileNotFoundError: when a pattern matches nothing.
  """
  check = LogCheck(actions=tuple(schema.actions))
  spec = schema.parse_spec()
  for path in records.list_files(files):
    check.files += 1
    for _, batch in validation.checked_batches(path, schema, spec, batch_size, check.bad):
      check.add(batch, schema)
      if progress is not None:
        progress(check.rows)
  return check
