"""Aggregates an experiment's runs: `results.json`, paper-style `results.md` and PNG plots.

For every configuration and metrics block (the per-target evaluation of paper 4.1.4 and, for
suites with true labels, the every-action `oracle` block), each action's and the overall AUC
and LogLoss are summarised over the runs as mean and sample standard deviation (ddof = 1; a
single run has no standard deviation). A run whose metric is undefined (null in metrics.json,
e.g. an action without test positives) is left out of that cell's mean, and the cell says over
how many runs it was taken.

Blocks: `per_target` (the served probabilities, calibrated when the runs are), `raw` (the
same evaluation of the uncalibrated probabilities, when some run is calibrated) and `oracle`.

results.md lays each block out like the paper's Tables 2-4: rows are configurations, columns
each action's AUC and LogLoss then "All", cells "0.8510 ± 0.0012", the best mean of each column
in bold (highest AUC, lowest LogLoss), and a RelaImpr row (eq. 14) of the `kaml` configuration,
and one of each `plugin` configuration, against the best `baseline` configuration of that
column, on mean AUCs. Configurations with the `reference` role (Oracle) are never the best
baseline. When the runner adds them (`experiments.intervals`), each per-target block is
followed by its 95% bootstrap intervals over the test rows; then come the settings each
configuration's search chose on validation and the test positives per action.
"""

import json
import math
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence

from matplotlib import figure as figure_lib
import numpy as np

from kaml_tf.evaluation import metrics as metrics_lib
from experiments import suites as suites_lib
from kaml_tf import atomic

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
PER_TARGET = "per_target"
RAW = "raw"
ORACLE = "oracle"
BLOCK_TITLES = {
  PER_TARGET: "Per-target evaluation (paper 4.1.4: each test sample on its target action)",
  RAW: "Per-target evaluation of the raw (uncalibrated) probabilities",
  ORACLE: "Every action against the true labels (oracle evaluation)",
}
PLOT_LABELS = {
  PER_TARGET: "per-target evaluation",
  RAW: "per-target, raw probabilities",
  ORACLE: "every action vs true labels",
}
METRICS = ("auc", "logloss")
METRIC_TITLES = {"auc": "AUC", "logloss": "LogLoss"}
# Higher AUC is better, lower LogLoss is better.
_BETTER = {"auc": max, "logloss": min}
ALL_COLUMN = "All"


def block_of(metrics: Mapping[str, Any], block: str) -> Mapping[str, Any]:
  """The metrics block `block` of one run's metrics.json dict.

  Raises:
    KeyError: if the run was evaluated without that block.
  """
  if block == PER_TARGET:
    return metrics
  if block == RAW:
    # The raw metrics of the probabilities before calibration (kaml_tf.evaluation.evaluator).
    return metrics[RAW]
  if block not in metrics:
    raise KeyError(f"metrics have no {block!r} block (keys: {sorted(metrics)})")
  return metrics[block]


def _defined(value: Any) -> bool:
  return value is not None and not (isinstance(value, float) and math.isnan(value))


def summarize(values: Sequence[Optional[float]]) -> Dict[str, Any]:
  """Mean and sample standard deviation of the defined values.

  Args:
    values: One metric per run; None or NaN marks an undefined metric, which is left out.

  Returns:
    `{"mean", "std", "n"}`: n defined values, their mean (None if n = 0) and their sample
    standard deviation with ddof = 1 (None if n < 2).
  """
  defined = np.array([float(v) for v in values if _defined(v)], dtype=np.float64)
  n = int(defined.size)
  return {
    "mean": float(defined.mean()) if n else None,
    "std": float(defined.std(ddof=1)) if n >= 2 else None,
    "n": n,
  }


def aggregate_blocks(blocks: Sequence[Mapping[str, Any]], actions: Sequence[str]) -> Dict[str, Any]:
  """Summarises the same metrics block of several runs.

  Args:
    blocks: One `{"actions": {name: {"auc", "logloss", ...}}, "overall": {...}}` per run.
    actions: The action names, in column order.

  Returns:
    `{"actions": {name: {"auc": summary, "logloss": summary}}, "overall": {same}}` with each
    summary from `summarize`.
  """

  def cell(get):
    return {m: summarize([get(b)[m] for b in blocks]) for m in METRICS}

  return {
    "actions": {a: cell(lambda b, a=a: b["actions"][a]) for a in actions},
    "overall": cell(lambda b: b["overall"]),
  }


