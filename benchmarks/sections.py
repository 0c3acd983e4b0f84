"""The benchmark sections by name, and how one is run: here, or alone in a child process.

Every section is a module of this package with `run(config) -> figures` (a JSON-ready dict)
and `summary(figures) -> lines` (what `pipelines.benchmark` prints). Run in a fresh child
process (`benchmarks.memory.run_isolated`), a section's peak resident memory is its own; the
child receives the `BenchmarkConfig` itself and hands a `ConfigError` back unchanged, so a
usage error stays one.
"""

import dataclasses
import os
from typing import Any, Callable, Dict, List, Sequence, Tuple

from benchmarks import beam
from benchmarks import determinism
from benchmarks import distributed
from benchmarks import input_pipeline
from benchmarks import input_stages
from benchmarks import lookup_memory
from benchmarks import memory
from benchmarks import multivalued
from benchmarks import peer
from benchmarks import serving
from benchmarks import stats
from benchmarks import train_step
from benchmarks import train_throughput
from benchmarks.config import BenchmarkConfig
from benchmarks.config import ConfigError

ALL = "all"
CHILD_SCOPE = "child process of this section"
PROCESS_SCOPE = "whole benchmark process so far"


def _no_lines(figures: Dict[str, Any]) -> List[str]:
  del figures
  return []


@dataclasses.dataclass(frozen=True)
class Section:
  """How to run one section and describe its figures."""

  run: Callable[[BenchmarkConfig], Dict[str, Any]]
  summary: Callable[[Dict[str, Any]], List[str]] = _no_lines


SECTIONS: Dict[str, Section] = {
  module.SECTION: Section(module.run, module.summary)
  for module in (
    input_pipeline,
    input_stages,
    train_step,
    determinism,
    train_throughput,
    peer,
    stats,
    lookup_memory,
    serving,
    multivalued,
    beam,
    distributed,
  )
}

# The sections a child process knows: those defined here (a section registered at run time,
# e.g. by a test, exists only in this process and runs in it).
_MODULE_SECTIONS = dict(SECTIONS)


def names(requested: Sequence[str]) -> List[str]:
  """The sections to run: `all` expands to every section, in `SECTIONS` order.

  Raises:
    ConfigError: naming `--sections` for an unknown name, or `all` among others.
  """
  requested = list(requested)
  if ALL in requested:
    if len(requested) != 1:
      raise ConfigError(
        f"--sections: '{ALL}' cannot be combined with others: {requested}", "sections"
      )
    return list(SECTIONS)
  unknown = [n for n in requested if n not in SECTIONS]
  if unknown or not requested:
    raise ConfigError(
      f"--sections: unknown section(s) {unknown}; known: {sorted(SECTIONS) + [ALL]}",
      "sections",
    )
  return requested


def run_in_child(name: str, config: BenchmarkConfig) -> Dict[str, Any]:
  """Entry point of a section's child process."""
  return _MODULE_SECTIONS[name].run(config)


def load_average() -> List[float]:
  """The 1/5/15-minute load average, rounded to hundredths."""
  return [round(x, 2) for x in os.getloadavg()]


def run_section(
  name: str, config: BenchmarkConfig, isolate: bool
) -> Tuple[Dict[str, Any], Dict[str, Any]]:
  """One section's figures, and its peak memory and the load average around it.

  Args:
    name: A key of `SECTIONS`.
    config: The settings.
    isolate: Run the section in a fresh child process (sections registered at run time
      always run in this one).

  Returns:
    `(figures, {"peak_rss_bytes", "peak_rss_scope", "load_average": {"before", "after"}})`.

  Raises:
    ConfigError: a missing or wrong setting, from this process or from the child.
    memory.ChildError: any other failure of the child, with its traceback.
  """
  before = load_average()
  if isolate and SECTIONS[name] is _MODULE_SECTIONS.get(name):
    figures, peak = memory.run_isolated(
      f"{__name__}:run_in_child", name, config, reraise=(ConfigError,)
    )
    scope = CHILD_SCOPE
  else:
    figures = SECTIONS[name].run(config)
    peak, scope = memory.peak_rss_bytes(), PROCESS_SCOPE
  return figures, {
    "peak_rss_bytes": peak,
    "peak_rss_scope": scope,
    "load_average": {"before": before, "after": load_average()},
  }
