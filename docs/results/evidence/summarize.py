r"""Writes the evidence tables (README.md's numbers) from the experiments of `run.sh`.

  python docs/results/evidence/summarize.py ROOT > tables.md

ROOT holds the `pipelines.experiment` outputs `run.sh` writes (ablation/, baselines/,
lever_adagrad/, kuairand/). Simulated configurations were all scored on the same 3.6M test
rows, so their 95% intervals are drawn jointly (`kaml_tf.evaluation.influence`: the normal
approximation of row resampling, DeLong's covariance for the AUCs), for each configuration's
seed-averaged metric, for its difference to the base MMoE and for RelaImpr against the
column's best baseline. KuaiRand draws a new conversion (targets, reporting, split) per seed,
so its intervals are t-intervals over the 5 seeds of the paired per-seed differences.
"""

import json
import os
import sys
from typing import Dict, List, Sequence

import numpy as np

from experiments import intervals as intervals_lib
from kaml_tf.evaluation import bootstrap
from kaml_tf.evaluation import influence
from kaml_tf.evaluation import metrics as metrics_lib

ACTIONS = ("activation", "re_engagement", "registration", "payment", "retention")
COLUMNS = ACTIONS + ("overall",)
DRAWS = 4000
# (row label, experiment folder, configuration, role): baselines compete for "best baseline".
SIMULATED = (
  ("MMoE", "ablation", "MMoE", "baseline"),
  ("SingleTask", "baselines", "SingleTask", "baseline"),
  ("PLE", "baselines", "PLE", "baseline"),
  ("TAML", "baselines", "TAML", "baseline"),
  ("MMoE+ADM", "ablation", "MMoE+ADM", "ablation"),
  ("MMoE+ADM+HKE", "ablation", "MMoE+ADM+HKE", "ablation"),
  ("MMoE+RLU", "ablation", "MMoE+RLU", "ablation"),
  ("KAML (MMoE)", "ablation", "KAML", "kaml"),
  ("PLE+KAML", "baselines", "PLE+KAML", "kaml"),
  ("TAML+KAML", "baselines", "TAML+KAML", "kaml"),
  ("MMoE, Adagrad embeddings", "lever_adagrad", "MMoE", "lever"),
  ("KAML, Adagrad embeddings", "lever_adagrad", "KAML", "lever"),
  ("MMoE, Adagrad 0.2, 1 trial", "lever_adagrad_lr02", "MMoE", "lever"),
  ("KAML, Adagrad 0.2, 1 trial", "lever_adagrad_lr02", "KAML", "lever"),
)
# KAML against MMoE under the same lever (label, KAML row, MMoE row).
LEVER_PAIRS = (
  (
    "KAML − MMoE, both with Adagrad embeddings",
    "KAML, Adagrad embeddings",
    "MMoE, Adagrad embeddings",
  ),
  (
    "KAML − MMoE, both Adagrad 0.2, 1 trial",
    "KAML, Adagrad 0.2, 1 trial",
    "MMoE, Adagrad 0.2, 1 trial",
  ),
)
REPEATS = 3
# Student's t quantiles 0.975 by degrees of freedom (2 or 3 simulated seeds, 5 KuaiRand).
T_975 = {1: 12.706204736174698, 2: 4.302652729749464, 4: 2.7764451051977987}


def _json(path: str):
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def _runs(root: str, folder: str, configuration: str) -> List[str]:
  """The finished runs seed-0, seed-1, ... (up to REPEATS; fewer when the rest are missing)."""
  out = []
  for r in range(REPEATS):
    d = os.path.join(root, folder, "runs", configuration, f"seed-{r}")
    if not os.path.exists(os.path.join(d, "metrics.json")):
      break
    out.append(d)
  return out


def _seed_metric(run_dirs: Sequence[str], block: str, column: str, metric: str) -> np.ndarray:
  values = []
  for d in run_dirs:
    m = _json(os.path.join(d, "metrics.json"))
    m = m["raw"] if block == "raw" else m
    m = m["oracle"] if block == "oracle" else m
    values.append(m["overall"][metric] if column == "overall" else m["actions"][column][metric])
  return np.array(values, dtype=np.float64)


def _load(rows):
  """The evaluated rows' labels y (m,) and targets (m,); per row, its seeds' calibrated
  target columns [[(m,) per seed]]; per row, its raw mean score over the reported rate on
  each action's target traffic (N,). Raw columns are read for that ratio only, not kept."""
  y = targets = None
  served, calibration = [], []
  for _, run_dirs in rows:
    seeds, raw_means = [], []
    for d in run_dirs:
      p = intervals_lib.load_predictions(os.path.join(d, intervals_lib.PREDICTIONS_FILE))
      y_run, column, t_run = bootstrap.target_columns(p["served"], p["labels"], p["target_action"])
      if y is None:
        y, targets = y_run, t_run
      elif not (np.array_equal(y, y_run) and np.array_equal(targets, t_run)):
        raise ValueError(f"{d}: scored other test rows than the first run")
      seeds.append(column.astype(np.float64))
      raw = bootstrap.target_columns(p["raw"], p["labels"], p["target_action"])[1]
      raw_means.append([raw[targets == k].mean() for k in range(len(ACTIONS))])
    served.append(seeds)
    rates = [y[targets == k].mean() for k in range(len(ACTIONS))]
    calibration.append(np.mean(raw_means, axis=0) / rates)
  return y, targets, served, np.array(calibration)