def _columns(actions: Sequence[str]) -> List[str]:
  """Table columns: every action, then "All" (the overall metrics)."""
  return list(actions) + [ALL_COLUMN]


def _summary_cell(summary: Mapping[str, Any], column: str) -> Mapping[str, Any]:
  return summary["overall"] if column == ALL_COLUMN else summary["actions"][column]


def rela_impr_row(
  configurations: Mapping[str, Mapping[str, Any]],
  block: str,
  columns: Sequence[str],
  name: Optional[str] = None,
) -> Optional[Dict[str, Any]]:
  """RelaImpr (eq. 14) of the `kaml` configuration (or `name`) over the best baseline.

  The best baseline of a column is the `baseline`-role configuration with the highest mean
  AUC in it; RelaImpr is computed on the two mean AUCs.

  Args:
    configurations: `results["configurations"]`.
    block: The metrics block.
    columns: Action names and `ALL_COLUMN`.
    name: The configuration compared (default: the one with the `kaml` role).

  Returns:
    `{column: {"value": float or None, "baseline": name or None}}`, or None when there is no
    such configuration or no baseline.
  """
  if name is None:
    kaml = [n for n, c in configurations.items() if c["role"] == suites_lib.KAML]
  else:
    kaml = [name] if name in configurations else []
  baselines = [n for n, c in configurations.items() if c["role"] == suites_lib.BASELINE]
  if not kaml or not baselines:
    return None
  mean = lambda name, col: _summary_cell(  # noqa: E731
    configurations[name]["summary"][block], col
  )["auc"]["mean"]
  row = {}
  for col in columns:
    candidates = [(mean(n, col), n) for n in baselines if mean(n, col) is not None]
    if not candidates:
      row[col] = {"value": None, "baseline": None}
      continue
    # Ties go to the first baseline in row order (max keeps the first maximum).
    best = max(candidates, key=lambda c: c[0])[1]
    ours = mean(kaml[0], col)
    value = float("nan") if ours is None else metrics_lib.rela_impr(ours, mean(best, col))
    row[col] = {"value": None if math.isnan(value) else value, "baseline": best}
  return row


def build_results(
  suite: suites_lib.Suite,
  actions: Sequence[str],
  runs: Mapping[str, Sequence[Mapping[str, Any]]],
  settings: Mapping[str, Mapping[str, Any]],
  experiment: Mapping[str, Any],
  command: str = "",
  chosen: Optional[Mapping[str, Mapping[str, Any]]] = None,
  test_positives: Optional[Mapping[str, Mapping[str, int]]] = None,
) -> Dict[str, Any]:
  """The `results.json` dict of a suite.

  Args:
    suite: The suite run (only its selected variants).
    actions: The schema's action names.
    runs: Per configuration name, one `{"seed", "run_dir", "metrics", "train"}` per run,
      `metrics` being the run's metrics.json dict.
    settings: Per configuration name, its resolved knobs (`Variant.settings` with the alpha
      actually used).
    experiment: The experiment's shared settings (training, data, seeds).
    command: The command line that produced the results.
    chosen: Per configuration, its settings chosen on validation (the validation protocol:
      `{"trials", "validation_auc", "trial", "point", "changed", "tuning_dir"}`).
    test_positives: Per test split, each action's positives in its target traffic.

  The `raw` block (the uncalibrated probabilities) is there when some run is calibrated.

  Returns:
    `{"suite", "title", "command", "actions", "blocks", "experiment", "test_positives",
    "configurations": {name: {"role", "settings", "chosen", "runs", "summary": {block:
    aggregate}}}, "rela_impr": {block: row or None}}` ("chosen" only when searched).
  """
  every_run = [r["metrics"] for v in suite.variants for r in runs[v.name]]
  calibrated = any(m.get("calibration") for m in every_run) and all(RAW in m for m in every_run)
  blocks = (
    [PER_TARGET] + ([RAW] if calibrated else []) + ([ORACLE] if suite.oracle_evaluation else [])
  )
  configurations = {}
  for variant in suite.variants:
    variant_runs = list(runs[variant.name])
    configurations[variant.name] = {
      "role": variant.role,
      "settings": dict(settings[variant.name]),
      **({"chosen": dict(chosen[variant.name])} if chosen and variant.name in chosen else {}),
      "runs": variant_runs,
      "summary": {
        b: aggregate_blocks([block_of(r["metrics"], b) for r in variant_runs], actions)
        for b in blocks
      },
    }
  columns = _columns(actions)
  return {
    "suite": suite.name,
    "title": suite.title,
    "command": command,
    "actions": list(actions),
    "blocks": blocks,
    "experiment": dict(experiment),
    "test_positives": {k: dict(v) for k, v in (test_positives or {}).items()},
    "configurations": configurations,
    "rela_impr": {b: rela_impr_row(configurations, b, columns) for b in blocks},
    "plugin_rela_impr": {
      b: {
        n: rela_impr_row(configurations, b, columns, n)
        for n, c in configurations.items()
        if c["role"] == suites_lib.PLUGIN
      }
      for b in blocks
    },
  }


