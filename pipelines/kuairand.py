"""Converts the KuaiRand log into this project's schema and TFRecord logs (paper section 4.1.1).

  python -m pipelines.kuairand --log=../shared/data/kuairand/kuairand_27k_likehate_kcore15.tsv \
      --user_features=../shared/data/kuairand/user_features_pure.csv --output_dir=DIR --seed=0 \
      [--actions=like,follow,comment,forward] [--extra_reported_actions=2] \
      [--negative_keep_rate=1] [--nosample_test_negatives] [--play_time_features] \
      [--allow_missing_users] [--test_fraction=0.2] [--num_shards=1] [--compression=none]

Outputs `DIR/schema.json`, `DIR/train-*.tfrecord[.gz]`, `DIR/test-*.tfrecord[.gz]` and
`DIR/conversion.json` (resolved config, files and the data report). The protocol, and what the
shared KuaiRand slice is and is not, are documented in `kaml_tf.datasets.kuairand.conversion`.
"""

import dataclasses

from absl import app
from absl import flags
from absl import logging

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
from kaml_tf.datasets.kuairand import conversion

_HELP = {f.name: f.metadata["help"] for f in dataclasses.fields(conversion.ConversionConfig)}
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(conversion.ConversionConfig)}

# `seed`, `output_dir`, `num_shards` and `compression` mean the same, with the same defaults, in
# other entry points: absl refuses a second definition from another module unless one side
# allows the override, and the test suite imports every pipeline into one process. For the same
# reason the required flags are checked in `main` rather than with absl validators, which would
# fire in other jobs' tests too.
_LOG = flags.DEFINE_string("log", None, _HELP["log_path"])
_USER_FEATURES = flags.DEFINE_string("user_features", None, _HELP["user_features_path"])
_OUTPUT_DIR = flags.DEFINE_string(
  "output_dir", None, "Folder to write the logs into.", allow_override=True
)
_SEED = flags.DEFINE_integer("seed", _DEFAULTS["seed"], _HELP["seed"], allow_override=True)
_ACTIONS = flags.DEFINE_list("actions", list(_DEFAULTS["actions"]), _HELP["actions"])
_EXTRA_REPORTED = flags.DEFINE_integer(
  "extra_reported_actions", _DEFAULTS["extra_reported_actions"], _HELP["extra_reported_actions"]
)
_NEGATIVE_KEEP_RATE = flags.DEFINE_float(
  "negative_keep_rate", _DEFAULTS["negative_keep_rate"], _HELP["negative_keep_rate"]
)
_SAMPLE_TEST_NEGATIVES = flags.DEFINE_bool(
  "sample_test_negatives", _DEFAULTS["sample_test_negatives"], _HELP["sample_test_negatives"]
)
_PLAY_TIME_FEATURES = flags.DEFINE_bool(
  "play_time_features", _DEFAULTS["play_time_features"], _HELP["play_time_features"]
)
_ALLOW_MISSING_USERS = flags.DEFINE_bool(
  "allow_missing_users", _DEFAULTS["allow_missing_users"], _HELP["allow_missing_users"]
)
_TEST_FRACTION = flags.DEFINE_float(
  "test_fraction", _DEFAULTS["test_fraction"], _HELP["test_fraction"]
)
_NUM_SHARDS = flags.DEFINE_integer(
  "num_shards", 1, "TFRecord shards per split.", allow_override=True
)
_COMPRESSION = flags.DEFINE_enum(
  "compression",
  "none",
  ["none", "gzip"],
  "Compression of the TFRecord shards.",
  allow_override=True,
)

_COMPRESSION_TYPES = {"none": "", "gzip": "GZIP"}
# Config fields whose flag has another name.
_FLAG_OF_FIELD = {"log_path": "log", "user_features_path": "user_features"}


def _required(flag: flags.FlagHolder) -> str:
  """The value of a path flag this job needs; a usage error naming it otherwise."""
  if not flag.value:
    raise app.UsageError(f"--{flag.name} is required")
  return flag.value


def config_from_flags() -> conversion.ConversionConfig:
  """Turns the flags into a `ConversionConfig` (errors name the flag)."""
  try:
    return conversion.ConversionConfig(
      log_path=_required(_LOG),
      user_features_path=_required(_USER_FEATURES),
      seed=_SEED.value,
      actions=tuple(a.strip() for a in _ACTIONS.value),
      extra_reported_actions=_EXTRA_REPORTED.value,
      negative_keep_rate=_NEGATIVE_KEEP_RATE.value,
      sample_test_negatives=_SAMPLE_TEST_NEGATIVES.value,
      play_time_features=_PLAY_TIME_FEATURES.value,
      allow_missing_users=_ALLOW_MISSING_USERS.value,
      test_fraction=_TEST_FRACTION.value,
    )
  except ValueError as e:
    field, _, message = str(e).partition(": ")
    raise app.UsageError(f"--{_FLAG_OF_FIELD.get(field, field)}: {message}") from None


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  config = config_from_flags()
  output_dir = _required(_OUTPUT_DIR)
  if _NUM_SHARDS.value < 1:
    raise app.UsageError(f"--num_shards: must be >= 1, got {_NUM_SHARDS.value}")
  logging.info("converting %s into %s", config.log_path, output_dir)
  conversion.write_conversion(
    config,
    output_dir,
    num_shards=_NUM_SHARDS.value,
    compression=_COMPRESSION_TYPES[_COMPRESSION.value],
  )


if __name__ == "__main__":
  app.run(main)
