"""Tests of the day report's alerts (`kaml_tf.daily.alerts`), on hand-made reports."""

from kaml_tf.daily import alerts


def _report(promoted, candidate_auc, production_auc, eval_day=5):
  def metrics(auc):
    return None if auc is None else {"auc": auc, "logloss": 0.4}

  return {
    "promoted": promoted,
    "plan": {"eval_day": eval_day},
    "evaluation": {"candidate": metrics(candidate_auc), "production": metrics(production_auc)},
  }


def test_served_auc_is_the_promoted_candidates_or_the_kept_productions():
  assert alerts.served_auc(_report(True, 0.71, 0.70)) == 0.71
  assert alerts.served_auc(_report(False, 0.69, 0.70)) == 0.70
  assert alerts.served_auc(_report(True, 0.71, None)) == 0.71


def test_a_drop_beyond_the_threshold_alerts_naming_both_days():
  # Served 0.71 after day 5's evaluation; scored 0.60 on day 6: 0.11 > 0.05.
  (message,) = alerts.auc_drop(_report(True, 0.71, 0.70), {"auc": 0.60}, 6, 0.05)
  assert message.startswith("production's AUC fell from 0.7100 (day 5) to 0.6000 on day 6")


def test_no_alert_within_the_threshold_off_or_without_history():
  previous = _report(False, 0.69, 0.70)
  assert alerts.auc_drop(previous, {"auc": 0.66}, 6, 0.05) == []  # 0.04 <= 0.05
  assert alerts.auc_drop(previous, {"auc": 0.50}, 6, 0.0) == []  # off
  assert alerts.auc_drop(None, {"auc": 0.50}, 6, 0.05) == []  # first day
  assert alerts.auc_drop(previous, None, 6, 0.05) == []  # nothing serves
  assert alerts.auc_drop(previous, {"auc": None}, 6, 0.05) == []  # undefined AUC
