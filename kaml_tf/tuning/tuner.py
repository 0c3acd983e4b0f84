"""Tunes a run's settings on its validation set only, then writes the resolved config.

Every trial is a full early-stopped training run in `TUNE_DIR/trials/<id>/`, scored by the
best validation per-target overall AUC its early stopping saw (`TrainResult.best`). The test
day is never read: the job refuses a base run without a validation set. Trials are named by
a hash of their config, so a killed job reruns to the same proposals, reads the finished
trials' scores back from their `train_summary.json`, resumes the interrupted one from its
checkpoint and goes on.

Outputs (atomic):
  TUNE_DIR/config.json          the best trial's `RunConfig` (`RunConfig.load(TUNE_DIR)`)
  TUNE_DIR/tuning_report.json   space, budget, every trial's point and score, the best
  TUNE_DIR/tuning_report.md     the same as a table
"""

import dataclasses
import hashlib
import json
import logging
import os
from typing import Any, Callable, Dict, List, Optional

import kaml_tf  # noqa: F401
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf import atomic
from kaml_tf import configs
from kaml_tf.training import config as config_lib
from kaml_tf.training import model_dir as model_dir_lib
from kaml_tf.training import trainer
from kaml_tf.tuning import search as search_lib
from kaml_tf.tuning import search_space as space_lib

TRIALS_DIR = "trials"
REPORT_JSON = "tuning_report.json"
REPORT_MD = "tuning_report.md"

