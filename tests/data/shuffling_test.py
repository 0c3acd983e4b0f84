"""Tests of `shuffling`: the window shuffle is a permutation, seeded and reproducible."""

import kaml_tf  # noqa: F401
import numpy as np
import tensorflow as tf

from kaml_tf.data import shuffling


def _columns(n):
  # "target_action" is the column the permutation counts rows by.
  return {"target_action": tf.range(n, dtype=tf.int64), "x": tf.range(n, dtype=tf.float32) / 2}


def test_permute_moves_whole_rows():
  out = shuffling.permute(_columns(10), tf.constant([1, 2], tf.int64))
  rows = out["target_action"].numpy()
  assert sorted(rows.tolist()) == list(range(10))
  assert rows.tolist() != list(range(10))
  np.testing.assert_array_equal(out["x"].numpy(), rows / 2)


def test_permute_is_a_function_of_the_seed():
  first = shuffling.permute(_columns(10), tf.constant([1, 2], tf.int64))["target_action"]
  again = shuffling.permute(_columns(10), tf.constant([1, 2], tf.int64))["target_action"]
  other = shuffling.permute(_columns(10), tf.constant([2, 1], tf.int64))["target_action"]
  np.testing.assert_array_equal(first, again)
  assert first.numpy().tolist() != other.numpy().tolist()


def _batches(seed, drop_remainder=False, window=6, n=18, batch_size=3):
  windows = tf.data.Dataset.from_tensor_slices(_columns(n)).batch(window)
  ds = shuffling.permuted_batches(windows, batch_size, seed, drop_remainder, deterministic=True)
  return [b["target_action"].numpy().tolist() for b in ds]


def test_permuted_batches_permute_within_each_window():
  batches = _batches(seed=4)
  assert [len(b) for b in batches] == [3] * 6
  # Batches 0-1 hold window 0 (rows 0-5), 2-3 window 1, 4-5 window 2.
  for i, batch in enumerate(batches):
    assert {row // 6 for row in batch} == {i // 2}
  assert sorted(sum(batches, [])) == list(range(18))
  assert sum(batches, []) != list(range(18))


def test_permuted_batches_are_seed_deterministic():
  assert _batches(seed=4) == _batches(seed=4)
  assert _batches(seed=4) != _batches(seed=5)


def test_permuted_batches_reshuffle_on_every_pass():
  windows = tf.data.Dataset.from_tensor_slices(_columns(18)).batch(6)
  ds = shuffling.permuted_batches(windows, 3, 4, False, deterministic=True)
  first, second = ([b["target_action"].numpy().tolist() for b in ds] for _ in range(2))
  assert sorted(sum(first, [])) == sorted(sum(second, [])) == list(range(18))
  assert first != second
  assert first == _batches(seed=4)  # a fresh pipeline replays the first pass


def test_drop_remainder_drops_only_the_last_partial_batch():
  # Windows of 5 cut into batches of 3: 15 rows, the last batch is full either way; of 14
  # rows (windows 5, 5, 4) the last 2 are dropped.
  assert [len(b) for b in _batches(seed=1, window=5, n=14)] == [3, 3, 3, 3, 2]
  assert [len(b) for b in _batches(seed=1, window=5, n=14, drop_remainder=True)] == [3] * 4


def test_shuffle_files_is_a_seeded_permutation_per_pass():
  files = shuffling.shuffle_files(tf.data.Dataset.range(8), 8, seed=3)
  first, second = (list(files.as_numpy_iterator()) for _ in range(2))
  assert sorted(first) == sorted(second) == list(range(8))
  assert first != second
  again = shuffling.shuffle_files(tf.data.Dataset.range(8), 8, seed=3)
  assert list(again.as_numpy_iterator()) == first
