"""A simulated month of the daily loop: warm-started, gated production next to retraining.

`run_month` simulates `month_days` days of logs of a world that drifts (new ad tasks appear,
reporting switches on `SimulationConfig.drift_day`), writes them one `day=<D>` folder per day
as the daily loop reads them, with day `corrupt_day`'s reported labels shuffled (a broken
upstream job), and runs `kaml_tf.daily.loop.run_day` on every day from `first_run_day` to the
second-to-last. After each day D it scores, on day D + 1 (the traffic the model serves next,
never seen by any model or by the gate; the clean copy of a corrupted day):

* `served`: the production model after day D's gate (what TF Serving would serve);
* `candidate`: day D's warm-started candidate, promoted or not;
* `scratch`: a model trained from scratch on exactly the candidate's days, statistics and
  settings (`loop.run_config` without the warm start).

Per-target overall AUC and LogLoss (the paper's evaluation). Every step is resumable: the
logs are written once (atomically, as a whole folder), the loop's days and the scratch runs
resume, and each day's scores are kept in `days/<D>.json`. `month.json` and `month.md` hold
the table and its summary.

Layout under `output_dir`: `data/logs/` (schema.json, day=<D>/), `data/clean/day=<C>/` (the
corrupted day's true logs), `models/`, `exports/` (the loop's), `scratch/<D>/`, `days/`, `month.json`,
`month.md`, `config.json` (the settings; a rerun with others is refused).
"""

import dataclasses
import json
import os
from typing import Any, Dict, List, Optional

import numpy as np

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
from kaml_tf import atomic
from kaml_tf import configs
from kaml_tf import schema as schema_lib
from kaml_tf.daily import config as daily_config
from kaml_tf.daily import layout
from kaml_tf.daily import loop
from kaml_tf.daily import plan as plan_lib
from kaml_tf.daily import production as production_lib
from kaml_tf.datasets.simulation import config as simulation_config
from kaml_tf.datasets.simulation import rows as rows_lib
from kaml_tf.datasets.simulation import simulator
from kaml_tf.logs import records
from kaml_tf.training import trainer

MODELS = ("served", "candidate", "scratch")
DATA, LOGS, CLEAN = "data", "logs", "clean"


@dataclasses.dataclass(frozen=True)
class MonthConfig:
  """The month's own settings (the world: `SimulationConfig`; the loop: `DailyConfig`)."""

  output_dir: str = configs.field(help="Folder of the month's logs, models and report.")
  month_days: int = configs.field(28, "Days simulated, 0 .. month_days - 1.")
  rows_per_day: int = configs.field(12_000, "Simulated rows (clicks) per day.")
  first_run_day: int = configs.field(
    7, "First day the daily loop runs (the days before are its history)."
  )
  corrupt_day: int = configs.field(
    -1, "Day whose reported labels are shuffled in the logs the loop reads; -1: none."
  )

  def __post_init__(self):
    if self.month_days < 3:
      raise configs.ConfigError.of(MonthConfig, "month_days", "must be >= 3")
    if not 1 <= self.first_run_day <= self.month_days - 2:
      raise configs.ConfigError.of(
        MonthConfig, "first_run_day", f"must be in [1, month_days - 2 = {self.month_days - 2}]"
      )
    if not -1 <= self.corrupt_day < self.month_days:
      raise configs.ConfigError.of(MonthConfig, "corrupt_day", "must be -1 or a simulated day")

  def simulation(self, world: simulation_config.SimulationConfig):
    """`world` resized to this month: its days and rows, every day a train day."""
    return dataclasses.replace(
      world,
      num_rows=self.month_days * self.rows_per_day,
      train_days=self.month_days - 1,
      test_days=1,
    )


def shuffled_labels(schema: schema_lib.Schema, columns: Dict[str, np.ndarray], seed: int):
  """The same rows with each reported label column permuted (true labels kept)."""
  rng = np.random.default_rng(seed)
  return {k: rng.permutation(v) if k in schema.label_keys else v for k, v in columns.items()}


