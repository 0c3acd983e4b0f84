"""The day report: day_report.json (everything) and day_report.md (what a person reads)."""

import json
from typing import Any, Dict, Optional

from kaml_tf import atomic
from kaml_tf.daily import layout


def _metric(value: Optional[float]) -> str:
  return "-" if value is None else f"{value:.4f}"


def to_markdown(report: Dict[str, Any]) -> str:
  """The short markdown of a day report (see `write`)."""
  plan, evaluation = report["plan"], report["evaluation"]
  decision = "PROMOTED" if report["promoted"] else "KEPT production"
  lines = [
    f"# Day {report['day']}: {decision}",
    "",
    f"Evaluated on day {plan['eval_day']}; trained on days {plan['train_days']} "
    f"(label delay {report['label_delay_days']} day(s)), warm start: "
    f"{report['train']['warm_start_from'] or 'none (from scratch)'}.",
    "",
    "| model | AUC | LogLoss | samples |",
    "|---|---|---|---|",
  ]
  for who in ("candidate", "production"):
    m = evaluation[who]
    if m is not None:
      lines.append(f"| {who} | {_metric(m['auc'])} | {_metric(m['logloss'])} | {m['count']:,} |")
  lines += ["", "Reasons:"] + [f"- {r}" for r in report["reasons"]]
  if report.get("alerts"):
    lines += ["", "ALERTS:"] + [f"- {a}" for a in report["alerts"]]
  production = report["production"]
  lines += [
    "",
    f"Production: {production['model_dir']} (day {production['day']}, version "
    f"{production['version']})."
    if production
    else "Production: none.",
  ]
  return "\n".join(lines) + "\n"


def write(paths: layout.DayPaths, report: Dict[str, Any]) -> None:
  """Writes the markdown, then the JSON (the JSON's presence marks the day finished)."""
  atomic.write_text(paths.report_md, to_markdown(report))
  atomic.write_text(paths.report_json, json.dumps(report, indent=2, sort_keys=True) + "\n")


def read(paths: layout.DayPaths) -> Dict[str, Any]:
  with open(paths.report_json, encoding="utf-8") as f:
    return json.load(f)
