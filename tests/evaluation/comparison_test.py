"""Comparison of configurations: per-seed spread, intervals against the reference, table."""

import numpy as np
import pytest

from kaml_tf.evaluation import comparison

ACTIONS = ("a", "b")
LABELS = np.array([[1, 0], [1, 1], [0, 0], [0, 1], [1, 0], [0, 0]])
TARGET = np.array([0, 0, 0, 1, 1, 1])


def _config(name, *runs):
  return comparison.Configuration(
    name=name,
    model_dirs=[f"/m/{name}/{i}" for i in range(len(runs))],
    served=list(runs),
    raw=list(runs),
    calibrated=[False] * len(runs),
  )


def test_seed_spread_and_reference_difference_by_hand():
  # Action a rows: labels 1, 1, 0. "ref" scores them 0.2, 0.9, 0.5 -> AUC 1/2; "new" seed 0
  # ranks them perfectly (AUC 1), seed 1 as ref (AUC 1/2).
  ref = np.array([[0.2, 0], [0.9, 0], [0.5, 0], [0, 0.9], [0, 0.1], [0, 0.2]])
  perfect = np.array([[0.8, 0], [0.9, 0], [0.5, 0], [0, 0.9], [0, 0.1], [0, 0.2]])
  result = comparison.compare(
    LABELS,
    TARGET,
    [_config("ref", ref, ref), _config("new", perfect, ref)],
    "ref",
    ACTIONS,
    num_resamples=20,
  )
  cell = result["configurations"]["new"]["served"]["a"]["auc"]
  assert cell["mean"] == pytest.approx(0.75)
  assert cell["std"] == pytest.approx(np.std([1.0, 0.5], ddof=1))
  assert cell["runs"] == 2
  assert result["configurations"]["new"]["served"]["a"]["count"] == 3
  versus = result["configurations"]["new"]["versus_reference"]["served"]["a"]["auc"]
  assert versus["difference"] == pytest.approx(0.25)
  assert "versus_reference" not in result["configurations"]["ref"]
  table = comparison.format_markdown(result)
  assert "| new | 0.7500 ± 0.3536 |" in table
  assert "| new | +0.2500 [" in table


def test_an_unknown_reference_is_refused():
  with pytest.raises(ValueError, match="reference 'x' is not one of"):
    comparison.compare(LABELS, TARGET, [_config("ref", np.zeros((6, 2)))], "x", ACTIONS)
