"""Tests of the experiment report on hand-made runs: mean / std, bold, RelaImpr, files."""

import json
import math
import os

import pytest

from experiments import report
from experiments import suites

ACTIONS = ("a", "b")
SUITE = suites.Suite(
  name="hand",
  title="Hand-made",
  variants=(
    suites.Variant("B1"),
    suites.Variant("B2", backbone="ple"),
    suites.Variant("KAML", mask_policy="adm", hke=True, gamma=0.9, role="kaml"),
    suites.Variant("Oracle", mask_policy="oracle", role="reference"),
  ),
  oracle_evaluation=True,
)
# Per configuration, two runs of (AUC, LogLoss) for a, b and overall. Means:
#   B1     a 0.70 / 0.31  b 0.60 / 0.21        all 0.65 / 0.26
#   B2     a 0.75 / 0.29  b 0.55 / 0.21        all 0.66 / 0.26
#   KAML   a 0.80 / 0.34  b 0.62 / 0.20        all 0.70 / 0.25
#   Oracle a 0.90 / 0.20  b 0.58 (1 run) / 0.25  all 0.73 / 0.22
RUNS = {
  "B1": [((0.69, 0.30), (0.60, 0.20), (0.64, 0.25)), ((0.71, 0.32), (0.60, 0.22), (0.66, 0.27))],
  "B2": [((0.75, 0.28), (0.54, 0.21), (0.66, 0.26)), ((0.75, 0.30), (0.56, 0.21), (0.66, 0.26))],
  "KAML": [((0.79, 0.33), (0.62, 0.19), (0.70, 0.24)), ((0.81, 0.35), (0.62, 0.21), (0.70, 0.26))],
  "Oracle": [
    ((0.90, 0.20), (None, 0.25), (0.72, 0.22)),
    ((0.90, 0.20), (0.58, 0.25), (0.74, 0.22)),
  ],
}
STD_002 = 0.02 / math.sqrt(2)  # Sample std (ddof 1) of two values 0.02 apart.


def _metric(auc, logloss):
  return {"auc": auc, "logloss": logloss, "count": 10, "positives": 3}


def _metrics(run):
  (a, b, overall) = run
  block = {"actions": {"a": _metric(*a), "b": _metric(*b)}, "overall": _metric(*overall)}
  # The oracle block: every AUC 0.1 higher, so its table and RelaImpr differ.
  shifted = json.loads(json.dumps(block))
  for cell in list(shifted["actions"].values()) + [shifted["overall"]]:
    cell["auc"] = None if cell["auc"] is None else cell["auc"] + 0.1
  return dict(block, skipped_other=1, oracle=shifted)


def _results():
  runs = {
    name: [
      {
        "seed": s,
        "run_dir": f"runs/{name}/seed-{s}",
        "metrics": _metrics(r),
        "train": {"epochs": 1, "steps": 3},
      }
      for s, r in enumerate(rs)
    ]
    for name, rs in RUNS.items()
  }
  settings = {v.name: v.settings() for v in SUITE.variants}
  return report.build_results(
    SUITE,
    ACTIONS,
    runs,
    settings,
    {"epochs": 1},
    command="python -m pipelines.experiment --suite=hand",
  )


def test_summarize_is_mean_and_sample_std_over_defined_values():
  assert report.summarize([0.80, 0.84]) == {
    "mean": pytest.approx(0.82),
    "std": pytest.approx(STD_002 * 2),
    "n": 2,
  }
  # (1 + 2 + 6) / 3 = 3; squared deviations 4 + 1 + 9 = 14; 14 / 2 = 7.
  assert report.summarize([1.0, 2.0, 6.0]) == {
    "mean": 3.0,
    "std": pytest.approx(math.sqrt(7)),
    "n": 3,
  }
  assert report.summarize([0.7, None, float("nan")]) == {"mean": 0.7, "std": None, "n": 1}
  assert report.summarize([None]) == {"mean": None, "std": None, "n": 0}


def test_build_results_summarises_each_block_per_configuration():
  results = _results()
  assert results["blocks"] == ["per_target", "oracle"]
  assert list(results["configurations"]) == ["B1", "B2", "KAML", "Oracle"]
  b1 = results["configurations"]["B1"]["summary"]["per_target"]
  assert b1["actions"]["a"]["auc"] == {
    "mean": pytest.approx(0.70),
    "std": pytest.approx(STD_002),
    "n": 2,
  }
  assert b1["actions"]["b"]["logloss"] == {
    "mean": pytest.approx(0.21),
    "std": pytest.approx(STD_002),
    "n": 2,
  }
  assert b1["overall"]["auc"]["mean"] == pytest.approx(0.65)
  oracle_b = results["configurations"]["Oracle"]["summary"]["per_target"]["actions"]["b"]
  assert oracle_b["auc"] == {"mean": 0.58, "std": None, "n": 1}
  shifted = results["configurations"]["KAML"]["summary"]["oracle"]["actions"]["a"]["auc"]
  assert shifted["mean"] == pytest.approx(0.90)
  assert results["configurations"]["KAML"]["role"] == "kaml"
  assert results["configurations"]["B2"]["settings"]["backbone"] == "ple"