def _write_day(schema: schema_lib.Schema, columns, root: str, day: int) -> None:
  folder = layout.day_folder(root, day)
  os.makedirs(folder, exist_ok=True)
  with records.LogWriter(schema, os.path.join(folder, "logs")) as writer:
    writer.write(columns)


def write_logs(month: MonthConfig, world: simulation_config.SimulationConfig) -> None:
  """Simulates the month into output_dir/data (logs/ and clean/) once, published whole."""
  data = os.path.join(month.output_dir, DATA)
  if os.path.exists(data):
    return
  config = month.simulation(world)
  schema = simulator.default_schema(config)
  columns = rows_lib.simulate(config)
  with atomic.atomic_directory(data) as tmp:
    logs, clean = os.path.join(tmp, LOGS), os.path.join(tmp, CLEAN)
    schema.save(layout.schema_file(logs))
    for day in range(month.month_days):
      rows = {k: v[columns[schema_lib.DAY] == day] for k, v in columns.items()}
      if day == month.corrupt_day:
        _write_day(schema, rows, clean, day)
        rows = shuffled_labels(schema, rows, config.seed)
      _write_day(schema, rows, logs, day)


def _check_settings(path: str, settings: Dict[str, Any]) -> None:
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      before = json.load(f)
    if before != settings:
      raise configs.ConfigError(
        f"{path}: this month was run with other settings; use another --output_dir"
      )
  else:
    atomic.write_text(path, json.dumps(settings, indent=2, sort_keys=True) + "\n")


def _test_files(month: MonthConfig, day: int) -> str:
  root = CLEAN if day == month.corrupt_day else LOGS
  return layout.day_logs(os.path.join(month.output_dir, DATA, root), day)


def _scratch(month: MonthConfig, config: daily_config.DailyConfig, report) -> str:
  """Trains (or finishes) the from-scratch twin of day D's candidate; returns its folder."""
  plan = plan_lib.DayPlan(**{**report["plan"], "train_days": tuple(report["plan"]["train_days"])})
  paths = layout.DayPaths(config.models_root, config.day)
  model_dir = os.path.join(month.output_dir, "scratch", str(config.day))
  trainer.train(loop.run_config(config, plan, paths, warm_start_from=""), model_dir, verbose=0)
  return model_dir


def run_day(month: MonthConfig, config: daily_config.DailyConfig) -> Dict[str, Any]:
  """Day D: the daily loop, the scratch twin, and the three models scored on day D + 1."""
  path = os.path.join(month.output_dir, "days", f"{config.day}.json")
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  report = loop.run_day(config)
  production = production_lib.read(layout.DayPaths(config.models_root, config.day).production)
  dirs = {
    "served": production.model_dir,
    "candidate": layout.DayPaths(config.models_root, config.day).model_dir,
    "scratch": _scratch(month, config, report),
  }
  test = _test_files(month, config.day + 1)
  row = {
    "day": config.day,
    "train_days": report["plan"]["train_days"],
    "promoted": report["promoted"],
    "reasons": report["reasons"],
    "alerts": report["alerts"],
    "served_from_day": production.day,
    "gate": {k: report["evaluation"][k] for k in ("candidate", "production")},
    "test_day": config.day + 1,
    **{name: loop.overall_metrics(d, test) for name, d in dirs.items()},
  }
  os.makedirs(os.path.dirname(path), exist_ok=True)
  atomic.write_text(path, json.dumps(row, indent=2, sort_keys=True) + "\n")
  return row


