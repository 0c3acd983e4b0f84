import math

from kaml_tf.daily import gate

PROD = {"auc": 0.70, "logloss": 0.40}


def test_no_production_promotes():
  assert gate.decide(PROD, None, 0.0, 0.0) == gate.Decision(True, ["no production model yet"])


def test_within_tolerances_promotes():
  # AUC 0.001 lower, LogLoss 0.001 higher, both within 0.002.
  d = gate.decide({"auc": 0.699, "logloss": 0.401}, PROD, 0.002, 0.002)
  assert d.promote
  assert len(d.reasons) == 2 and all("within tolerance" in r for r in d.reasons)


def test_auc_lower_beyond_tolerance_blocks():
  d = gate.decide({"auc": 0.69, "logloss": 0.39}, PROD, 0.002, 0.002)
  assert not d.promote
  assert d.reasons[0] == ("auc 0.6900 is 0.0100 lower than production's 0.7000 (tolerance 0.002)")


def test_logloss_higher_beyond_tolerance_blocks():
  d = gate.decide({"auc": 0.75, "logloss": 0.45}, PROD, 0.002, 0.002)
  assert not d.promote
  assert d.reasons[1].startswith("logloss 0.4500 is 0.0500 higher")


def test_undefined_candidate_metric_blocks_undefined_production_does_not():
  assert not gate.decide({"auc": math.nan, "logloss": 0.3}, PROD, 0.1, 0.1).promote
  assert gate.decide({"auc": 0.6, "logloss": 0.3}, {"auc": math.nan, "logloss": 0.4}, 0, 0).promote
