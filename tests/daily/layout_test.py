from kaml_tf.daily import layout


def test_available_days_reads_day_folders_only(tmp_path):
  for name in ("day=10", "day=2", "day=x", "other"):
    (tmp_path / name).mkdir()
  (tmp_path / "schema.json").write_text("{}")
  assert layout.available_days(str(tmp_path)) == [2, 10]
  assert layout.available_days(str(tmp_path / "missing")) == []


def test_day_paths():
  p = layout.DayPaths("/m", 4)
  assert (p.model_dir, p.stats, p.report_json, p.production) == (
    "/m/4",
    "/m/4/stats_daily.parquet",
    "/m/4/day_report.json",
    "/m/production.json",
  )
  assert layout.day_logs("/l", 4) == "/l/day=4/*"
