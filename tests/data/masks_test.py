"""Tests of the mask policies (eq. 6 and 8) and the HKE indicator on hand-computed inputs."""

import kaml_tf  # noqa: F401
import numpy as np
import pytest
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.data import masks

AB = schema_lib.Schema(actions=("A", "B"))
AB_TRUE = schema_lib.Schema(actions=("A", "B"), has_true_labels=True)


def _mask(policy, target, counts=None, known=None, alpha=(2, 3), schema=AB):
  config = masks.MaskConfig(policy, alpha).resolve(schema)
  counts = None if counts is None else tf.constant(counts, tf.int64)
  known = None if known is None else tf.constant(known)
  return masks.training_mask(
    config, tf.constant(target, tf.int64), schema.num_actions, counts, known
  ).numpy()


def test_figure_4():
  # Ad task x: target A, reports B above the threshold -> trains A and B.
  # Ad task y: target A, B below the threshold -> trains A only.
  # Ad task z: target A, almost no A conversions, B above the threshold -> trains A and B.
  counts = [[5, 4], [5, 2], [0, 7]]
  np.testing.assert_array_equal(_mask("adm", [0, 0, 0], counts), [[1, 1], [1, 0], [1, 1]])


def test_threshold_is_inclusive_and_per_action():
  # alpha = (2, 3): a count equal to alpha_j trusts action j (eq. 8 uses >=).
  counts = [[2, 2], [1, 3], [2, 3], [1, 2]]
  np.testing.assert_array_equal(
    _mask("adm", [-1, -1, -1, -1], counts), [[1, 0], [0, 1], [1, 1], [0, 0]]
  )
  # Swapping the thresholds swaps the outcome of the first two rows.
  np.testing.assert_array_equal(
    _mask("adm", [-1, -1, -1, -1], counts, alpha=(3, 2)), [[0, 1], [0, 1], [0, 1], [0, 1]]
  )


def test_base_mask_and_other_target():
  # Eq. 6: one-hot of the target; "Other" (-1) trains nothing under the base mask.
  np.testing.assert_array_equal(_mask("base", [0, 1, -1]), [[1, 0], [0, 1], [0, 0]])


def test_other_target_takes_part_only_through_adm():
  np.testing.assert_array_equal(_mask("adm", [-1, -1], [[9, 0], [0, 0]]), [[1, 0], [0, 0]])


def test_unknown_ad_task_falls_back_to_base():
  # The second sample's counts would pass, but its ad task is unknown.
  np.testing.assert_array_equal(
    _mask("adm", [1, 1, -1], [[9, 9], [9, 9], [9, 9]], known=[True, False, False]),
    [[1, 1], [0, 1], [0, 0]],
  )


@pytest.mark.parametrize("policy,schema", [("all", AB), ("oracle", AB_TRUE)])
def test_all_and_oracle_trust_every_label(policy, schema):
  np.testing.assert_array_equal(_mask(policy, [0, -1], schema=schema), np.ones([2, 2]))


def test_oracle_needs_true_labels():
  with pytest.raises(masks.MaskError, match="oracle.*has_true_labels=false"):
    masks.MaskConfig("oracle").resolve(AB)


def test_unknown_policy():
  with pytest.raises(masks.MaskError, match="unknown mask policy 'bogus'"):
    masks.MaskConfig("bogus")


def test_target_indicator_is_one_hot_with_zero_other():
  np.testing.assert_array_equal(
    masks.target_indicator(tf.constant([1, -1, 0], tf.int64), 3).numpy(),
    [[0, 1, 0], [0, 0, 0], [1, 0, 0]],
  )


def test_adm_extension():
  np.testing.assert_array_equal(
    masks.adm_extension(tf.constant([[0, 5], [4, 4]], tf.int64), [4, 5]).numpy(), [[0, 1], [1, 0]]
  )


def test_alpha_length_must_match_actions():
  with pytest.raises(masks.MaskError, match=r"--alpha has 3 value\(s\) \[1, 2, 3\].*2 actions"):
    masks.resolve_alpha([1, 2, 3], AB)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_alpha_values_must_be_integers_at_least_one(bad):
  with pytest.raises(masks.MaskError, match="--alpha for action 'B' must be an integer >= 1"):
    masks.resolve_alpha([1, bad], AB)


def test_default_alpha_by_action_name():
  schema = schema_lib.Schema(actions=("activation", "payment", "custom"))
  assert masks.default_alpha(schema) == (
    masks.DEFAULT_ALPHA["activation"],
    masks.DEFAULT_ALPHA["payment"],
    masks.FALLBACK_ALPHA,
  )
  assert masks.resolve_alpha(None, schema) == masks.default_alpha(schema)
  assert masks.resolve_alpha([1.0, 2, 3], schema) == (1, 2, 3)


def test_adm_without_counts_is_an_error():
  config = masks.MaskConfig("adm", (1, 1)).resolve(AB)
  with pytest.raises(masks.MaskError, match="window conversion counts"):
    masks.training_mask(config, tf.constant([0], tf.int64), 2)
