"""Model building blocks. Layers never see labels or masks; each is Keras-serialisable.

Every `call` is decorated with `no_autograph` (see that module for why).
"""

from kaml_tf.layers.embedding import FeatureEmbedding
from kaml_tf.layers.hke import HKETowers
from kaml_tf.layers.mlp import MLP
from kaml_tf.layers.mmoe import MMoE
from kaml_tf.layers.parallel_mlp import ParallelDense
from kaml_tf.layers.parallel_mlp import ParallelMLP
from kaml_tf.layers.ple import PLE
from kaml_tf.layers.single_task import SingleTask
from kaml_tf.layers.star import PartitionedNormalization
from kaml_tf.layers.star import Star
from kaml_tf.layers.star import StarDense
from kaml_tf.layers.taml import TAML
from kaml_tf.layers.taml import LearnerFusion
from kaml_tf.layers.towers import Towers

__all__ = [
  "FeatureEmbedding",
  "HKETowers",
  "LearnerFusion",
  "MLP",
  "MMoE",
  "PLE",
  "ParallelDense",
  "ParallelMLP",
  "PartitionedNormalization",
  "SingleTask",
  "Star",
  "StarDense",
  "TAML",
  "Towers",
]
