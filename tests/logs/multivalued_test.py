"""Tests of the numpy form of multi-valued columns (`kaml_tf.logs.multivalued`)."""

import numpy as np
import pytest
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.logs import multivalued


def test_pad_fills_each_row_after_its_ids_and_cuts_long_ones():
  # Rows [7, 8], [], [9, 10, 11] at width 2: the third is cut (callers check lengths first).
  padded = multivalued.pad(np.array([7, 8, 9, 10, 11]), np.array([2, 0, 3]), 2, -1)
  np.testing.assert_array_equal(padded, [[7, 8], [-1, -1], [9, 10]])


def test_pad_of_strings_is_an_object_array_padded_with_empty_bytes():
  padded = multivalued.pad(np.array([b"a"], object), np.array([0, 1]), 2, b"")
  assert padded.tolist() == [[b"", b""], [b"a", b""]]


def test_prefix_lengths_and_flat_prefix_undo_pad():
  padded = np.array([[7, 8, -1], [-1, -1, -1], [1, 2, 3]])
  lengths = multivalued.prefix_lengths(padded, -1, "tags")
  np.testing.assert_array_equal(lengths, [2, 0, 3])
  np.testing.assert_array_equal(multivalued.flat_prefix(padded, lengths), [7, 8, 1, 2, 3])
  strings = np.array([[b"x", ""], [b"", b""]], object)
  np.testing.assert_array_equal(multivalued.prefix_lengths(strings, b"", "s"), [1, 0])


def test_an_id_after_the_padding_is_refused_naming_the_column():
  with pytest.raises(ValueError, match=r"'tags': row 1 has an id after the pad value -1"):
    multivalued.prefix_lengths(np.array([[1, -1], [-1, 5]]), -1, "tags")
  with pytest.raises(ValueError, match=r"'tags' must be \(n, max_values\)"):
    multivalued.prefix_lengths(np.array([1, 2]), -1, "tags")


def test_ragged_column_take_pads_and_finds_pad_ids():
  column = multivalued.RaggedColumn(
    np.array([1, -1, 2, 3]), np.array([2, 0, 2]), np.array([False, False, True, False]), 2, -1
  )
  np.testing.assert_array_equal(column.row_of(), [0, 0, 2, 2])
  # The null id (position 2) is not a pad id, though read as one.
  np.testing.assert_array_equal(multivalued.pad_positions(column), [False, True, False, False])
  kept = column.take(np.array([False, True, True]))
  np.testing.assert_array_equal(kept.padded(), [[-1, -1], [2, 3]])
  np.testing.assert_array_equal(kept.nulls, [True, False])


def test_widths_and_pad_values():
  schema = schema_lib.Schema(
    actions=("a",),
    sparse_features=(
      schema_lib.SparseFeature("u"),
      schema_lib.SparseFeature("tags", max_values=3),
    ),
  )
  assert multivalued.widths(schema) == {"tags": 3}
  assert multivalued.pad_value(tf.int64) == -1
  assert multivalued.pad_value(tf.string) == b""
  with pytest.raises(ValueError, match="not float32"):
    multivalued.pad_value(tf.float32)
