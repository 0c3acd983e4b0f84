r"""Benchmarks of the pipeline's parts, written as one JSON file.

  python -m pipelines.benchmark --sections=input --logs='DIR/train-*' \
      --schema=DIR/schema.json [--stats=DIR/stats.parquet] [--batch_size=5000] \
      --output=DIR/benchmark.json

`--sections` picks which sections run, in the order given (`--sections=all`: every one); their
figures go under `"sections"` in the output JSON (written atomically) and their summary lines
are printed. Each section is a module of `benchmarks/` (`benchmarks.sections`), whose
docstring says what it times: `input` (`benchmarks.input_pipeline`), `input_stages`,
`train_step`, `determinism`, `train_throughput`, `peer`, `stats`, `serving` and `beam` (the
Beam data jobs next to the local ones; the modules of
those names). This job only turns its flags into a `benchmarks.config.BenchmarkConfig`.

Each section runs in a fresh child process (unless `--noisolate`), so its peak resident memory
(`benchmarks.memory`) is its own; it goes under `"resources"` with the 1/5/15-minute load
average before and after the section, since the machine may be shared.

  python -m pipelines.benchmark --sections=all --logs='DIR/train-*' \
      --schema=DIR/schema.json --stats=DIR/stats.parquet --export_dir=EXPORT/1 \
      --output=bench.json

The statistics job's sections: `stats` times it on `--logs` and on `--parquet_logs` (the same
records as Parquet); `lookup_memory` measures the resident bytes of its in-graph joins
(`benchmarks.lookup_memory`, `--lookup_keys`).
"""

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
from pipelines import common
from pipelines import dataclass_flags

_SECTIONS = flags.DEFINE_list("sections", ["input"], "Benchmark sections to run, in order.")
_ISOLATE = flags.DEFINE_bool(
  "isolate",
  True,
  "Run each section in a fresh child process, so its peak resident memory is its own.",
)
dataclass_flags.use(common.OUTPUT)
# Every setting of the sections; the names other jobs share (--logs, --schema, --stats,
# --alpha, --batch_size, ...) are pipelines.common's flags.
dataclass_flags.define(config_lib.BenchmarkConfig)


def config_from_flags() -> config_lib.BenchmarkConfig:
  """The settings of the sections, one flag per `BenchmarkConfig` field.

  Raises:
    app.UsageError: naming the flag of a value that does not parse or that the config refuses.
  """
  return dataclass_flags.build(config_lib.BenchmarkConfig)


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


@common.job
def main(argv):
  del argv
  output = dataclass_flags.required(common.OUTPUT)
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
  atomic.write_text(output, json.dumps(document, indent=2, sort_keys=True) + "\n")
  logging.info("wrote %s", output)


if __name__ == "__main__":
  common.run(main)
