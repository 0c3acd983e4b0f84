"""Tests for kaml_tf.layers.checks: accepted values pass through, bad ones are quoted."""

import pytest

from kaml_tf.layers import checks


def test_accepts_and_normalises_good_values():
  assert checks.positive_int(3, "n", "Owner") == 3
  assert checks.non_negative_float(0, "w", "Owner") == 0.0
  assert checks.dropout_rate(0.25, "Owner") == 0.25
  assert checks.units([4, 2], "units", "Owner") == (4, 2)
  assert checks.units((), "units", "Owner") == ()
  assert checks.activation("relu", "Owner") == "relu"
  assert checks.activation(None, "Owner") is None


@pytest.mark.parametrize(
  "call, message",
  [
    (
      lambda: checks.positive_int(0, "num_heads", "Owner"),
      "Owner: num_heads must be a positive integer, got 0",
    ),
    (lambda: checks.positive_int(True, "num_heads", "Owner"), "got True"),
    (lambda: checks.positive_int(2.0, "num_heads", "Owner"), "got 2.0"),
    (
      lambda: checks.non_negative_float(-0.5, "weight", "Owner"),
      "Owner: weight must be a finite number >= 0, got -0.5",
    ),
    (lambda: checks.non_negative_float(float("inf"), "weight", "Owner"), "got inf"),
    (lambda: checks.dropout_rate(1.0, "Owner"), "Owner: dropout must be in [0, 1), got 1.0"),
    (lambda: checks.units("64", "units", "Owner"), "got '64'"),
    (lambda: checks.units((64, 0), "units", "Owner"), "got (64, 0)"),
    (
      lambda: checks.units((), "units", "Owner", allow_empty=False),
      "Owner: units needs at least one layer, got ()",
    ),
    (lambda: checks.activation("relux", "Owner"), "Owner: unknown activation 'relux'"),
    (lambda: checks.activation(len, "Owner"), "must be the name of a Keras activation"),
  ],
)
def test_rejects_bad_values_quoting_them(call, message):
  with pytest.raises(ValueError) as info:
    call()
  assert message in str(info.value)
