"""Runs an experiment suite: every configuration K times with different seeds, resumably.

Run r (0-based) of every configuration uses seed `base_seed + r` for initialisation and
shuffling, so the configurations are compared on the same seeds. Simulated suites train on
`data_dir/train-*` and evaluate on `data_dir/test-*` (the output of `pipelines.simulate`); the
`kuairand` suite first converts the KuaiRand log with seed `base_seed + r` (a new draw of every
video's target and reported actions) and trains run r of every configuration on it.

Under the validation protocol (`experiments.protocol`, the default) each configuration's
settings are first chosen on validation (`kaml_tf.tuning`, the same number of trials for every
configuration, trials trained with the base seed on the first run's data); every run then
trains with the chosen settings, early-stopped and calibrated on its validation days, ADM
joining point-in-time statistics. Before any training the job counts each action's test
positives (its target traffic) and fails below `min_test_positives`, and checks that every
configuration's search space holds `trials_per_config` distinct settings.

Layout of the output directory OUT:

  OUT/experiment.json                       the experiment's fixed settings, checked on restart
  OUT/stats.parquet                         simulated, fixed epochs: ADM statistics (one window)
  OUT/stats_daily.parquet                   simulated, validation: point-in-time statistics
  OUT/test_positives.json                   each test split's positives per action
  OUT/data/seed-<r>/                        kuairand: conversion r and its statistics
  OUT/tuning/<configuration>/               validation: its search (kaml_tf.tuning.tuner layout)
  OUT/runs/<configuration>/seed-<r>/model/  the run's model directory (pipelines.train layout)
  OUT/runs/<configuration>/seed-<r>/predictions.npz   its test predictions (the intervals)
  OUT/runs/<configuration>/seed-<r>/metrics.json   its evaluation, written atomically, last
  OUT/results.json, results.md, *.png       the report (experiments.report)

A run is finished when its metrics.json exists. A restarted experiment skips finished runs
(evaluating again, without training, one whose metrics lack the true-label block its suite
asks for or whose predictions are missing) and reruns the others, the trainer resuming each
from its latest checkpoint; a configuration's search reads its finished trials back. The
statistics and conversions are only (re)computed when an unfinished run needs them and they
are missing. The fixed settings (suite, data, training, protocol, search space, model
overrides, base seed) may not change between restarts (finished runs would silently mix two
experiments); `repeats` may grow and `configs` may change. Statistics cover every train day
(the window from the first to the last day of the train logs).
"""

import contextlib
import dataclasses
import json
import os
import sys
import time
import types
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf import configs as configs_lib
from kaml_tf.logs import records
from kaml_tf import schema as schema_lib
from kaml_tf.data import masks as masks_lib
from kaml_tf.data import stats as stats_lib
from kaml_tf.evaluation import evaluator
from experiments import intervals as intervals_lib
from experiments import protocol as protocol_lib
from experiments import report as report_lib
from experiments import suites as suites_lib
from kaml_tf import atomic
from kaml_tf.datasets.kuairand import conversion
from kaml_tf.models import config as model_config_lib
from kaml_tf.training import config as config_lib
from kaml_tf.training import model_dir as model_dir_lib
from kaml_tf.training import optimizers
from kaml_tf.training import trained_model
from kaml_tf.training import trainer
from kaml_tf.data import point_in_time
from kaml_tf.tuning import search as search_lib
from kaml_tf.tuning import search_space as space_lib
from kaml_tf.tuning import tuner

MANIFEST_FILE = "experiment.json"
STATS_FILE = "stats.parquet"
DAILY_STATS_FILE = "stats_daily.parquet"
RUNS_DIR = "runs"
TUNING_DIR = "tuning"
DATA_DIR = "data"
MODEL_DIR = "model"
METRICS_FILE = "metrics.json"
POSITIVES_FILE = "test_positives.json"
TRAIN_PATTERN = "train-*"
TEST_PATTERN = "test-*"

Progress = Callable[[str], None]


class ExperimentError(RuntimeError):
  """The output directory holds another experiment, or the data does not fit the suite."""


def _print_progress(message: str) -> None:
  print(message, file=sys.stdout, flush=True)