def run_month(
  month: MonthConfig,
  world: simulation_config.SimulationConfig,
  daily: daily_config.DailyConfig,
) -> Dict[str, Any]:
  """Runs (or resumes) the month; returns month.json's content (also written with month.md).

  Args:
    month: The month's settings.
    world: The world to simulate (its rows and days are set by `month`).
    daily: The loop's settings; its day and folders are set for each day.
  """
  os.makedirs(month.output_dir, exist_ok=True)
  _check_settings(
    os.path.join(month.output_dir, "config.json"),
    {
      "month": configs.to_dict(month),
      "simulation": month.simulation(world).to_dict(),
      "daily": json.loads(json.dumps(dataclasses.asdict(daily), default=list)),
    },
  )
  write_logs(month, world)
  folders = {name: os.path.join(month.output_dir, name) for name in ("models", "exports")}
  folders["logs"] = os.path.join(month.output_dir, DATA, LOGS)
  days = [
    run_day(
      month,
      dataclasses.replace(
        daily,
        day=day,
        logs_root=folders["logs"],
        models_root=folders["models"],
        exports_root=folders["exports"],
      ),
    )
    for day in range(month.first_run_day, month.month_days - 1)
  ]
  result = {"drift_day": world.drift_day, "corrupt_day": month.corrupt_day, "days": days}
  result["summary"] = summarise(days)
  atomic.write_text(
    os.path.join(month.output_dir, "month.json"), json.dumps(result, indent=2) + "\n"
  )
  atomic.write_text(os.path.join(month.output_dir, "month.md"), to_markdown(result))
  return result


def _mean(values: List[Optional[float]]) -> Optional[float]:
  kept = [v for v in values if v is not None]
  return float(np.mean(kept)) if kept else None


def summarise(days: List[Dict[str, Any]]) -> Dict[str, Any]:
  """Mean test AUC / LogLoss of each model over the days, and the days the gate kept."""
  summary = {
    name: {m: _mean([d[name][m] for d in days]) for m in ("auc", "logloss")} for name in MODELS
  }
  summary["served_minus_scratch_auc"] = [
    None
    if d["served"]["auc"] is None or d["scratch"]["auc"] is None
    else d["served"]["auc"] - d["scratch"]["auc"]
    for d in days
  ]
  summary["kept_days"] = [d["day"] for d in days if not d["promoted"]]
  summary["alert_days"] = [d["day"] for d in days if d["alerts"]]
  return summary


def _cell(value: Optional[float]) -> str:
  return "n/a" if value is None else f"{value:.4f}"


def to_markdown(result: Dict[str, Any]) -> str:
  """month.md: one row per run day, then the means."""
  lines = [
    "# A simulated month of the daily loop",
    "",
    f"Drift on day {result['drift_day']}; day {result['corrupt_day']}'s labels shuffled "
    "(-1: none). Each row: run day D, the gate's decision, and per-target overall AUC / "
    "LogLoss on day D + 1 of the model served after D, of D's warm-started candidate and of "
    "a model trained from scratch on the candidate's days.",
    "",
    "| day | trains on | gate | served (from day) | served AUC | candidate AUC | scratch AUC "
    "| served LogLoss | candidate LogLoss | scratch LogLoss |",
    "|---|---|---|---|---|---|---|---|---|---|",
  ]
  for d in result["days"]:
    span = f"{d['train_days'][0]}-{d['train_days'][-1]}"
    gate = "promoted" if d["promoted"] else "kept"
    cells = [_cell(d[name][m]) for m in ("auc", "logloss") for name in MODELS]
    lines.append(
      f"| {d['day']} | {span} | {gate} | {d['served_from_day']} | " + " | ".join(cells) + " |"
    )
  summary = result["summary"]
  means = [_cell(summary[name][m]) for m in ("auc", "logloss") for name in MODELS]
  lines += [f"| mean | | | | {' | '.join(means)} |", ""]
  kept = result["summary"]["kept_days"]
  lines.append(f"Days the gate kept production: {kept or 'none'}.")
  for d in result["days"]:
    if not d["promoted"]:
      lines.append(f"- day {d['day']}: " + "; ".join(d["reasons"]))
  alerted = [d for d in result["days"] if d["alerts"]]
  lines += ["", f"Days with alerts: {[d['day'] for d in alerted] or 'none'}."]
  lines += [f"- day {d['day']}: " + "; ".join(d["alerts"]) for d in alerted]
  return "\n".join(lines) + "\n"