# Runs one trial: (run config, trial directory) -> its train_summary as a dict.
TrialRunner = Callable[[config_lib.RunConfig, str], Dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class TuneConfig:
  """How to search (help: each field's)."""

  space: space_lib.SearchSpace = configs.field(help="Candidate values per knob.")
  budget: int = configs.field(
    12,
    "Trials in total, the base run included. Give every compared method the same budget.",
    flag="tune_budget",
  )
  strategy: str = configs.field(
    search_lib.COORDINATE,
    "coordinate: one knob at a time from the base run; random: uniform draws from the grid.",
    flag="tune_search",
    choices=search_lib.STRATEGIES,
  )
  seed: int = configs.field(
    0, "Seed of random search (each trial trains with the base run's seed).", flag="tune_seed"
  )

  def __post_init__(self):
    if self.budget < 1:
      raise config_lib.ConfigError.of(TuneConfig, "budget", f"must be >= 1, got {self.budget}")
    if self.strategy not in search_lib.STRATEGIES:
      raise config_lib.ConfigError.of(
        TuneConfig,
        "strategy",
        f"unknown {self.strategy!r}; expected one of {list(search_lib.STRATEGIES)}",
      )


def check_base(run_config: config_lib.RunConfig) -> None:
  """A tuned run must early-stop on a validation set, never on the test day."""
  data, optim = run_config.data, run_config.optim
  if not (data.validation_days or data.validation_files):
    raise config_lib.ConfigError(
      "validation_days: tuning scores trials on validation data only; give "
      "--validation_days=K (the last K days of --train) or --validation=GLOB"
    )
  if optim.early_stopping_patience < 1:
    raise config_lib.ConfigError(
      "early_stopping_patience: tuning compares each trial at its best validation "
      "checkpoint; give --early_stopping_patience >= 1"
    )


def trial_id(run_config: config_lib.RunConfig) -> str:
  """A stable name for a trial: 12 hex digits of the hash of its whole config, so that two
  searches from different base runs never share a trial folder."""
  return hashlib.sha1(run_config.to_json().encode("utf-8")).hexdigest()[:12]


def _finished_summary(trial_dir: str, run_config: config_lib.RunConfig) -> Optional[Dict]:
  """The trial's summary if a previous job finished it with this very config."""
  summary_path = os.path.join(trial_dir, model_dir_lib.SUMMARY_FILE)
  if not os.path.exists(summary_path):
    return None
  if config_lib.RunConfig.load(trial_dir) != run_config:
    return None
  with open(summary_path, encoding="utf-8") as f:
    return json.load(f)


def train_trial(run_config: config_lib.RunConfig, trial_dir: str) -> Dict[str, Any]:
  """Trains one trial in-process (resuming it if it was interrupted)."""
  tf.keras.backend.clear_session()
  result = trainer.train(run_config, trial_dir)
  return json.loads(json.dumps(dataclasses.asdict(result)))


def _score(summary: Dict[str, Any]) -> Optional[float]:
  best = summary.get("best") or {}
  return best.get("score")


def tune(
  base: config_lib.RunConfig,
  tune_config: TuneConfig,
  tune_dir: str,
  run_trial: TrialRunner = train_trial,
) -> Dict[str, Any]:
  """Searches, writes the resolved config and the report, and returns the report.

  Args:
    base: The run to tune; its values are the search's starting point.
    tune_config: Space, budget and strategy.
    tune_dir: Output directory.
    run_trial: Trains one trial; tests pass a cheaper one.
  """
  check_base(base)
  schema = schema_lib.Schema.load(base.data.schema_path)
  base.validate_against(schema.num_actions)
  coordinates = space_lib.coordinates(tune_config.space, base, schema)
  proposals = search_lib.proposals(
    tune_config.strategy,
    space_lib.base_point(base, schema),
    coordinates,
    tune_config.budget,
    tune_config.seed,
  )
  trials: List[Dict[str, Any]] = []
  score = None
  while True:
    try:
      point = proposals.send(score) if trials else next(proposals)
    except StopIteration:
      break
    trials.append(_run(point, base, schema, tune_dir, run_trial))
    score = trials[-1]["score"]
    logging.info(
      "tune: trial %d/%d %s scored %s", len(trials), tune_config.budget, trials[-1]["id"], score
    )
  report = _report(base, tune_config, coordinates, trials)
  _write(report, tune_dir, schema)
  return report


def _run(point, base, schema, tune_dir, run_trial) -> Dict[str, Any]:
  run_config = space_lib.apply(point, base, schema)
  trial_dir = os.path.join(tune_dir, TRIALS_DIR, trial_id(run_config))
  summary = _finished_summary(trial_dir, run_config)
  reused = summary is not None
  if not reused:
    summary = run_trial(run_config, trial_dir)
  return {
    "id": trial_id(run_config),
    "point": point,
    "score": _score(summary),
    "best": summary.get("best"),
    "epochs": summary.get("epochs"),
    "seconds": summary.get("seconds"),
    "reused": reused,
    "config": run_config.to_dict(),
  }


def _report(base, tune_config, coordinates, trials) -> Dict[str, Any]:
  scored = [t for t in trials if t["score"] is not None]
  best = max(scored, key=lambda t: t["score"]) if scored else None
  return {
    "metric": "validation per_target_overall_auc (higher is better)",
    "strategy": tune_config.strategy,
    "budget": tune_config.budget,
    "seed": tune_config.seed,
    "space": dataclasses.asdict(tune_config.space),
    "searched": {c.name: list(c.values) for c in coordinates},
    "base_config": base.to_dict(),
    "trials": trials,
    "best": None
    if best is None
    else {"id": best["id"], "score": best["score"], "point": best["point"]},
  }


def _write(report: Dict[str, Any], tune_dir: str, schema: schema_lib.Schema) -> None:
  if report["best"] is None:
    raise RuntimeError(f"{tune_dir}: no trial produced a validation score")
  best = next(t for t in report["trials"] if t["id"] == report["best"]["id"])
  config_lib.RunConfig.from_dict(best["config"]).save(tune_dir)
  atomic.write_text(
    os.path.join(tune_dir, REPORT_JSON), json.dumps(report, indent=2, sort_keys=True) + "\n"
  )
  atomic.write_text(os.path.join(tune_dir, REPORT_MD), format_markdown(report))


def _changed(point: Dict[str, Any], base: Dict[str, Any]) -> str:
  diffs = [f"{k}={v}" for k, v in sorted(point.items()) if base.get(k) != v]
  return ", ".join(diffs) or "(base run)"


def format_markdown(report: Dict[str, Any]) -> str:
  """The trials as a markdown table, best marked, in the order they ran."""
  base = report["trials"][0]["point"]
  lines = [
    f"# Tuning report ({report['strategy']} search, budget {report['budget']})",
    "",
    f"Score: {report['metric']}.",
    "",
    "| # | trial | changed from base | epochs | best epoch | validation score |",
    "|---|---|---|---|---|---|",
  ]
  for i, trial in enumerate(report["trials"], 1):
    score = trial["score"]
    mark = " **best**" if trial["id"] == report["best"]["id"] else ""
    best_epoch = (trial["best"] or {}).get("epoch")
    lines.append(
      f"| {i} | {trial['id']} | {_changed(trial['point'], base)} | "
      f"{trial['epochs']} | {best_epoch} | "
      f"{'-' if score is None else f'{score:.4f}'}{mark} |"
    )
  return "\n".join(lines) + "\n"