def _index(labels: Sequence[str], key: str):
  """Position of the row `key` (its label may carry a seed count), or None."""
  return next((i for i, l in enumerate(labels) if l == key or l.startswith(key + " (")), None)


def _fmt(v: float, digits: int = 4, sign: bool = False) -> str:
  if v is None or not np.isfinite(v):
    return "n/a"
  return f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"


def _interval(values: np.ndarray, digits: int = 4, sign: bool = True) -> str:
  low, high = bootstrap.percentile_interval(values)
  return f"[{_fmt(low, digits, sign)}, {_fmt(high, digits, sign)}]"


def _seed_interval(paired: np.ndarray) -> str:
  """The 95% t-interval of the mean of the seed-paired differences ("seeds n/a" for one)."""
  if paired.size < 2 or paired.size - 1 not in T_975:
    return "seeds n/a"
  half = T_975[paired.size - 1] * paired.std(ddof=1) / np.sqrt(paired.size)
  return f"seeds [{_fmt(paired.mean() - half, sign=True)}, {_fmt(paired.mean() + half, sign=True)}]"


def _rela(a, b):
  return np.array([metrics_lib.rela_impr(x, z) for x, z in zip(np.ravel(a), np.ravel(b))])


def simulated(root: str) -> List[str]:
  rows = [(label, _runs(root, folder, cfg), role) for label, folder, cfg, role in SIMULATED]
  rows = [
    (f"{l} ({len(d)} seed{'s' * (len(d) > 1)})" if 0 < len(d) < REPEATS else l, d, r)
    for l, d, r in rows
  ]
  missing = [label for label, dirs, _ in rows if not dirs]
  rows = [r for r in rows if r[1]]
  labels = [r[0] for r in rows]
  y, targets, columns, calibration = _load([(label, dirs) for label, dirs, _ in rows])
  out = [
    f"Test rows scored: {y.size:,} (every configuration the same rows). Not run: {', '.join(missing) or 'none'}.",
    "",
  ]
  # Intervals for the served (calibrated) scores; the raw block's LogLoss is listed below
  # with its seed spread only (raw AUCs per action equal the served ones).
  draws = {"served": influence.target_draws(y, targets, columns, ACTIONS, DRAWS)}
  col = lambda c: bootstrap.OVERALL if c == "overall" else c  # noqa: E731

  for block, title in (("served", "calibrated (served)"),):
    for k, metric in ((0, "AUC"), (1, "LogLoss")):
      out += [
        f"### Per-target {metric}, {title}: mean over the seeds (3 unless marked) ± seed std, 95% interval of the mean",
        "",
      ]
      out += ["| configuration | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
      for i, (label, dirs, _) in enumerate(rows):
        cells = []
        for c in COLUMNS:
          seeds = _seed_metric(dirs, block if block == "raw" else "served", c, metric.lower())
          d = draws[block][col(c)]
          cells.append(
            f"{_fmt(d['point'][i, k])} ± {_fmt(seeds.std(ddof=1))} {_interval(d['draws'][:, i, k], sign=False)}"
          )
        out.append(f"| {label} | " + " | ".join(cells) + " |")
      out.append("")

  out += ["### Per-target LogLoss, raw (uncalibrated): mean ± seed std", ""]
  out += ["| configuration | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
  for label, dirs, _ in rows:
    values = [_seed_metric(dirs, "raw", c, "logloss") for c in COLUMNS]
    cells = [f"{_fmt(v.mean())} ± {_fmt(v.std(ddof=1))}" for v in values]
    out.append(f"| {label} | " + " | ".join(cells) + " |")
  out.append("")

  base = _index(labels, "MMoE")
  out += [
    "### Difference to the base MMoE (calibrated per-target AUC of the seed means; 95% "
    "interval over test rows; then the 95% t-interval of the seed-paired differences, which "
    "holds the training noise: seeds [low, high])",
    "",
  ]
  out += ["| configuration | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
  pairs = [(label, i, base) for i, label in enumerate(labels) if i != base]
  for label, ours, theirs in LEVER_PAIRS:
    if _index(labels, ours) is not None and _index(labels, theirs) is not None:
      pairs.append((label, _index(labels, ours), _index(labels, theirs)))
  for label, i, j in pairs:
    cells = []
    for c in COLUMNS:
      d = draws["served"][col(c)]
      diff = d["draws"][:, i, 0] - d["draws"][:, j, 0]
      n = min(len(rows[i][1]), len(rows[j][1]))  # the seeds both have
      paired = _seed_metric(rows[i][1][:n], "served", c, "auc") - _seed_metric(
        rows[j][1][:n], "served", c, "auc"
      )
      point = _fmt(d["point"][i, 0] - d["point"][j, 0], sign=True)
      cells.append(f"{point} {_interval(diff)} {_seed_interval(paired)}")
    out.append(f"| {label} | " + " | ".join(cells) + " |")
  out.append("")

  baselines = [i for i, r in enumerate(rows) if r[2] == "baseline"]
  out += [
    "### RelaImpr (eq. 14) against the column's best baseline (calibrated AUC; 95% interval)",
    "",
  ]
  out += ["| configuration | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
  for i, (label, _, role) in enumerate(rows):
    if role == "baseline":
      continue
    cells = []
    for c in COLUMNS:
      d = draws["served"][col(c)]
      best = max(baselines, key=lambda b: d["point"][b, 0])
      point = _rela(d["point"][i, 0], d["point"][best, 0])[0]
      cells.append(
        f"{100 * point:+.2f}% {_interval(100 * _rela(d['draws'][:, i, 0], d['draws'][:, best, 0]), 2)} vs {labels[best]}"
      )
    out.append(f"| {label} | " + " | ".join(cells) + " |")
  out.append("")

  out += [
    "### Every action against the true labels (oracle block, calibrated AUC; mean ± seed std)",
    "",
  ]
  out += ["| configuration | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
  for label, dirs, _ in rows:
    cells = [
      f"{_fmt(_seed_metric(dirs, 'oracle', c, 'auc').mean())} ± {_fmt(_seed_metric(dirs, 'oracle', c, 'auc').std(ddof=1))}"
      for c in COLUMNS
    ]
    out.append(f"| {label} | " + " | ".join(cells) + " |")
  out.append("")

  out += ["### Calibration on target traffic: mean raw score / reported rate (1 = calibrated)", ""]
  out += ["| configuration | " + " | ".join(ACTIONS) + " |", "|---" * (len(ACTIONS) + 1) + "|"]
  for i, label in enumerate(labels):
    out.append(f"| {label} | " + " | ".join(f"{v:.3f}" for v in calibration[i]) + " |")
  out.append("")

  out += ["### Settings chosen on validation (3 trials per configuration, the same for all)", ""]
  out += [
    "| configuration | validation AUC | chosen (changes from the suite's settings) | epochs trained per seed |",
    "|---|---|---|---|",
  ]
  for label, folder, cfg, _ in SIMULATED:
    results_path = os.path.join(root, folder, "results.json")
    if label in missing or not os.path.exists(results_path):
      continue
    conf = _json(results_path)["configurations"].get(cfg, {})
    chosen = conf.get("chosen", {})
    epochs = [r.get("train", {}).get("epochs") for r in conf.get("runs", [])]
    out.append(
      f"| {label} | {_fmt(chosen.get('validation_auc'))} | {json.dumps(chosen.get('changed', {}))} | {epochs} |"
    )
  out.append("")
  return out


def kuairand(root: str) -> List[str]:
  folder = os.path.join(root, "kuairand")
  names = ("Vanilla", "KAML", "Oracle")
  actions = ("like", "follow", "comment", "forward")
  cols = actions + ("overall",)
  dirs = {n: [os.path.join(folder, "runs", n, f"seed-{r}") for r in range(5)] for n in names}
  out = ["### KuaiRand, per-target AUC (calibrated): mean over 5 seeds ± seed std", ""]
  out += ["| configuration | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
  values = {n: {c: _seed_metric(dirs[n], "served", c, "auc") for c in cols} for n in names}
  for n in names:
    out.append(
      f"| {n} | "
      + " | ".join(f"{_fmt(values[n][c].mean())} ± {_fmt(values[n][c].std(ddof=1))}" for c in cols)
      + " |"
    )
  out += [
    "",
    "### KuaiRand, paired difference to Vanilla (same conversion per seed): mean, 95% t-interval over 5 seeds",
    "",
  ]
  out += ["| configuration | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
  for n in ("KAML", "Oracle"):
    cells = []
    for c in cols:
      d = values[n][c] - values["Vanilla"][c]
      half = T_975[4] * d.std(ddof=1) / np.sqrt(d.size)
      cells.append(
        f"{_fmt(d.mean(), sign=True)} [{_fmt(d.mean() - half, sign=True)}, {_fmt(d.mean() + half, sign=True)}]"
      )
    out.append(f"| {n} − Vanilla | " + " | ".join(cells) + " |")
  positives = _json(os.path.join(folder, "test_positives.json"))
  out += [
    "",
    "Test positives per seed (target traffic): "
    + "; ".join(
      f"seed {i}: " + ", ".join(f"{a} {v[a]}" for a in actions)
      for i, v in enumerate(positives.values())
    ),
    "",
  ]
  return out


def main(root: str) -> None:
  lines = ["## Simulated logs", ""] + simulated(root)
  if os.path.exists(os.path.join(root, "kuairand", "results.json")):
    lines += ["## KuaiRand", ""] + kuairand(root)
  print("\n".join(lines))


if __name__ == "__main__":
  main(sys.argv[1])
