import pytest

from kaml_tf.daily import markers


def test_a_finished_step_is_read_back_not_rerun(tmp_path):
  calls = []

  def step():
    calls.append(1)
    return {"rows": 3}

  assert markers.once(str(tmp_path), "validate", step) == {"rows": 3}
  assert markers.once(str(tmp_path), "validate", step) == {"rows": 3}
  assert calls == [1]


def test_a_failed_step_leaves_no_marker(tmp_path):
  def failing():
    raise RuntimeError("killed")

  with pytest.raises(RuntimeError):
    markers.once(str(tmp_path), "train", failing)
  assert markers.once(str(tmp_path), "train", lambda: {"ok": True}) == {"ok": True}
