r"""Benchmarks of the pipeline's parts, written as one JSON file.

  python -m pipelines.benchmark --sections=input --logs='DIR/train-*' \
      --schema=DIR/schema.json [--stats=DIR/stats.parquet] [--batch_size=5000] \
      --output=DIR/benchmark.json

`--sections` picks which sections run, in the order given (`--sections=all`: every one); their
figures go under `"sections"` in the output JSON (written atomically) and their summary lines
are printed. Each section is a module of `benchmarks/` (`benchmarks.sections`), whose
docstring says what it times: `input` (`benchmarks.input_pipeline`), `input_stages`,
`train_step`, `determinism`, `train_throughput`, `peer`, `stats` and `serving` (the modules of
those names). This job only turns its flags into a `benchmarks.config.BenchmarkConfig`.

Each section runs in a fresh child process (unless `--noisolate`), so its peak resident memory
(`benchmarks.memory`) is its own; it goes under `"resources"` with the 1/5/15-minute load
average before and after the section, since the machine may be shared.

  python -m pipelines.benchmark --sections=all --logs='DIR/train-*' \
      --schema=DIR/schema.json --stats=DIR/stats.parquet --export_dir=EXPORT/1 \
      --output=bench.json
"""

import dataclasses
import json
import os
import platform
import sys
from typing import Any, Dict, Tuple

from absl import app
from absl import flags
from absl import logging

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf import atomic
from benchmarks import config as config_lib
from benchmarks import sections

_FIELDS = {f.name: f for f in dataclasses.fields(config_lib.BenchmarkConfig)}


def _spec(name: str) -> Dict[str, Any]:
  """A flag's default and help, from the `BenchmarkConfig` field of the same name."""
  field = _FIELDS[name]
  default = field.default
  if isinstance(default, tuple):
    default = [str(v) for v in default]
  return {"default": default, "help": field.metadata["help"]}


_SECTIONS = flags.DEFINE_list("sections", ["input"], "Benchmark sections to run, in order.")
_ISOLATE = flags.DEFINE_bool(
  "isolate",
  True,
  "Run each section in a fresh child process, so its peak resident memory is its own.",
)
# allow_override: until the shared flag module (integrator)
_OUTPUT = flags.DEFINE_string(
  "output", None, "Output file, written atomically.", allow_override=True
)
flags.DEFINE_string("logs", **_spec("logs"), allow_override=True)
flags.DEFINE_string("schema", **_spec("schema"), allow_override=True)
flags.DEFINE_string("stats", **_spec("stats"), allow_override=True)
flags.DEFINE_list("alpha", **_spec("alpha"), allow_override=True)
flags.DEFINE_integer("window_days", **_spec("window_days"), allow_override=True)
flags.DEFINE_integer("end_day", **_spec("end_day"), allow_override=True)
flags.DEFINE_integer("read_batch_size", **_spec("read_batch_size"), allow_override=True)
flags.DEFINE_bool("skip_bad_records", **_spec("skip_bad_records"), allow_override=True)
flags.DEFINE_enum(
  "as_of", enum_values=_FIELDS["as_of"].metadata["choices"], **_spec("as_of"), allow_override=True
)
flags.DEFINE_integer("batch_size", **_spec("batch_size"), allow_override=True)
flags.DEFINE_enum(
  "input_mask", enum_values=_FIELDS["input_mask"].metadata["choices"], **_spec("input_mask")
)
flags.DEFINE_integer("repeats", **_spec("repeats"), allow_override=True)
flags.DEFINE_integer("steps", **_spec("steps"))
flags.DEFINE_integer("max_batches", **_spec("max_batches"))
flags.DEFINE_integer("throughput_steps", **_spec("throughput_steps"))
flags.DEFINE_integer("throughput_warmup_steps", **_spec("throughput_warmup_steps"))
flags.DEFINE_integer("shuffle_buffer", **_spec("shuffle_buffer"), allow_override=True)
flags.DEFINE_integer("stage_batches", **_spec("stage_batches"))
flags.DEFINE_string("parquet_logs", **_spec("parquet_logs"))
flags.DEFINE_string("export_dir", **_spec("export_dir"))
flags.DEFINE_integer("serving_records", **_spec("serving_records"))
flags.DEFINE_list("serving_batch_sizes", **_spec("serving_batch_sizes"))
flags.DEFINE_integer("serving_iterations", **_spec("serving_iterations"))


def _numbers(name: str, kind: type) -> Tuple[Any, ...]:
  """A list flag's values as `kind`; a usage error naming the flag otherwise."""
  values = flags.FLAGS[name].value or []
  try:
    return tuple(kind(v) for v in values)
  except ValueError:
    raise app.UsageError(
      f"--{name}: expected comma-separated integers, got {','.join(values)!r}"
    ) from None


def config_from_flags() -> config_lib.BenchmarkConfig:
  """The settings of the sections, one flag per `BenchmarkConfig` field.

  Raises:
    app.UsageError: for a list flag that does not parse.
    config_lib.ConfigError: for a value the config refuses (naming its flag).
  """
  values = {name: flags.FLAGS[name].value for name in _FIELDS}
  values.update(
    alpha=_numbers("alpha", float), serving_batch_sizes=_numbers("serving_batch_sizes", int)
  )
  return config_lib.BenchmarkConfig(**values)


def run_sections(config: config_lib.BenchmarkConfig) -> Tuple[Dict[str, Any], Dict[str, Any]]:
  """Runs the sections of `--sections`, printing their summaries: (figures, resources)."""
  figures, resources = {}, {}
  for name in sections.names(_SECTIONS.value):
    figures[name], resources[name] = sections.run_section(name, config, _ISOLATE.value)
    for line in sections.SECTIONS[name].summary(figures[name]):
      logging.info("%s", line)
    logging.info(
      "%s: peak RSS %.0f MiB, load average %s -> %s",
      name,
      resources[name]["peak_rss_bytes"] / 2**20,
      resources[name]["load_average"]["before"],
      resources[name]["load_average"]["after"],
    )
  return figures, resources


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not _OUTPUT.value:
    raise app.UsageError("--output is required")
  try:
    figures, resources = run_sections(config_from_flags())
  except config_lib.ConfigError as e:
    raise app.UsageError(str(e)) from None
  document = {
    "sections": figures,
    # Per section: peak resident memory and the 1/5/15-minute load average around it.
    "resources": resources,
    "environment": {
      "python": platform.python_version(),
      "tensorflow": tf.__version__,
      "cpus": os.cpu_count(),
      "machine": platform.machine(),
      "load_average_end": sections.load_average(),
    },
    "command": sys.argv,
  }
  atomic.write_text(_OUTPUT.value, json.dumps(document, indent=2, sort_keys=True) + "\n")
  logging.info("wrote %s", _OUTPUT.value)


if __name__ == "__main__":
  app.run(main)
