from kaml_tf.daily import layout
from kaml_tf.daily import report

REPORT = {
  "day": 4,
  "label_delay_days": 1,
  "plan": {"run_day": 4, "eval_day": 3, "train_days": [1, 2], "stats_end_day": 2},
  "train": {"warm_start_from": "/m/2"},
  "evaluation": {
    "candidate": {"auc": 0.61234, "logloss": 0.4, "count": 1200},
    "production": {"auc": 0.65, "logloss": None, "count": 1200},
  },
  "promoted": False,
  "reasons": ["auc 0.6123 is 0.0377 lower than production's 0.6500 (tolerance 0.002)"],
  "production": {"model_dir": "/m/2", "day": 2, "version": 2, "export": "/e/2"},
}


def test_markdown():
  assert report.to_markdown(REPORT) == (
    "# Day 4: KEPT production\n"
    "\n"
    "Evaluated on day 3; trained on days [1, 2] (label delay 1 day(s)), warm start: /m/2.\n"
    "\n"
    "| model | AUC | LogLoss | samples |\n"
    "|---|---|---|---|\n"
    "| candidate | 0.6123 | 0.4000 | 1,200 |\n"
    "| production | 0.6500 | - | 1,200 |\n"
    "\n"
    "Reasons:\n"
    "- auc 0.6123 is 0.0377 lower than production's 0.6500 (tolerance 0.002)\n"
    "\n"
    "Production: /m/2 (day 2, version 2).\n"
  )


def test_write_then_read(tmp_path):
  paths = layout.DayPaths(str(tmp_path), 4)
  report.write(paths, REPORT)
  assert report.read(paths) == REPORT
  assert open(paths.report_md, encoding="utf-8").readline() == "# Day 4: KEPT production\n"


def test_markdown_lists_alerts():
  text = report.to_markdown({**REPORT, "alerts": ["production's AUC fell"]})
  assert text.endswith(
    "\nALERTS:\n- production's AUC fell\n\nProduction: /m/2 (day 2, version 2).\n"
  )
