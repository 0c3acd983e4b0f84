"""Tests of the suite definitions: every table's configurations and their explicit knobs."""

import pytest

from experiments import suites
from kaml_tf.models import config as model_config_lib


def _knobs(suite_name):
  return {
    v.name: (v.backbone, v.mask_policy, v.hke, v.gamma, v.alpha, v.role)
    for v in suites.get(suite_name).variants
  }


def test_baselines_is_table_2_in_the_papers_row_order_then_the_plugins():
  suite = suites.get("baselines")
  assert suite.names == (
    "SingleTask",
    "MMoE",
    "SharedBottom",
    "PLE",
    "TAML",
    "STAR",
    "KAML",
    "PLE+KAML",
    "TAML+KAML",
  )
  assert _knobs("baselines") == {
    "SingleTask": ("single_task", "base", False, 1.0, (), "baseline"),
    "MMoE": ("mmoe", "base", False, 1.0, (), "baseline"),
    "SharedBottom": ("shared_bottom", "base", False, 1.0, (), "baseline"),
    "PLE": ("ple", "base", False, 1.0, (), "baseline"),
    "TAML": ("taml", "base", False, 1.0, (), "baseline"),
    "STAR": ("star", "base", False, 1.0, (), "baseline"),
    "KAML": ("mmoe", "adm", True, 0.9, (), "kaml"),
    # ADM + HKE + RLU on the two other expert backbones; never a baseline.
    "PLE+KAML": ("ple", "adm", True, 0.9, (), "plugin"),
    "TAML+KAML": ("taml", "adm", True, 0.9, (), "plugin"),
  }
  assert (suite.data, suite.oracle_evaluation) == ("simulated", True)
  assert suite.kaml.name == "KAML"


def test_ablation_is_table_4():
  assert suites.get("ablation").names == ("MMoE", "MMoE+ADM", "MMoE+ADM+HKE", "MMoE+RLU", "KAML")
  assert _knobs("ablation") == {
    "MMoE": ("mmoe", "base", False, 1.0, (), "baseline"),
    "MMoE+ADM": ("mmoe", "adm", False, 1.0, (), "baseline"),
    "MMoE+ADM+HKE": ("mmoe", "adm", True, 1.0, (), "baseline"),
    "MMoE+RLU": ("mmoe", "base", False, 0.9, (), "baseline"),
    "KAML": ("mmoe", "adm", True, 0.9, (), "kaml"),
  }


def test_oracle_and_kuairand_follow_table_3():
  assert _knobs("oracle") == {
    "Vanilla": ("mmoe", "base", False, 1.0, (), "baseline"),
    "KAML": ("mmoe", "adm", True, 0.9, (), "kaml"),
    "Oracle": ("mmoe", "oracle", False, 1.0, (), "reference"),
  }
  # KuaiRand's KAML: ADM with alpha = 1 per action plus RLU, no HKE (paper 4.2.2).
  assert _knobs("kuairand") == {
    "Vanilla": ("mmoe", "base", False, 1.0, (), "baseline"),
    "KAML": ("mmoe", "adm", False, 0.9, (1, 1, 1, 1), "kaml"),
    "Oracle": ("mmoe", "oracle", False, 1.0, (), "reference"),
  }
  assert suites.get("oracle").data == "simulated"
  assert suites.get("kuairand").data == "kuairand"
  assert all(s.oracle_evaluation for s in suites.SUITES.values())


def test_only_adm_variants_need_statistics():
  assert [v.name for v in suites.get("ablation").variants if v.needs_stats] == [
    "MMoE+ADM",
    "MMoE+ADM+HKE",
    "KAML",
  ]


def test_model_config_applies_the_shared_overrides_under_the_variants_own_knobs():
  kaml = suites.get("oracle").variant("KAML")
  config = kaml.model_config({"expert_units": [8], "num_experts": 2, "embedding_dim": 4})
  assert config == model_config_lib.ModelConfig(
    backbone="mmoe", hke=True, expert_units=(8,), num_experts=2, embedding_dim=4
  )
  assert suites.get("baselines").variant("PLE").model_config() == model_config_lib.ModelConfig(
    backbone="ple"
  )


@pytest.mark.parametrize(
  "overrides, message",
  [
    ({"backbone": "ple"}, "model_overrides: 'backbone' is set by each configuration"),
    ({"hke": True}, "model_overrides: 'hke' is set by each configuration"),
    ({"width": 3}, "model_overrides: unknown ModelConfig field 'width'"),
    ({"num_experts": 0}, "model_overrides of MMoE: ModelConfig: num_experts"),
  ],
)
def test_bad_model_overrides_name_the_field(overrides, message):
  with pytest.raises(ValueError, match=message):
    suites.get("ablation").variant("MMoE").model_config(overrides)


@pytest.mark.parametrize(
  "kwargs, message",
  [
    (dict(name="X", hke=True), "HKE needs the 'adm' mask policy, got 'base'"),
    (dict(name="X", alpha=(1, 1)), r"alpha \[1, 1\] is only used by the 'adm' policy"),
    (dict(name="X", backbone="dcn"), "backbone must be one of"),
    (dict(name="X", mask_policy="some"), "mask_policy must be one of"),
    (dict(name="X", gamma=1.5), "gamma must be in \\[0, 1\\], got 1.5"),
    (dict(name="X", role="best"), "role must be one of"),
    (dict(name="a/b"), "name must be a non-empty folder name, got 'a/b'"),
  ],
)
def test_invalid_variants_are_rejected(kwargs, message):
  with pytest.raises(ValueError, match=message):
    suites.Variant(**kwargs)


def test_a_suite_rejects_duplicate_names_and_two_kaml_rows():
  with pytest.raises(ValueError, match="uniquely named"):
    suites.Suite("s", "t", (suites.Variant("A"), suites.Variant("A")))
  with pytest.raises(ValueError, match="at most one variant may have the kaml role"):
    suites.Suite("s", "t", (suites.Variant("A", role="kaml"), suites.Variant("B", role="kaml")))


def test_select_keeps_row_order_and_names_unknown_configurations():
  suite = suites.get("ablation")
  assert suite.select(["KAML", "MMoE"]).names == ("MMoE", "KAML")
  assert suite.select([]) is suite
  with pytest.raises(
    ValueError,
    match=r"configs: suite 'ablation' has no configuration\(s\) "
    r"\['Vanilla'\]",
  ):
    suite.select(["Vanilla"])
  with pytest.raises(KeyError, match="has no configuration 'X'"):
    suite.variant("X")


def test_unknown_suite_lists_the_suites():
  with pytest.raises(
    ValueError,
    match=r"suite: unknown suite 'tables'; expected one of "
    r"\['baselines', 'ablation', 'oracle', 'kuairand'\]",
  ):
    suites.get("tables")


def test_settings_are_json_ready():
  assert suites.get("kuairand").variant("KAML").settings() == {
    "backbone": "mmoe",
    "mask_policy": "adm",
    "hke": False,
    "gamma": 0.9,
    "alpha": [1, 1, 1, 1],
    "role": "kaml",
  }
