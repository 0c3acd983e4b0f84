"""Tests of the section registry and of running a section here or in a child process."""

import kaml_tf  # noqa: F401
import pytest

from benchmarks import config as config_lib
from benchmarks import sections
from kaml_tf import schema as schema_lib
from kaml_tf.logs import records


def test_names_expand_all_and_refuse_unknown_ones():
  assert sections.names(["all"]) == [
    "input",
    "input_stages",
    "train_step",
    "determinism",
    "train_throughput",
    "peer",
    "stats",
    "lookup_memory",
    "serving",
    "multivalued",
    "beam",
    "distributed",
  ]
  assert sections.names(["stats", "input"]) == ["stats", "input"]
  with pytest.raises(config_lib.ConfigError, match=r"unknown section\(s\) \['nope'\]") as raised:
    sections.names(["nope"])
  assert raised.value.flag == "sections"
  with pytest.raises(config_lib.ConfigError, match="cannot be combined"):
    sections.names(["all", "stats"])


def test_stats_section_in_a_child_process(small_logs, bench_config):
  figures, resources = sections.run_section("stats", bench_config(), isolate=True)
  schema = schema_lib.Schema.load(small_logs["schema"])
  rows = len(records.read_columns(small_logs["train"], schema)[schema_lib.AD_TASK_ID])
  assert figures["runs"]["logs"]["rows"] == rows > 0
  assert resources["peak_rss_bytes"] > 0
  assert resources["peak_rss_scope"] == sections.CHILD_SCOPE
  assert len(resources["load_average"]["before"]) == len(resources["load_average"]["after"]) == 3


def test_a_usage_error_in_the_child_reaches_the_parent_unchanged(bench_config):
  config = bench_config(export_dir=None)
  with pytest.raises(config_lib.ConfigError) as in_process:
    sections.run_section("serving", config, isolate=False)
  with pytest.raises(config_lib.ConfigError) as from_child:
    sections.run_section("serving", config, isolate=True)
  assert str(from_child.value) == str(in_process.value)
  assert str(from_child.value) == "--export_dir is required by the serving section"
  assert from_child.value.flag == "export_dir"


def test_a_section_registered_at_run_time_runs_in_this_process(monkeypatch, bench_config):
  section = sections.Section(lambda config: {"batch_size": config.batch_size})
  monkeypatch.setitem(sections.SECTIONS, "fake", section)
  figures, resources = sections.run_section("fake", bench_config(batch_size=7), isolate=True)
  assert figures == {"batch_size": 7}
  assert resources["peak_rss_scope"] == sections.PROCESS_SCOPE
  assert section.summary(figures) == []
