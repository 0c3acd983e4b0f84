"""One day of the daily loop: the steps of `kaml_tf.daily`, each run once per day."""

import dataclasses
import glob
import logging
import os
from typing import Any, Dict, List, Optional

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)

from kaml_tf import schema as schema_lib
from kaml_tf.daily import alerts as alerts_lib
from kaml_tf.daily import config as daily_config
from kaml_tf.daily import errors
from kaml_tf.daily import gate
from kaml_tf.daily import layout
from kaml_tf.daily import lock
from kaml_tf.daily import markers
from kaml_tf.daily import plan as plan_lib
from kaml_tf.daily import production as production_lib
from kaml_tf.daily import report as report_lib
from kaml_tf.data import masks
from kaml_tf.data import point_in_time
from kaml_tf.data import stats as stats_lib
from kaml_tf.evaluation import evaluator
from kaml_tf.logs import check
from kaml_tf.models import config as model_config_lib
from kaml_tf.serving import exporter
from kaml_tf.training import config as config_lib
from kaml_tf.training import model_dir as model_dir_lib
from kaml_tf.training import trained_model
from kaml_tf.training import trainer

logger = logging.getLogger(__name__)


def _logs_schema(config: daily_config.DailyConfig) -> schema_lib.Schema:
  path = layout.schema_file(config.logs_root)
  if not os.path.exists(path):
    raise errors.InputError(f"{path} is missing: the logs' schema must be beside the day folders")
  return schema_lib.Schema.load(path)


def _check_day_present(config: daily_config.DailyConfig) -> None:
  folder = layout.day_folder(config.logs_root, config.day)
  if not glob.glob(layout.day_logs(config.logs_root, config.day)):
    raise errors.InputError(f"no logs for day {config.day}: {folder} is missing or empty")


def _check_production(
  current: Optional[production_lib.Production],
  schema: schema_lib.Schema,
  model: model_config_lib.ModelConfig,
  day: int,
) -> None:
  """Production must be of the logs' schema and the model flags' architecture, and not from a
  later day (versions only grow)."""
  if current is None:
    return
  theirs = schema_lib.Schema.load(schema_lib.schema_path(current.model_dir))
  if theirs.fingerprint() != schema.fingerprint():
    raise errors.InputError(
      f"production model {current.model_dir} was trained on schema {theirs.fingerprint()} "
      f"but the logs' schema is {schema.fingerprint()}; a new schema needs a model trained "
      "from scratch and promoted by hand"
    )
  diffs = model_dir_lib.config_differences(
    config_lib.RunConfig.load(current.model_dir).model.to_dict(), model.to_dict()
  )
  if diffs:
    raise errors.InputError(
      f"production model {current.model_dir} has another architecture than the model flags "
      f"({'; '.join(diffs)}), so it cannot warm-start the candidate; restore the flags, or "
      "train a model from scratch and promote it by hand"
    )
  if current.day > day:
    raise errors.InputError(
      f"production comes from day {current.day}, after day {day}; rerun only days from "
      f"{current.day} on"
    )


def _validate(config: daily_config.DailyConfig, schema: schema_lib.Schema) -> Dict[str, Any]:
  result = check.check_logs(layout.day_logs(config.logs_root, config.day), schema)
  summary = result.to_dict()
  if not result.ok:
    raise errors.InputError(
      f"day {config.day}'s logs fail validation (pipelines.validate_logs tells more): "
      f"{summary['rows']} good rows, problems {summary['problems']['by_field']}"
    )
  if summary["day_range"] != [config.day, config.day]:
    raise errors.InputError(
      f"{layout.day_folder(config.logs_root, config.day)} holds rows of days "
      f"{summary['day_range']}, expected day {config.day} only"
    )
  return {"rows": summary["rows"], "files": summary["files"], "ad_tasks": summary["ad_tasks"]}


def _stats(
  config: daily_config.DailyConfig,
  schema: schema_lib.Schema,
  plan: plan_lib.DayPlan,
  paths: layout.DayPaths,
) -> Dict[str, Any]:
  """Point-in-time statistics over the complete days that the training rows look back on."""
  first = plan.train_days[0] - config.window_days
  days = [d for d in layout.available_days(config.logs_root) if first <= d <= plan.stats_end_day]
  files = ",".join(layout.day_logs(config.logs_root, d) for d in days)
  stats_config = stats_lib.StatsConfig(
    window_days=config.window_days, end_day=plan.stats_end_day, as_of=stats_lib.DAILY
  )
  stats = stats_lib.compute_stats(files, schema, stats_config)
  stats.save(paths.stats)
  return {"days": days, "rows_read": stats.rows_read, "ad_tasks": stats.num_ad_tasks}


def run_config(
  config: daily_config.DailyConfig,
  plan: plan_lib.DayPlan,
  paths: layout.DayPaths,
  warm_start_from: str,
) -> config_lib.RunConfig:
  """The candidate's training run: ADM on point-in-time statistics, the plan's days."""
  return config_lib.RunConfig(
    data=config_lib.DataConfig(
      schema_path=layout.schema_file(config.logs_root),
      train_files=",".join(layout.day_logs(config.logs_root, d) for d in plan.train_days),
      stats_path=paths.stats,
      mask_policy=masks.ADM,
      stats_mode=point_in_time.POINT_IN_TIME,
    ),
    model=config.model,
    loss=config.loss,
    optim=dataclasses.replace(config.optim, warm_start_from=warm_start_from),
  )


