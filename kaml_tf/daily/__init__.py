"""The daily production loop: validate, statistics, warm-started training, gate, promotion.

A scheduler runs `pipelines.daily --run_day=D` (--run_day: --day is
`pipelines.infer_schema`'s day column) once a day, after day D's logs have landed.

Layout:
  logs_root/schema.json          the logs' schema (every day's logs share it)
  logs_root/day=<D>/             day D's logs (TFRecord or Parquet), every row's `day` == D
  models_root/<D>/               day D's candidate model directory (`kaml_tf.training`), with
    stats_daily.parquet          the point-in-time statistics it trained with
    steps/<step>.json            one marker per finished step (validate, stats, train,
                                 evaluate, promote), holding the step's result
    day_report.json, .md         the day's figures, decision and reasons (the last step)
    .daily_lock                  held (flock) while a loop runs for day D
  models_root/production.json    {"model_dir", "day", "version", "export"}: the model serving
  exports_root/<version>/        SavedModels for TF Serving; a promotion on day D exports
                                 version D (later days, higher versions)

The conversion delay rule (`label_delay_days` = L): a day's labels are final L days after
it, so on run day D the newest complete day is C = D - L. The candidate is evaluated (with
production) on day C, and trains on those of the days C - K .. C - 1 that have logs
(K = `train_days`, flag --training_days); the point-in-time statistics (ADM's counts) read the days up to C - 1 only
(`StatsConfig(as_of="daily", end_day=C - 1)`), so no count in training or masking comes from
a day whose conversions may still arrive. Excluded, not marked partial: a partial count
looks like a low report rate and would mask actions the ad task does report.

Each step is idempotent: a finished step's marker is read instead of running it again, so a
killed loop reruns from the step it was in, and rerunning a finished day changes no file.
Production is only changed by the promote step, after its export is complete.

Exit codes of `pipelines.daily`: 0, the day finished (promoted or kept: the report says
which); 2, bad input (`errors.InputError`: no logs for the day, logs that fail validation,
no complete day to train on, a production model of another schema or architecture) with
production untouched; 1, any other error (including a second loop for the same day, which
refuses); 3, the day finished but its report holds alerts (`alerts`: production's own AUC fell
far below its last evaluation, the sign of broken labels).
"""
