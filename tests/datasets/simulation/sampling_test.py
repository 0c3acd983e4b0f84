"""Tests of the simulator's sampling primitives, by hand."""

import math

import numpy as np

from kaml_tf.datasets.simulation import sampling


def test_zipf_probs_by_hand():
  np.testing.assert_allclose(sampling.zipf_probs(3, 1.0), [6 / 11, 3 / 11, 2 / 11])
  np.testing.assert_allclose(sampling.zipf_probs(4, 0.0), [0.25] * 4)
  np.testing.assert_allclose(sampling.zipf_probs(2, 2.0), [0.8, 0.2])


def test_cdf_ends_at_exactly_one():
  # 0.1 + 0.2 + 0.7 sums to 0.9999999999999999 in floating point; the last step must be 1.
  cdf = sampling.cdf(np.array([0.1, 0.2, 0.7]))
  np.testing.assert_allclose(cdf, [0.1, 0.3, 1.0])
  assert cdf[-1] == 1.0


def test_draw_by_hand():
  cdf = np.array([0.25, 0.5, 1.0])
  u = np.array([0.0, 0.24, 0.25, 0.6, math.nextafter(1.0, 0.0)])
  # A uniform on a CDF step belongs to the next item; none falls past the last item.
  np.testing.assert_array_equal(sampling.draw(cdf, u), [0, 0, 1, 2, 2])


def test_grouped_sampler_by_hand():
  sampler = sampling.GroupedSampler.build(
    [np.array([10, 11]), np.array([20])], [np.array([0.25, 0.75]), np.array([1.0])]
  )
  groups = np.array([0, 0, 0, 1, 1])
  u = np.array([0.1, 0.25, 0.9, 0.0, math.nextafter(1.0, 0.0)])
  # u = 0.25 sits on the first CDF step and belongs to the second item; 1 + (1 - 2^-53)
  # rounds to 2.0, which must stay in group 1.
  np.testing.assert_array_equal(sampler.draw(groups, u), [10, 11, 11, 20, 20])