def _train(
  config: daily_config.DailyConfig,
  plan: plan_lib.DayPlan,
  paths: layout.DayPaths,
  current: Optional[production_lib.Production],
) -> Dict[str, Any]:
  warm_start_from = current.model_dir if current else ""
  result = trainer.train(
    run_config(config, plan, paths, warm_start_from), paths.model_dir, verbose=0
  )
  return {"warm_start_from": warm_start_from, "steps": result.steps, "epochs": result.epochs}


def overall_metrics(model_dir: str, files: str) -> Dict[str, Any]:
  """Per-target overall AUC / LogLoss of `model_dir` on `files` (NaN as null)."""
  model = trained_model.load(model_dir)
  metrics = evaluator.metrics_of(evaluator.predict(model, files), model.schema.actions)
  return evaluator.strict_json({**metrics["overall"], "actions": metrics["actions"]})


def _evaluate(
  config: daily_config.DailyConfig,
  plan: plan_lib.DayPlan,
  paths: layout.DayPaths,
  current: Optional[production_lib.Production],
) -> Dict[str, Any]:
  files = layout.day_logs(config.logs_root, plan.eval_day)
  return {
    "candidate": overall_metrics(paths.model_dir, files),
    "production": overall_metrics(current.model_dir, files) if current else None,
    "production_model_dir": current.model_dir if current else None,
  }


def _nan_for_null(metrics: Optional[Dict[str, Any]]) -> Optional[Dict[str, float]]:
  if metrics is None:
    return None
  return {k: float("nan") if metrics[k] is None else metrics[k] for k in ("auc", "logloss")}


def _promote(
  config: daily_config.DailyConfig, evaluation: Dict[str, Any], paths: layout.DayPaths
) -> Dict[str, Any]:
  decision = gate.decide(
    _nan_for_null(evaluation["candidate"]),
    _nan_for_null(evaluation["production"]),
    config.auc_tolerance,
    config.logloss_tolerance,
  )
  result = {"promoted": decision.promote, "reasons": decision.reasons}
  if decision.promote:
    version = config.day
    export = os.path.join(config.exports_root, str(version))
    # A loop killed after its export and before production.json reuses the complete export.
    if not os.path.exists(export):
      export = exporter.export_model(paths.model_dir, config.exports_root, version=version)
    production_lib.write(
      paths.production,
      production_lib.Production(
        model_dir=os.path.abspath(paths.model_dir), day=config.day, version=version, export=export
      ),
    )
    result.update(version=version, export=export)
  return result


def _alerts(config: daily_config.DailyConfig, plan, evaluation) -> List[str]:
  """The day's alerts (`alerts`), against the latest earlier finished day's report."""
  earlier = [d for d in layout.finished_days(config.models_root) if d < config.day]
  previous = report_lib.read(layout.DayPaths(config.models_root, earlier[-1])) if earlier else None
  return alerts_lib.auc_drop(
    previous, evaluation["production"], plan.eval_day, config.auc_alert_drop
  )


def _day_report(config, plan, paths, validation, stats, train, evaluation, promotion):
  """day_report.json's content: the steps' results, the decision and production after it."""
  after = production_lib.read(paths.production)
  return {
    "day": config.day,
    "label_delay_days": config.label_delay_days,
    "plan": {**dataclasses.asdict(plan), "train_days": list(plan.train_days)},
    "validation": validation,
    "stats": stats,
    "train": train,
    "evaluation": evaluation,
    "promoted": promotion["promoted"],
    "reasons": promotion["reasons"],
    "alerts": _alerts(config, plan, evaluation),
    "production": dataclasses.asdict(after) if after else None,
  }


def run_day(config: daily_config.DailyConfig) -> Dict[str, Any]:
  """Runs (or finishes, or just reads back) day `config.day`'s loop.

  Returns:
    The day report (day_report.json's content): `promoted`, `reasons`, the plan, the figures.

  Raises:
    errors.InputError: bad input (see `kaml_tf.daily`); production is untouched.
    lock.DayLockedError: another loop runs for the same day.
  """
  paths = layout.DayPaths(config.models_root, config.day)
  _check_day_present(config)
  schema = _logs_schema(config)
  with lock.DayLock(paths.lock):
    if os.path.exists(paths.report_json):
      logger.info("day %d already finished: %s", config.day, paths.report_json)
      return report_lib.read(paths)
    current = production_lib.read(paths.production)
    if current is not None and current.day == config.day:
      current = None  # This day promoted itself before being killed; compare as before.
    _check_production(current, schema, config.model, config.day)
    validation = markers.once(paths.steps, "validate", lambda: _validate(config, schema))
    plan = plan_lib.plan_day(
      config.day,
      config.label_delay_days,
      config.train_days,
      layout.available_days(config.logs_root),
    )
    stats = markers.once(paths.steps, "stats", lambda: _stats(config, schema, plan, paths))
    train = markers.once(paths.steps, "train", lambda: _train(config, plan, paths, current))
    evaluation = markers.once(
      paths.steps, "evaluate", lambda: _evaluate(config, plan, paths, current)
    )
    promotion = markers.once(paths.steps, "promote", lambda: _promote(config, evaluation, paths))
    report = _day_report(config, plan, paths, validation, stats, train, evaluation, promotion)
    report_lib.write(paths, report)
    return report