def test_rela_impr_is_against_the_best_baseline_of_each_column():
  row = _results()["rela_impr"]["per_target"]
  # a: (0.80 - 0.5) / (0.75 - 0.5) - 1 = 0.2 vs B2; b: (0.62 - 0.5) / (0.60 - 0.5) - 1 = 0.2
  # vs B1; all: (0.70 - 0.5) / (0.66 - 0.5) - 1 = 0.25 vs B2. Oracle is never the baseline.
  assert row == {
    "a": {"value": pytest.approx(0.2), "baseline": "B2"},
    "b": {"value": pytest.approx(0.2), "baseline": "B1"},
    "All": {"value": pytest.approx(0.25), "baseline": "B2"},
  }
  oracle_row = _results()["rela_impr"]["oracle"]
  # a: (0.90 - 0.5) / (0.85 - 0.5) - 1 = 1/7.
  assert oracle_row["a"] == {"value": pytest.approx(1 / 7), "baseline": "B2"}


def test_rela_impr_needs_a_kaml_row_and_a_baseline():
  results = _results()
  configurations = {k: v for k, v in results["configurations"].items() if k != "KAML"}
  assert report.rela_impr_row(configurations, "per_target", ["a", "All"]) is None
  only_kaml = {"KAML": results["configurations"]["KAML"]}
  assert report.rela_impr_row(only_kaml, "per_target", ["a"]) is None


def test_format_table_bolds_the_best_mean_and_adds_relaimpr():
  assert report.format_table(_results(), "per_target").splitlines() == [
    "| Configuration | a AUC | a LogLoss | b AUC | b LogLoss | All AUC | All LogLoss |",
    "|---|---|---|---|---|---|---|",
    "| B1 | 0.7000 ± 0.0141 | 0.3100 ± 0.0141 | 0.6000 ± 0.0000 | 0.2100 ± 0.0141 "
    "| 0.6500 ± 0.0141 | 0.2600 ± 0.0141 |",
    "| B2 | 0.7500 ± 0.0000 | 0.2900 ± 0.0141 | 0.5500 ± 0.0141 | 0.2100 ± 0.0000 "
    "| 0.6600 ± 0.0000 | 0.2600 ± 0.0000 |",
    "| KAML | 0.8000 ± 0.0141 | 0.3400 ± 0.0141 | **0.6200 ± 0.0000** | **0.2000 ± 0.0141** "
    "| 0.7000 ± 0.0000 | 0.2500 ± 0.0141 |",
    "| Oracle | **0.9000 ± 0.0000** | **0.2000 ± 0.0000** | 0.5800 (n=1) | 0.2500 ± 0.0000 "
    "| **0.7300 ± 0.0141** | **0.2200 ± 0.0000** |",
    "| RelaImpr. | 20.00% (vs B2) | - | 20.00% (vs B1) | - | 25.00% (vs B2) | - |",
  ]


@pytest.mark.parametrize(
  "summary, runs, bold, text",
  [
    ({"mean": 0.85104, "std": 0.00123, "n": 5}, 5, False, "0.8510 ± 0.0012"),
    ({"mean": 0.85104, "std": 0.00123, "n": 5}, 5, True, "**0.8510 ± 0.0012**"),
    ({"mean": 0.5, "std": None, "n": 1}, 1, False, "0.5000"),
    ({"mean": 0.5, "std": 0.1, "n": 3}, 5, False, "0.5000 ± 0.1000 (n=3)"),
    ({"mean": None, "std": None, "n": 0}, 5, True, "n/a"),
  ],
)
def test_format_cell(summary, runs, bold, text):
  assert report.format_cell(summary, runs, bold) == text


def test_format_percent():
  assert report.format_percent(0.0124) == "1.24%"
  assert report.format_percent(-0.5) == "-50.00%"
  assert report.format_percent(None) == "n/a"


