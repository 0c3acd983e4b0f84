"""Tests of the DeepCTR peer that do not need DeepCTR: its inputs and the missing-install error."""

import sys

import kaml_tf  # noqa: F401
import numpy as np
import pytest

from kaml_tf import schema as schema_lib
from benchmarks import peer_mmoe

SCHEMA = schema_lib.Schema(
  actions=("A", "B"),
  sparse_features=(
    schema_lib.SparseFeature("ad_task_id", num_buckets=10),
    schema_lib.SparseFeature("city", dtype="string", vocabulary=("x", "y")),
  ),
  dense_features=(schema_lib.DenseFeature("bid", mean=1.0, std=2.0),),
)


@pytest.fixture
def no_deepctr(monkeypatch):
  # A None entry in sys.modules makes `import deepctr` raise ImportError.
  for name in ("deepctr", "deepctr.models", "deepctr.feature_column"):
    monkeypatch.setitem(sys.modules, name, None)


def test_missing_deepctr_names_the_install_command(no_deepctr):
  with pytest.raises(
    peer_mmoe.PeerUnavailableError, match=r"pip install --no-deps deepctr==0\.9\.4"
  ):
    peer_mmoe.import_deepctr()
  with pytest.raises(ImportError, match="benchmark-only extra"):
    peer_mmoe.build_peer(SCHEMA)


def test_numpy_inputs_maps_ids_and_standardises():
  columns = {
    "ad_task_id": np.array([3, 12, 25], np.int64),
    "city": np.array([b"y", b"x", b"z"], object),
    "bid": np.array([1.0, 3.0, -1.0], np.float32),
    "label_A": np.array([1, 0, 1], np.int64),
    "label_B": np.array([0, 0, 1], np.int64),
  }
  inputs, labels = peer_mmoe.numpy_inputs(columns, SCHEMA)
  np.testing.assert_array_equal(inputs["ad_task_id"], [3, 2, 5])  # modulo 10 buckets
  assert inputs["ad_task_id"].dtype == np.int32
  np.testing.assert_array_equal(inputs["city"], [1, 0, 0])  # vocabulary index, unknown -> 0
  np.testing.assert_allclose(inputs["bid"], [0.0, 1.0, -1.0])  # (x - 1) / 2
  assert len(labels) == 2
  np.testing.assert_array_equal(labels[0], [1.0, 0.0, 1.0])
  np.testing.assert_array_equal(labels[1], [0.0, 0.0, 1.0])
  assert labels[0].dtype == np.float32