def _json_ready(value: Any) -> Any:
  if isinstance(value, Mapping):
    return {k: _json_ready(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_json_ready(v) for v in value]
  return value


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
  """Everything an experiment depends on, each field's help in its metadata
  (`kaml_tf.configs.field`; OUT is the module docstring's layout). An invalid value raises
  `kaml_tf.configs.ConfigError` naming the field, its message starting with the field's name.
  """

  suite: str = configs_lib.field(
    help="The experiment suite (experiments.suites).", choices=tuple(suites_lib.SUITES)
  )
  output_dir: str = configs_lib.field(
    help="OUT: runs, statistics, conversions and the report (module docstring)."
  )
  data_dir: str = configs_lib.field(
    "",
    "Simulated suites: the output folder of pipelines.simulate (schema.json, train-*, test-*); "
    "empty for kuairand.",
  )
  repeats: int = configs_lib.field(3, "Runs per configuration (seeds --seed, --seed + 1, ...).")
  base_seed: int = configs_lib.field(
    0, "Run r of every configuration uses seed base_seed + r.", flag="seed"
  )
  epochs: int = configs_lib.field(1, "Training epochs of every run.")
  batch_size: int = configs_lib.field(5000, "Global batch size of every run.")
  learning_rate: float = configs_lib.field(1e-3, "Adam learning rate of every run.")
  embedding_optimizer: str = configs_lib.field(
    optimizers.ADAM,
    "Optimizer of the embedding tables of every run (adam: one Adam for every variable; "
    "adagrad or ftrl at --embedding_learning_rate; kaml_tf.training.optimizers).",
    choices=optimizers.EMBEDDING_OPTIMIZERS,
  )
  embedding_learning_rate: float = configs_lib.field(
    config_lib.DEFAULT_EMBEDDING_LEARNING_RATE,
    "Learning rate of --embedding_optimizer=adagrad or ftrl in every run (not used with adam).",
  )
  steps_per_epoch: Optional[int] = configs_lib.field(
    None, "Cap on steps per epoch of every run (None: the whole train split)."
  )
  stats_path: str = configs_lib.field(
    "",
    "Simulated suites: ADM statistics to use instead of computing OUT/stats.parquet.",
    flag="stats",
  )
  kuairand_log: str = configs_lib.field("", "kuairand: the KuaiRand log, converted once per seed.")
  kuairand_user_features: str = configs_lib.field("", "kuairand: the KuaiRand user features CSV.")
  configs: Tuple[str, ...] = configs_lib.field(
    (), "Run only these configurations of the suite (default: all)."
  )
  model_overrides: Mapping[str, Any] = configs_lib.field(
    help="ModelConfig fields shared by every configuration (e.g. smaller widths); `backbone` "
    "and `hke` belong to the configurations.",
    default_factory=dict,
  )
  shuffle_buffer: int = configs_lib.field(
    100_000, "Rows in the training shuffle buffer of every run."
  )
  command: str = configs_lib.field("", "The command line that started the experiment (results.md).")
  protocol: protocol_lib.ProtocolConfig = configs_lib.field(
    help="How runs are trained and selected (experiments.protocol).",
    default_factory=protocol_lib.ProtocolConfig,
  )
  search_space: Mapping[str, Any] = configs_lib.field(
    help="validation protocol: SearchSpace fields replacing experiments.protocol.DEFAULT_SPACE's.",
    default_factory=dict,
  )
  bootstrap_resamples: int = configs_lib.field(
    1000,
    "Bootstrap resamples of the test rows for the report's 95% intervals (0: none).",
  )
  interval_method: str = configs_lib.field(
    intervals_lib.BOOTSTRAP,
    "How the report's 95% intervals are drawn: bootstrap (row resampling, every run "
    "rescored per resample) or normal (its normal approximation from each row's influence, "
    "DeLong's covariance for the AUCs; one pass over the rows, for test splits of millions "
    "of rows).",
    choices=intervals_lib.METHODS,
  )
  min_test_positives: int = configs_lib.field(
    300,
    "Fail unless every action's target traffic in the test split has at least this many "
    "positives (0: no check).",
  )

  def __post_init__(self):
    object.__setattr__(self, "configs", tuple(self.configs))
    # Lists (from JSON or flags) become tuples: the overrides are read-only and comparable.
    overrides = {
      k: tuple(v) if isinstance(v, list) else v for k, v in dict(self.model_overrides).items()
    }
    object.__setattr__(self, "model_overrides", types.MappingProxyType(overrides))
    object.__setattr__(self, "search_space", types.MappingProxyType(dict(self.search_space)))
    with _naming("search_space"):
      protocol_lib.search_space(self.search_space)
    if self.search_space and not self.protocol.selects:
      raise _error("search_space", "only the validation protocol searches settings")
    if self.interval_method not in intervals_lib.METHODS:
      raise _error(
        "interval_method",
        f"must be one of {list(intervals_lib.METHODS)}, got {self.interval_method!r}",
      )
    for name in ("min_test_positives", "bootstrap_resamples"):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _error(name, f"must be an integer >= 0, got {value!r}")
    with _naming("suite"):
      suite = suites_lib.get(self.suite)
    with _naming("configs"):
      suite = suite.select(self.configs)
    if not self.output_dir:
      raise _error("output_dir", "is required")
    for name, lowest in (("repeats", 1), ("base_seed", 0)):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
        raise _error(name, f"must be an integer >= {lowest}, got {value!r}")
    self.optim_config(self.base_seed)  # Validates the training fields, naming them.
    if self.shuffle_buffer < 0:
      raise _error("shuffle_buffer", f"must be >= 0, got {self.shuffle_buffer}")
    with _naming("model_overrides"):
      suites_lib.check_model_overrides(overrides)
      for variant in suite.variants:
        variant.model_config(overrides)
    if suite.data == suites_lib.SIMULATED:
      if not self.data_dir:
        raise _error(
          "data_dir", f"suite {self.suite!r} needs the output of `python -m pipelines.simulate`"
        )
    else:
      for name in ("data_dir", "stats_path"):
        if getattr(self, name):
          raise _error(
            name,
            f"not used by suite {self.suite!r}, which converts the KuaiRand log and "
            f"computes its statistics once per seed; got {getattr(self, name)!r}",
          )
      for name in ("kuairand_log", "kuairand_user_features"):
        if not getattr(self, name):
          raise _error(name, f"suite {self.suite!r} needs it")

  @property
  def suite_def(self) -> suites_lib.Suite:
    """The suite, restricted to `configs`."""
    return suites_lib.get(self.suite).select(self.configs)

  def seed(self, run: int) -> int:
    return self.base_seed + run

  @property
  def space(self) -> space_lib.SearchSpace:
    """The settings search space of the validation protocol."""
    return protocol_lib.search_space(self.search_space)

  def tune_config(self) -> tuner.TuneConfig:
    """The same search for every configuration: random draws (the suite's settings first),
    exactly `trials_per_config` of them, seeded with the base seed."""
    return tuner.TuneConfig(
      space=self.space,
      budget=self.protocol.trials_per_config,
      strategy=search_lib.RANDOM,
      seed=self.base_seed,
    )

  def optim_config(self, seed: int) -> config_lib.OptimConfig:
    return config_lib.OptimConfig(
      learning_rate=self.learning_rate,
      embedding_optimizer=self.embedding_optimizer,
      embedding_learning_rate=self.embedding_learning_rate,
      batch_size=self.batch_size,
      epochs=self.epochs,
      steps_per_epoch=self.steps_per_epoch,
      seed=seed,
    )

  def fixed_settings(self) -> Dict[str, Any]:
    """The settings every run depends on: they may not change when an experiment restarts."""
    out: Dict[str, Any] = {"suite": self.suite, "base_seed": self.base_seed}
    if suites_lib.get(self.suite).data == suites_lib.SIMULATED:
      out["data_dir"] = os.path.abspath(self.data_dir)
      out["stats_path"] = os.path.abspath(self.stats_path) if self.stats_path else ""
    else:
      out["kuairand_log"] = os.path.abspath(self.kuairand_log)
      out["kuairand_user_features"] = os.path.abspath(self.kuairand_user_features)
    out.update(
      epochs=self.epochs,
      batch_size=self.batch_size,
      learning_rate=self.learning_rate,
      steps_per_epoch=self.steps_per_epoch,
      shuffle_buffer=self.shuffle_buffer,
      model_overrides=_json_ready(dict(self.model_overrides)),
    )
    if self.embedding_optimizer != optimizers.ADAM:
      # Only when set: the manifests of experiments with one Adam stay as they were.
      out.update(
        embedding_optimizer=self.embedding_optimizer,
        embedding_learning_rate=self.embedding_learning_rate,
      )
    if self.protocol.selects:
      # The fixed-epochs manifest stays as it was, so its committed experiments resume.
      out.update(
        protocol=dict(self.protocol.describe()),
        search_space=_json_ready(dataclasses.asdict(self.space)),
      )
    return out

  def describe(self) -> Dict[str, Any]:
    """The fixed settings plus the runs asked for (results.json's "experiment")."""
    # The embedding optimizer is listed even when it is one Adam (not in the manifest then).
    return dict(
      {"embedding_optimizer": optimizers.ADAM, **self.fixed_settings()},
      repeats=self.repeats,
      seeds=[self.seed(r) for r in range(self.repeats)],
      configs=list(self.suite_def.names),
      protocol=dict(self.protocol.describe()),
      min_test_positives=self.min_test_positives,
    )


def _error(name: str, detail: str) -> configs_lib.ConfigError:
  """The error of `ExperimentConfig.<name>`: "<name>: <detail>", naming its flag too."""
  return configs_lib.ConfigError(
    f"{name}: {detail}", field=name, flag=configs_lib.flag_of(ExperimentConfig, name), detail=detail
  )


@contextlib.contextmanager
def _naming(name: str) -> Iterator[None]:
  """Turns the suites' ValueErrors about field `name` into its `ConfigError`."""
  try:
    yield
  except ValueError as e:
    message = str(e)
    prefix = f"{name}: "
    raise _error(name, message[len(prefix) :] if message.startswith(prefix) else message) from None


@dataclasses.dataclass(frozen=True)
class DataSource:
  """The logs one run trains and is evaluated on (absolute paths)."""

  schema_path: str
  train_files: str
  test_files: str
  stats_path: str = ""


def run_dir(output_dir: str, configuration: str, run: int) -> str:
  """OUT/runs/<configuration>/seed-<r>."""
  return os.path.join(output_dir, RUNS_DIR, configuration, f"seed-{run}")


def check_manifest(config: ExperimentConfig) -> None:
  """Writes OUT/experiment.json, or checks a restart keeps the fixed settings.

  Raises:
    ExperimentError: listing the settings that differ from the experiment in OUT.
  """
  path = os.path.join(config.output_dir, MANIFEST_FILE)
  fixed = config.fixed_settings()
  if not os.path.exists(os.path.join(config.output_dir, RUNS_DIR)):
    # No run has started: a start that failed early (e.g. a wrong --data_dir) binds nothing.
    atomic.write_text(path, json.dumps(fixed, indent=2) + "\n")
    return
  if not os.path.exists(path):
    raise ExperimentError(
      f"{config.output_dir} holds runs but no {MANIFEST_FILE}; it was not "
      "written by this job. Use another --output_dir"
    )
  with open(path, encoding="utf-8") as f:
    old = json.load(f)
  diffs = [
    f"{k}: {old.get(k)!r} -> {fixed.get(k)!r}"
    for k in sorted(set(old) | set(fixed))
    if old.get(k) != fixed.get(k)
  ]
  if diffs:
    raise ExperimentError(
      f"{config.output_dir} holds an experiment with other settings ({path}); its finished "
      f"runs would be mixed with new ones. Use another --output_dir or the original flags. "
      f"Differences: {'; '.join(diffs)}"
    )


def train_window(files: str) -> stats_lib.StatsConfig:
  """A statistics window covering every day of `files` (first to last day, inclusive)."""
  first, last = None, None
  for _, _, batch in stats_lib.iter_log_batches(files, {schema_lib.DAY: tf.int64}):
    days = batch[schema_lib.DAY]
    if days.size:
      first = int(days.min()) if first is None else min(first, int(days.min()))
      last = int(days.max()) if last is None else max(last, int(days.max()))
  if first is None:
    raise ExperimentError(f"no records in the train logs {files!r}")
  return stats_lib.StatsConfig(window_days=last - first + 1, end_day=last)


def compute_train_stats(
  files: str,
  schema: schema_lib.Schema,
  path: str,
  progress: Progress,
  as_of: str = stats_lib.END,
) -> None:
  """Computes the ADM statistics of the train days into `path` (atomically).

  `as_of=END`: one window over every train day; `DAILY`: for each day d the counts of the
  train days before d (point in time, so a validation day never counts itself).
  """
  window = dataclasses.replace(train_window(files), as_of=as_of)
  first_day = window.end_day - window.window_days + 1
  kind = "point-in-time " if as_of == stats_lib.DAILY else ""
  progress(
    f"computing {kind}conversion statistics of {files} (days {first_day}-{window.end_day}) "
    f"into {path}"
  )
  stats_lib.compute_stats(files, schema, window).save(path)


def count_test_positives(files: str, schema: schema_lib.Schema) -> Dict[str, int]:
  """Per action, the positives of its target traffic in `files`: the rows whose target is
  the action and whose label of it is 1 (what its per-target test AUC rests on)."""
  fields = {k: tf.int64 for k in schema.label_keys}
  fields[schema_lib.TARGET_ACTION] = tf.int64
  counts = [0] * schema.num_actions
  for _, _, batch in stats_lib.iter_log_batches(files, fields):
    target = batch[schema_lib.TARGET_ACTION]
    for k, key in enumerate(schema.label_keys):
      counts[k] += int(batch[key][target == k].sum())
  return dict(zip(schema.actions, counts))


def check_test_positives(files: str, positives: Mapping[str, int], minimum: int) -> None:
  """Raises ExperimentError naming the first action with fewer than `minimum` positives."""
  for action, count in positives.items():
    if count < minimum:
      raise ExperimentError(
        f"{files}: action {action!r} has {count} positives in its target traffic of the test "
        f"split, fewer than --min_test_positives={minimum}, too few for its test AUC to decide "
        "between configurations. Give the test split more rows or days (pipelines.simulate "
        "--test_days=K, or --test_rows_per_day=R for more test rows without more train rows) "
        "or lower --min_test_positives"
      )


class _Data:
  """Prepares each run's data on first use (finished runs need none)."""

  def __init__(self, config: ExperimentConfig, suite: suites_lib.Suite, progress: Progress):
    self._config = config
    self._suite = suite
    self._progress = progress
    self._needs_stats = any(v.needs_stats for v in suite.variants)
    self._needs_truth = suite.oracle_evaluation or any(
      v.mask_policy == masks_lib.ORACLE for v in suite.variants
    )
    self._cache: Dict[int, DataSource] = {}

  def get(self, run: int) -> DataSource:
    key = 0 if self._suite.data == suites_lib.SIMULATED else run
    if key not in self._cache:
      if self._suite.data == suites_lib.SIMULATED:
        self._cache[key] = self._simulated()
      else:
        self._cache[key] = self._kuairand(run)
    return self._cache[key]

  def _source(self, folder: str, stats_path: str) -> DataSource:
    schema_path = schema_lib.schema_path(folder)
    schema = schema_lib.Schema.load(schema_path)
    if self._needs_truth and not schema.has_true_labels:
      raise ExperimentError(
        f"{schema_path}: suite {self._suite.name!r} trains or evaluates on the true labels, "
        "but these logs have none (has_true_labels is false)"
      )
    train, test = (os.path.join(folder, p) for p in (TRAIN_PATTERN, TEST_PATTERN))
    for pattern in (train, test):
      records.list_files(pattern)  # FileNotFoundError naming the pattern.
    positives = count_test_positives(test, schema)
    _save_positives(self._config.output_dir, test, positives)
    check_test_positives(test, positives, self._config.min_test_positives)
    if self._needs_stats and not os.path.exists(stats_path):
      as_of = stats_lib.DAILY if self._config.protocol.selects else stats_lib.END
      compute_train_stats(train, schema, stats_path, self._progress, as_of)
    return DataSource(
      schema_path=schema_path,
      train_files=train,
      test_files=test,
      stats_path=stats_path if self._needs_stats else "",
    )

  def _simulated(self) -> DataSource:
    c = self._config
    stats_path = os.path.abspath(c.stats_path or os.path.join(c.output_dir, _stats_file(c)))
    if c.stats_path and self._needs_stats and not os.path.exists(stats_path):
      raise ExperimentError(f"stats: {c.stats_path} does not exist")
    return self._source(os.path.abspath(c.data_dir), stats_path)

  def _kuairand(self, run: int) -> DataSource:
    c = self._config
    folder = os.path.abspath(os.path.join(c.output_dir, DATA_DIR, f"seed-{run}"))
    if not os.path.exists(os.path.join(folder, conversion.REPORT_FILE)):
      self._progress(f"converting {c.kuairand_log} with seed {c.seed(run)} into {folder}")
      conversion.write_conversion(
        conversion.ConversionConfig(
          log_path=c.kuairand_log, user_features_path=c.kuairand_user_features, seed=c.seed(run)
        ),
        folder,
      )
    return self._source(folder, os.path.join(folder, _stats_file(c)))


def _save_positives(output_dir: str, test_files: str, positives: Mapping[str, int]) -> None:
  """Adds the test split's per-action positives to OUT/test_positives.json, keyed by the
  split's pattern (relative to OUT when inside it), for the report."""
  path = os.path.join(output_dir, POSITIVES_FILE)
  saved = _load_positives(output_dir)
  key = os.path.relpath(test_files, os.path.abspath(output_dir))
  saved[test_files if key.startswith("..") else key] = dict(positives)
  atomic.write_text(path, json.dumps(saved, indent=2, sort_keys=True) + "\n")


def _load_positives(output_dir: str) -> Dict[str, Dict[str, int]]:
  path = os.path.join(output_dir, POSITIVES_FILE)
  return _load_json(path) if os.path.exists(path) else {}


def _stats_file(config: ExperimentConfig) -> str:
  """The validation protocol's ADM joins point-in-time statistics; fixed epochs a window."""
  return DAILY_STATS_FILE if config.protocol.selects else STATS_FILE


def make_run_config(
  config: ExperimentConfig, variant: suites_lib.Variant, data: DataSource, seed: int
) -> config_lib.RunConfig:
  """The training config of one (configuration, seed) run with the suite's settings.

  Under the validation protocol the run validates on the last train days, early-stops on
  them and is calibrated on them, and ADM joins point-in-time statistics.
  """
  protocol = config.protocol
  selects = protocol.selects
  adm_mode = point_in_time.POINT_IN_TIME if selects else point_in_time.AUTO
  return config_lib.RunConfig(
    data=config_lib.DataConfig(
      schema_path=data.schema_path,
      train_files=data.train_files,
      stats_path=data.stats_path if variant.needs_stats else "",
      mask_policy=variant.mask_policy,
      alpha=variant.alpha,
      shuffle_buffer=config.shuffle_buffer,
      stats_mode=adm_mode if variant.needs_stats else point_in_time.AUTO,
      validation_days=protocol.validation_days if selects else 0,
    ),
    model=variant.model_config(config.model_overrides),
    loss=config_lib.LossConfig(gamma=variant.gamma),
    optim=dataclasses.replace(
      config.optim_config(seed),
      early_stopping_patience=protocol.patience if selects else 0,
      eval_every_steps=protocol.eval_every_steps if selects else 0,
      calibrate=protocol.calibrate and selects,
    ),
  )


def tuning_dir(output_dir: str, configuration: str) -> str:
  """OUT/tuning/<configuration>: the settings search of one configuration."""
  return os.path.join(output_dir, TUNING_DIR, configuration)


def _tuning_report(output_dir: str, configuration: str) -> Optional[Dict[str, Any]]:
  path = os.path.join(tuning_dir(output_dir, configuration), tuner.REPORT_JSON)
  return _load_json(path) if os.path.exists(path) else None


def check_search_budget(
  config: ExperimentConfig, suite: suites_lib.Suite, data: DataSource
) -> None:
  """Every configuration's search space must hold `trials_per_config` distinct points, or
  the configurations would not get the same number of trials.

  Raises:
    ExperimentError: naming the configuration, its grid size and the knobs it searches.
  """
  schema = schema_lib.Schema.load(data.schema_path)
  budget = config.protocol.trials_per_config
  for variant in suite.variants:
    base = make_run_config(config, variant, data, config.seed(0))
    coordinates = space_lib.coordinates(config.space, base, schema)
    size = search_lib.grid_size(coordinates)
    if size < budget:
      raise ExperimentError(
        f"trials_per_config: configuration {variant.name!r} has only {size} distinct settings "
        f"to try (searching {[c.name for c in coordinates] or 'nothing'}), fewer than "
        f"--trials_per_config={budget}; lower it or widen --search_space"
      )


def choose_settings(
  config: ExperimentConfig, variant: suites_lib.Variant, data: DataSource, progress: Progress
) -> Dict[str, Any]:
  """Searches the configuration's settings on validation (resumably), returning the best
  trial's point (`kaml_tf.tuning.search_space`). Trials train with the base seed."""
  folder = tuning_dir(config.output_dir, variant.name)
  budget = config.protocol.trials_per_config
  progress(f"{variant.name}: choosing its settings on validation, {budget} trials in {folder}")
  base = make_run_config(config, variant, data, config.seed(0))
  report = tuner.tune(base, config.tune_config(), folder)
  best = report["best"]
  progress(f"{variant.name}: chose trial {best['id']} (validation AUC {best['score']:.4f})")
  return best["point"]


def final_run_config(
  config: ExperimentConfig,
  variant: suites_lib.Variant,
  data: DataSource,
  seed: int,
  point: Optional[Mapping[str, Any]],
) -> config_lib.RunConfig:
  """A seed's final run: the suite's settings, with the chosen `point` applied if any."""
  run_config = make_run_config(config, variant, data, seed)
  if point is None:
    return run_config
  return space_lib.apply(dict(point), run_config, schema_lib.Schema.load(data.schema_path))


def _overall(metrics: Mapping[str, Any]) -> str:
  overall = metrics["overall"]
  fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
  return f"overall AUC {fmt(overall['auc'])}, LogLoss {fmt(overall['logloss'])}"


def _load_json(path: str) -> Dict[str, Any]:
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def _evaluate(model_dir: str, test_files: str, oracle: bool, metrics_path: str) -> None:
  """Evaluates a run's model into its metrics.json and its test predictions (atomically)."""
  model = trained_model.load(model_dir)
  predictions = evaluator.predict(model, test_files)
  intervals_lib.save_predictions(
    os.path.join(os.path.dirname(metrics_path), intervals_lib.PREDICTIONS_FILE),
    predictions.labels,
    predictions.target_action,
    predictions.probabilities,
    predictions.raw_probabilities,
  )
  metrics = evaluator.evaluate_predictions(model, predictions, oracle=oracle)
  evaluator.write_metrics(metrics_path, metrics)
  # Each run builds a new network; without this the graph of every earlier run stays alive.
  tf.keras.backend.clear_session()


def _lacks_evaluation(suite: suites_lib.Suite, metrics_path: str) -> bool:
  """A finished run evaluated before its suite asked for the true-label block or kept the
  test predictions."""
  predictions = os.path.join(os.path.dirname(metrics_path), intervals_lib.PREDICTIONS_FILE)
  lacks_oracle = suite.oracle_evaluation and "oracle" not in _load_json(metrics_path)
  return lacks_oracle or not os.path.exists(predictions)


class _Choices:
  """Each configuration's settings chosen on validation, searched on first need."""

  def __init__(self, config: ExperimentConfig, data: "_Data", progress: Progress):
    self._config = config
    self._data = data
    self._progress = progress
    self._points: Dict[str, Optional[Dict[str, Any]]] = {}

  def point(self, variant: suites_lib.Variant) -> Optional[Dict[str, Any]]:
    """The chosen point (None under the fixed-epochs protocol)."""
    if not self._config.protocol.selects:
      return None
    if variant.name not in self._points:
      # Tuned on the first run's data (kuairand: the seed-0 conversion).
      self._points[variant.name] = choose_settings(
        self._config, variant, self._data.get(0), self._progress
      )
    return self._points[variant.name]


def _run(
  config: ExperimentConfig,
  suite: suites_lib.Suite,
  variant: suites_lib.Variant,
  run: int,
  data: _Data,
  choices: _Choices,
  label: str,
  progress: Progress,
  verbose: Optional[int],
) -> Dict[str, Any]:
  """Trains and evaluates one run unless it is finished; returns its results.json entry."""
  folder = run_dir(config.output_dir, variant.name, run)
  metrics_path = os.path.join(folder, METRICS_FILE)
  model_dir = os.path.join(folder, MODEL_DIR)
  seed = config.seed(run)
  name = f"{label} {variant.name} seed-{run} (seed {seed})"
  if os.path.exists(metrics_path) and _lacks_evaluation(suite, metrics_path):
    # Evaluation is cheap and deterministic: a run finished before its suite evaluated the
    # true labels or kept its predictions is evaluated again, not trained again.
    progress(f"{name}: finished earlier, evaluating it again (true labels, predictions)")
    _evaluate(model_dir, data.get(run).test_files, suite.oracle_evaluation, metrics_path)
  elif os.path.exists(metrics_path):
    progress(f"{name}: finished earlier, skipped")
  else:
    point = choices.point(variant)
    source = data.get(run)
    run_config = final_run_config(config, variant, source, seed, point)
    progress(f"{name}: training in {model_dir}")
    started = time.time()
    trainer.train(run_config, model_dir, verbose=verbose)
    _evaluate(model_dir, source.test_files, suite.oracle_evaluation, metrics_path)
    progress(f"{name}: done in {time.time() - started:.1f} s, {_overall(_load_json(metrics_path))}")
  summary_path = os.path.join(model_dir, model_dir_lib.SUMMARY_FILE)
  summary = _load_json(summary_path) if os.path.exists(summary_path) else {}
  return {
    "seed": seed,
    "run_dir": os.path.relpath(folder, config.output_dir),
    "metrics": _load_json(metrics_path),
    "train": {k: summary.get(k) for k in ("epochs", "steps")},
  }


def _chosen(config: ExperimentConfig, suite: suites_lib.Suite) -> Dict[str, Dict[str, Any]]:
  """Per configuration, its settings search as results.json records it (validation only)."""
  out = {}
  for variant in suite.variants:
    report = _tuning_report(config.output_dir, variant.name)
    if report is None:
      continue
    base = report["trials"][0]["point"]
    best = report["best"]
    out[variant.name] = {
      "trials": len(report["trials"]),
      "validation_auc": best["score"],
      "trial": best["id"],
      "point": best["point"],
      "changed": {k: v for k, v in sorted(best["point"].items()) if base.get(k) != v},
      "tuning_dir": os.path.relpath(tuning_dir(config.output_dir, variant.name), config.output_dir),
    }
  return out


def _settings(variant: suites_lib.Variant, schema: schema_lib.Schema) -> Dict[str, Any]:
  """The variant's knobs with the ADM thresholds actually used (defaults resolved)."""
  settings = variant.settings()
  if variant.needs_stats:
    settings["alpha"] = list(masks_lib.resolve_alpha(variant.alpha or None, schema))
  return settings


def run_experiment(
  config: ExperimentConfig, progress: Optional[Progress] = None, verbose: Optional[int] = None
) -> Dict[str, Any]:
  """Runs (or resumes) every run of the suite, then writes the report into OUT.

  Runs go seed by seed (every configuration of seed 0, then of seed 1, ...), so an
  interrupted experiment already holds comparable runs of every configuration.

  Args:
    config: The experiment.
    progress: Called with one line per run event; default: printed to stdout.
    verbose: Keras verbosity of training (None: the trainer's default).

  Returns:
    The results.json dict (see `experiments.report.build_results`).

  Raises:
    ExperimentError: if OUT holds an experiment with other fixed settings, or the data does
      not suit the suite.
  """
  progress = progress or _print_progress
  suite = config.suite_def
  os.makedirs(config.output_dir, exist_ok=True)
  check_manifest(config)
  data = _Data(config, suite, progress)
  if _unfinished(config, suite):
    # Before any training: the test split's positives, and the same budget for every search.
    first = data.get(0)
    if config.protocol.selects:
      check_search_budget(config, suite, first)
  choices = _Choices(config, data, progress)
  total = len(suite.variants) * config.repeats
  runs: Dict[str, List[Dict[str, Any]]] = {v.name: [] for v in suite.variants}
  index = 0
  for run in range(config.repeats):
    for variant in suite.variants:
      index += 1
      runs[variant.name].append(
        _run(config, suite, variant, run, data, choices, f"[{index}/{total}]", progress, verbose)
      )
  # Every run of an experiment is trained on the same schema; the first run's copy names the
  # actions and resolves the default alpha (the data may be gone when all runs are finished).
  first_model = os.path.join(run_dir(config.output_dir, suite.variants[0].name, 0), MODEL_DIR)
  schema = schema_lib.Schema.load(schema_lib.schema_path(first_model))
  results = report_lib.build_results(
    suite,
    schema.actions,
    runs,
    {v.name: _settings(v, schema) for v in suite.variants},
    config.describe(),
    config.command,
    chosen=_chosen(config, suite),
    test_positives=_load_positives(config.output_dir),
  )
  _add_intervals(config, suite, results)
  written = report_lib.write_report(results, config.output_dir)
  progress(
    f"wrote {', '.join(os.path.relpath(p, config.output_dir) for p in written)} into "
    f"{config.output_dir}"
  )
  return results


def _add_intervals(
  config: ExperimentConfig, suite: suites_lib.Suite, results: Dict[str, Any]
) -> None:
  """results["intervals"]: bootstrap intervals over the test rows (experiments.intervals),
  when every run scored the same test rows (not kuairand, whose seeds have their own)."""
  if not config.bootstrap_resamples or suite.data != suites_lib.SIMULATED:
    return
  predictions = {
    v.name: [
      intervals_lib.load_predictions(
        os.path.join(run_dir(config.output_dir, v.name, r), intervals_lib.PREDICTIONS_FILE)
      )
      for r in range(config.repeats)
    ]
    for v in suite.variants
  }
  results["intervals_resamples"] = config.bootstrap_resamples
  results["intervals_method"] = config.interval_method
  results["intervals"] = intervals_lib.intervals(
    results, predictions, config.bootstrap_resamples, config.base_seed, config.interval_method
  )


def _unfinished(config: ExperimentConfig, suite: suites_lib.Suite) -> bool:
  return any(
    not os.path.exists(os.path.join(run_dir(config.output_dir, v.name, r), METRICS_FILE))
    for v in suite.variants
    for r in range(config.repeats)
  )


def model_config_fields() -> Tuple[str, ...]:
  """`ModelConfig` fields an experiment may override (for flag help)."""
  return tuple(
    f.name
    for f in dataclasses.fields(model_config_lib.ModelConfig)
    if f.name not in suites_lib.VARIANT_MODEL_FIELDS
  )