def test_markdown_starts_with_the_command_and_holds_every_block():
  text = report.format_markdown(_results())
  lines = text.splitlines()
  assert lines[0] == "# Suite `hand`: Hand-made"
  assert lines[2:6] == ["Produced by:", "", "```", "python -m pipelines.experiment --suite=hand"]
  assert "## " + report.BLOCK_TITLES["per_target"] in lines
  assert "## " + report.BLOCK_TITLES["oracle"] in lines
  assert "| KAML | kaml | mmoe | adm | - | yes | 0.9 |" in lines
  assert "| Oracle | reference | mmoe | oracle | - | no | 1 |" in lines
  assert "![AUC by configuration, per-target evaluation](auc.png)" in lines
  assert "![LogLoss by configuration, every action vs true labels](oracle_logloss.png)" in lines
  assert "Runs per configuration: 2 (seeds 0, 1)." in text


def test_write_report_writes_strict_json_markdown_and_pngs(tmp_path):
  results = _results()
  written = report.write_report(results, str(tmp_path))
  names = [
    "results.json",
    "auc.png",
    "logloss.png",
    "oracle_auc.png",
    "oracle_logloss.png",
    "results.md",
  ]
  assert written == [str(tmp_path / n) for n in names]
  assert sorted(os.listdir(tmp_path)) == sorted(names)  # No temporary files left behind.
  text = (tmp_path / "results.json").read_text()
  # The undefined AUC of Oracle's first run is null, never NaN.
  loaded = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON {c}"))
  assert loaded["configurations"]["Oracle"]["runs"][0]["metrics"]["actions"]["b"]["auc"] is None
  assert loaded["configurations"]["B1"]["summary"]["per_target"]["actions"]["a"]["auc"][
    "mean"
  ] == pytest.approx(0.70)
  assert loaded["command"] == "python -m pipelines.experiment --suite=hand"
  for name in names[1:5]:
    assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert (tmp_path / "results.md").read_text() == report.format_markdown(results)


def test_block_of_names_a_missing_block():
  assert report.block_of({"actions": {}, "overall": {}}, "per_target") == {
    "actions": {},
    "overall": {},
  }
  with pytest.raises(KeyError, match="no 'oracle' block"):
    report.block_of({"actions": {}, "overall": {}}, "oracle")


def test_a_plugin_gets_its_own_relaimpr_row_and_is_never_the_best_baseline():
  variants = SUITE.variants[:2] + (
    suites.Variant("PLE+KAML", backbone="ple", mask_policy="adm", hke=True, role="plugin"),
  )
  suite = suites.Suite("plug", "Plug-in", variants)
  # The plug-in has KAML's runs (a 0.80, b 0.62, all 0.70): the best of every column.
  runs = {
    name: [
      {"seed": s, "run_dir": "-", "metrics": _metrics(r), "train": {}}
      for s, r in enumerate(RUNS["KAML" if name == "PLE+KAML" else name])
    ]
    for name in suite.names
  }
  results = report.build_results(suite, ACTIONS, runs, {v.name: v.settings() for v in variants}, {})
  assert results["rela_impr"]["per_target"] is None  # No kaml-role row in this suite.
  row = results["plugin_rela_impr"]["per_target"]["PLE+KAML"]
  assert row["All"] == {"value": pytest.approx(0.25), "baseline": "B2"}
  assert row["b"] == {"value": pytest.approx(0.2), "baseline": "B1"}
  assert report.format_table(results, "per_target").splitlines()[-1] == (
    "| RelaImpr. (PLE+KAML) | 20.00% (vs B2) | - | 20.00% (vs B1) | - | 25.00% (vs B2) | - |"
  )


def test_calibrated_runs_add_the_raw_block_and_chosen_settings_are_tabled():
  runs = {
    name: [
      {
        "seed": s,
        "run_dir": "-",
        "metrics": dict(_metrics(r), calibration={"a": [1.0, 0.0]}, raw=_metrics(r)),
        "train": {},
      }
      for s, r in enumerate(rs)
    ]
    for name, rs in RUNS.items()
  }
  chosen = {
    "KAML": {
      "trials": 4,
      "validation_auc": 0.73,
      "trial": "abc",
      "point": {"learning_rate": 0.002},
      "changed": {"learning_rate": 0.002},
      "tuning_dir": "tuning/KAML",
    }
  }
  results = report.build_results(
    SUITE,
    ACTIONS,
    runs,
    {v.name: v.settings() for v in SUITE.variants},
    {},
    chosen=chosen,
    test_positives={"test-*": {"a": 400, "b": 310}},
  )
  assert results["blocks"] == ["per_target", "raw", "oracle"]
  raw = results["configurations"]["B1"]["summary"]["raw"]["overall"]["auc"]["mean"]
  assert raw == pytest.approx(0.65)
  assert results["configurations"]["KAML"]["chosen"] == chosen["KAML"]
  markdown = report.format_markdown(results).splitlines()
  assert "| KAML | 4 | 0.7300 | learning_rate=0.002 |" in markdown
  assert "| `test-*` | 400 | 310 |" in markdown