def _strict(value: Any) -> Any:
  """NaN becomes null so results.json is strict JSON."""
  if isinstance(value, Mapping):
    return {k: _strict(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_strict(v) for v in value]
  if isinstance(value, float) and math.isnan(value):
    return None
  return value


def to_json(results: Mapping[str, Any]) -> str:
  return json.dumps(_strict(results), indent=2, allow_nan=False) + "\n"


# --------------------------------------------------------------------------------------------
# results.md
# --------------------------------------------------------------------------------------------


def format_cell(summary: Mapping[str, Any], runs: int, bold: bool = False) -> str:
  """ "0.8510 ± 0.0012", bold when best, "(n=k)" when only k of `runs` runs define it."""
  if summary["mean"] is None:
    return "n/a"
  text = f"{summary['mean']:.4f}"
  if summary["std"] is not None:
    text += f" ± {summary['std']:.4f}"
  if bold:
    text = f"**{text}**"
  if summary["n"] < runs:
    text += f" (n={summary['n']})"
  return text


def format_percent(value: Optional[float]) -> str:
  return "n/a" if value is None else f"{100 * value:.2f}%"


def _best_means(
  configurations: Mapping[str, Any], block: str, column: str, metric: str
) -> Optional[float]:
  means = [
    _summary_cell(c["summary"][block], column)[metric]["mean"] for c in configurations.values()
  ]
  means = [m for m in means if m is not None]
  return _BETTER[metric](means) if means else None


def format_table(results: Mapping[str, Any], block: str) -> str:
  """One block's table in the paper's layout, with the RelaImpr row when there is one."""
  columns = _columns(results["actions"])
  configurations = results["configurations"]
  header = ["Configuration"] + [f"{c} {METRIC_TITLES[m]}" for c in columns for m in METRICS]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  best = {(c, m): _best_means(configurations, block, c, m) for c in columns for m in METRICS}
  for name, config in configurations.items():
    runs = len(config["runs"])
    cells = [name]
    for c in columns:
      for m in METRICS:
        summary = _summary_cell(config["summary"][block], c)[m]
        is_best = summary["mean"] is not None and summary["mean"] == best[(c, m)]
        cells.append(format_cell(summary, runs, bold=is_best))
    lines.append("| " + " | ".join(cells) + " |")
  rows = [("RelaImpr.", results.get("rela_impr", {}).get(block))]
  plugins = results.get("plugin_rela_impr", {}).get(block, {})
  rows += [(f"RelaImpr. ({name})", row) for name, row in plugins.items()]
  for label, row in rows:
    if not row:
      continue
    cells = [label]
    for c in columns:
      entry = row[c]
      vs = f" (vs {entry['baseline']})" if entry["baseline"] else ""
      cells += [format_percent(entry["value"]) + vs, "-"]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def _format_settings(results: Mapping[str, Any]) -> str:
  lines = [
    "| Configuration | Role | Backbone | Mask policy | ADM alpha | HKE | "
    "gamma (eq. 13; 1 = no RLU) |",
    "|---|---|---|---|---|---|---|",
  ]
  for name, config in results["configurations"].items():
    s = config["settings"]
    alpha = ", ".join(str(a) for a in s["alpha"]) if s["alpha"] else "-"
    lines.append(
      f"| {name} | {config['role']} | {s['backbone']} | {s['mask_policy']} | "
      f"{alpha} | {'yes' if s['hke'] else 'no'} | {s['gamma']:g} |"
    )
  return "\n".join(lines)


def _format_interval(cell: Optional[Mapping[str, Any]], percent: bool = False) -> str:
  if not cell or cell["low"] is None:
    return "n/a"
  if percent:
    return f"{100 * cell['low']:.2f}% .. {100 * cell['high']:.2f}%"
  return f"[{cell['low']:.4f}, {cell['high']:.4f}]"


def _intervals_caption(results: Mapping[str, Any]) -> str:
  """What the block's intervals are: row resampling, or its normal approximation."""
  count = results["intervals_resamples"]
  if results.get("intervals_method", "bootstrap") == "normal":
    return (
      "95% intervals over the test rows, normal approximation of row resampling "
      f"(kaml_tf.evaluation.influence: per-row influences, DeLong's covariance for the AUCs; "
      f"{count} draws; each configuration averaged over its seeds, all configurations drawn "
      "jointly; RelaImpr against the column's best baseline on the same draws):"
    )
  return (
    f"95% bootstrap intervals over the test rows ({count} resamples; each configuration "
    "averaged over its seeds, all on the same resamples; RelaImpr against the column's best "
    "baseline on the same resamples):"
  )


def format_intervals(results: Mapping[str, Any], block: str) -> Optional[str]:
  """The block's bootstrap intervals (each configuration's, RelaImpr's), or None."""
  data = (results.get("intervals") or {}).get(block)
  if not data:
    return None
  columns = _columns(results["actions"])
  header = ["Configuration"] + [f"{c} {METRIC_TITLES[m]}" for c in columns for m in METRICS]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for name, cells in data["configurations"].items():
    row = [name] + [_format_interval(cells[c][m]) for c in columns for m in METRICS]
    lines.append("| " + " | ".join(row) + " |")
  for name, cells in data["rela_impr"].items():
    row = [f"RelaImpr. ({name})"]
    for c in columns:
      cell = cells.get(c)
      text = "n/a"
      if cell and cell["value"] is not None:
        text = f"{format_percent(cell['value'])} ({_format_interval(cell, percent=True)}) vs {cell['baseline']}"
      row += [text, "-"]
    lines.append("| " + " | ".join(row) + " |")
  return "\n".join(lines)


def _format_chosen(results: Mapping[str, Any]) -> Optional[str]:
  """The settings each configuration's search chose on validation, or None if none searched."""
  rows = [(n, c["chosen"]) for n, c in results["configurations"].items() if "chosen" in c]
  if not rows:
    return None
  lines = [
    "| Configuration | Trials | Validation AUC | Chosen (changed from the suite's settings) |",
    "|---|---|---|---|",
  ]
  for name, chosen in rows:
    changed = ", ".join(f"{k}={v}" for k, v in chosen["changed"].items()) or "(none)"
    score = chosen["validation_auc"]
    lines.append(
      f"| {name} | {chosen['trials']} | {'-' if score is None else f'{score:.4f}'} | {changed} |"
    )
  return "\n".join(lines)


def _format_positives(results: Mapping[str, Any]) -> Optional[str]:
  positives = results.get("test_positives") or {}
  if not positives:
    return None
  actions = results["actions"]
  lines = ["| Test split | " + " | ".join(actions) + " |", "|---" * (len(actions) + 1) + "|"]
  for split, counts in positives.items():
    lines.append(f"| `{split}` | " + " | ".join(str(counts.get(a, "-")) for a in actions) + " |")
  return "\n".join(lines)


def _format_experiment(experiment: Mapping[str, Any]) -> str:
  return "\n".join(
    f"- {key}: `{json.dumps(value, sort_keys=True)}`" for key, value in experiment.items()
  )


def plot_files(block: str) -> Dict[str, str]:
  """`{metric: PNG file name}` of a block's plots."""
  prefix = "" if block == PER_TARGET else f"{block}_"
  return {m: f"{prefix}{m}.png" for m in METRICS}


def format_markdown(results: Mapping[str, Any]) -> str:
  """The whole results.md: command, tables per block, RelaImpr, settings and plots."""
  runs = sorted({len(c["runs"]) for c in results["configurations"].values()})
  seeds = sorted({r["seed"] for c in results["configurations"].values() for r in c["runs"]})
  out = [
    f"# Suite `{results['suite']}`: {results['title']}",
    "",
    "Produced by:",
    "",
    "```",
    results["command"] or "(library call)",
    "```",
    "",
    f"Runs per configuration: {', '.join(map(str, runs))} (seeds "
    f"{', '.join(map(str, seeds))}). Cells are mean ± sample standard deviation (ddof 1) "
    "over the runs; \"(n=k)\" marks a metric defined in only k runs (e.g. an action "
    "without test positives). Bold: the best mean of each column (highest AUC, lowest "
    "LogLoss). RelaImpr (eq. 14): (AUC(KAML) - 0.5) / (AUC(best baseline) - 0.5) - 1 on "
    "mean AUCs, against the baseline-role configuration with the best mean AUC in that "
    "column (named in brackets; reference configurations such as Oracle are not "
    "baselines); a row per plug-in (KAML's modules on another backbone) likewise.",
    "",
  ]
  for block in results["blocks"]:
    out += [f"## {BLOCK_TITLES[block]}", "", format_table(results, block), ""]
    intervals = format_intervals(results, block)
    if intervals:
      out += [
        _intervals_caption(results),
        "",
        intervals,
        "",
      ]
    files = plot_files(block)
    out += [
      f"![{METRIC_TITLES[m]} by configuration, {PLOT_LABELS[block]}]({files[m]})" for m in METRICS
    ]
    out.append("")
  out += [
    "## Configurations",
    "",
    _format_settings(results),
    "",
    "Shared settings:",
    "",
    _format_experiment(results["experiment"]),
    "",
  ]
  chosen = _format_chosen(results)
  if chosen:
    out += [
      "## Settings chosen on validation",
      "",
      "Each configuration's search: the same number of trials, each an early-stopped run "
      "scored by its best validation per-target overall AUC; every seed's final run uses "
      "the chosen settings (trials and reports in each tuning_dir).",
      "",
      chosen,
      "",
    ]
  positives = _format_positives(results)
  if positives:
    out += [
      "## Test positives per action (target traffic)",
      "",
      positives,
      "",
    ]
  return "\n".join(out)


# --------------------------------------------------------------------------------------------
# Plots.
# --------------------------------------------------------------------------------------------


def plot_block(results: Mapping[str, Any], block: str, metric: str, path: str) -> None:
  """Writes one PNG (atomically): per column, each configuration's mean with a std bar."""
  columns = _columns(results["actions"])
  configurations = results["configurations"]
  fig = figure_lib.Figure(figsize=(max(6.0, 1.2 * len(columns) + 2), 4.2), dpi=110)
  ax = fig.subplots()
  width = 0.8 / max(1, len(configurations))
  x = np.arange(len(columns), dtype=np.float64)
  for i, (name, config) in enumerate(configurations.items()):
    cells = [_summary_cell(config["summary"][block], c)[metric] for c in columns]
    mean = np.array([np.nan if s["mean"] is None else s["mean"] for s in cells])
    std = np.array([0.0 if s["std"] is None else s["std"] for s in cells])
    offset = (i - (len(configurations) - 1) / 2) * width
    ax.errorbar(x + offset, mean, yerr=std, fmt="o", capsize=3, label=name)
  ax.set_xticks(x)
  ax.set_xticklabels(columns, rotation=20, ha="right")
  runs = max(len(c["runs"]) for c in configurations.values())
  ax.set_ylabel(f"{METRIC_TITLES[metric]} (mean ± std over {runs} runs)")
  ax.set_title(
    f"{results['suite']}: {METRIC_TITLES[metric]} by configuration, {PLOT_LABELS[block]}"
  )
  ax.grid(axis="y", alpha=0.3)
  ax.legend(fontsize="small", loc="best")
  fig.tight_layout()
  with atomic.atomic_path(path) as tmp:
    fig.savefig(tmp, format="png")


def write_report(results: Mapping[str, Any], output_dir: str) -> List[str]:
  """Writes results.json, results.md and every plot into `output_dir` (each atomically).

  Returns:
    The paths written, results.json first.
  """
  os.makedirs(output_dir, exist_ok=True)
  written = [os.path.join(output_dir, RESULTS_JSON)]
  atomic.write_text(written[0], to_json(results))
  for block in results["blocks"]:
    for metric, name in plot_files(block).items():
      path = os.path.join(output_dir, name)
      plot_block(results, block, metric, path)
      written.append(path)
  written.append(os.path.join(output_dir, RESULTS_MD))
  atomic.write_text(written[-1], format_markdown(results))
  return written
