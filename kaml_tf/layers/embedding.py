"""The shared embedding layer (paper section 3.1): raw features -> the concatenated vector x.

For every schema feature, in schema order (sparse features first, then dense ones):

* int64 ids without a vocabulary: `floormod(id, num_buckets)`. Keras' `Hashing` layer would
  first turn every int into a string and hash that, which is slower
  (measured: docs/results/timings/library.md#integer-id-hashing); production id features are
  already well-spread integers (user / item / ad ids), so a modulo is an adequate and much
  cheaper hash. `floormod` keeps negative ids in range.
* string ids without a vocabulary: `tf.strings.to_hash_bucket_fast` (FarmHash) into
  `num_buckets`.
* ids with a vocabulary: `IntegerLookup` / `StringLookup` with one out-of-vocabulary row at
  index 0, so row `i + 1` is `vocabulary[i]` (this is `SparseFeature.input_dim` rows).
* dense floats: `(t(x) - mean) / std` with the schema's fixed statistics, where `t` is the
  identity or, for `transform="log1p"`, `sign(x) * log1p(|x|)`.

Each sparse feature has its own embedding table of `embedding_dim` columns (the schema's, or one
size for all features when `embedding_dim` is given).

A multi-valued feature (`max_values` M > 1) arrives as `(batch, M)` ids padded with its
`pad_value`. Every id is hashed or looked up as above; the pad entries (wherever they stand)
are masked out, and the rows of the real ids are combined with the feature's `combiner`:
`sum`; `mean`, the sum over the number of real ids; `sqrtn`, the sum over its square root.
A row without real ids (the empty list) gets the zero vector under every combiner. No
operation mixes rows, so a row's vector does not depend on the rest of the batch.

Embedding L2 (`l2` > 0) penalises the rows the batch looks up, not the whole tables:
`l2 * mean_i sum_f ||e_f(x_i)||^2`, registered with `add_loss` (so it is in `model.losses` and
the trainer adds it to the objective). Why the rows used: its gradient is, like the lookup's,
an `IndexedSlices` of the batch's rows, whereas a penalty on the full tables
(`embeddings_regularizer`) reads and differentiates every row of every table on every step (a
million-row id table each batch) and shrinks ids that are absent from the batch, i.e. decays
rare ids by the number of steps rather than by their use. Per occurrence, an id's
penalty grows with its frequency just as its data gradient does, so the coefficient is a prior
on every example (the usual L2 of large sparse tables); it is the mean over the batch, so it
does not change with the batch size. Dense features are values, not parameters: not penalised.
For a multi-valued feature, `||e_f(x_i)||^2` is the sum of the squared norms of the rows of the
row's real ids, each occurrence once (the penalty is on looked-up rows, not on the combined
vector): the pad entries' rows are zeroed by the mask before the penalty is taken, so they add
nothing to it nor to its gradient, and an empty list adds 0.
"""

from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.layers import checks
from kaml_tf.layers import no_autograph


def _unused_token(vocabulary, default, fallback):
  """An OOV token not in `vocabulary` (Keras silently drops a vocabulary entry equal to it)."""
  if default not in vocabulary:
    return default
  return fallback(vocabulary)


@tf.keras.utils.register_keras_serializable(package="kaml_tf")
class FeatureEmbedding(tf.keras.layers.Layer):
  """Maps the dict of raw features to the concatenated representation x.

  Call args:
    inputs: Dict `{feature_name: (batch,) tensor}` holding at least every schema feature
      (int64 or string ids, float32 dense values), `(batch, max_values)` padded ids for a
      multi-valued feature; extra keys are ignored.

  Returns:
    `(batch, output_dim)` float32: the sparse embeddings then the normalised dense values.
  """

  def __init__(
    self,
    schema: Union[schema_lib.Schema, Mapping[str, Any]],
    embedding_dim: Optional[int] = None,
    l2: float = 0.0,
    **kwargs,
  ):
    """Initialises the layer.

    Args:
      schema: The feature schema, or its `to_dict()` form (as stored in the layer config).
      embedding_dim: Width of every embedding table; `None` uses each feature's
        `embedding_dim` from the schema.
      l2: Coefficient of the L2 penalty on the looked-up rows (module docstring); 0 adds none.
      **kwargs: Base `Layer` arguments.
    """
    super().__init__(**kwargs)
    owner = f"FeatureEmbedding({self.name})"
    if isinstance(schema, schema_lib.Schema):
      self.schema = schema
    elif isinstance(schema, Mapping):
      self.schema = schema_lib.Schema.from_dict(schema, source=f"{owner} config")
    else:
      raise ValueError(f"{owner}: schema must be a Schema or its dict form, got {schema!r}")
    if not self.schema.feature_names:
      raise ValueError(f"{owner}: the schema has no features to embed")
    self.embedding_dim = (
      None if embedding_dim is None else checks.positive_int(embedding_dim, "embedding_dim", owner)
    )
    self.l2 = checks.non_negative_float(l2, "l2", owner)
    self.lookups: List[Optional[tf.keras.layers.Layer]] = []
    self.tables: List[tf.keras.layers.Embedding] = []
    for f in self.schema.sparse_features:
      self.lookups.append(self._make_lookup(f))
      self.tables.append(
        tf.keras.layers.Embedding(f.input_dim, self._dim(f), name=f"embedding_{f.name}")
      )
    dense = self.schema.dense_features
    self._means = np.array([f.mean for f in dense], dtype=np.float32)
    self._stds = np.array([f.std for f in dense], dtype=np.float32)
    self._log1p = np.array([f.transform == "log1p" for f in dense], dtype=bool)

  def _dim(self, feature: schema_lib.SparseFeature) -> int:
    return self.embedding_dim if self.embedding_dim is not None else feature.embedding_dim

  def _make_lookup(self, f: schema_lib.SparseFeature) -> Optional[tf.keras.layers.Layer]:
    if not f.vocabulary:
      return None
    vocabulary = list(f.vocabulary)
    if f.dtype == "int64":
      return tf.keras.layers.IntegerLookup(
        vocabulary=vocabulary,
        num_oov_indices=1,
        mask_token=None,
        oov_token=_unused_token(vocabulary, -1, lambda v: min(v) - 1),
        vocabulary_dtype="int64",
        name=f"lookup_{f.name}",
      )
    return tf.keras.layers.StringLookup(
      vocabulary=vocabulary,
      num_oov_indices=1,
      mask_token=None,
      oov_token=_unused_token(vocabulary, "[UNK]", lambda v: "[UNK]" + max(v, key=len)),
      name=f"lookup_{f.name}",
    )

  @property
  def output_dim(self) -> int:
    """Width of x: the sum of the embedding widths plus the number of dense features."""
    return sum(self._dim(f) for f in self.schema.sparse_features) + len(self.schema.dense_features)

  def _feature(self, inputs: Mapping[str, tf.Tensor], name: str, width: int = 1) -> tf.Tensor:
    """The input `name` as `(batch,)`, or `(batch, width)` when `width` > 1."""
    if name not in inputs:
      raise ValueError(
        f"FeatureEmbedding({self.name}): missing input feature {name!r}; got {sorted(inputs)}"
      )
    value = inputs[name]
    if width == 1:
      # A (batch, 1) column from another reader is accepted as well as the contract's (batch,).
      return tf.reshape(value, [-1])
    if value.shape.rank != 2 or value.shape[-1] not in (None, width):
      raise ValueError(
        f"FeatureEmbedding({self.name}): multi-valued feature {name!r} must be (batch, "
        f"{width}) ids padded with its pad value, got shape {value.shape.as_list()}"
      )
    return value

  def _index(self, f: schema_lib.SparseFeature, lookup, ids: tf.Tensor) -> tf.Tensor:
    """Table rows of `ids` (any shape), by vocabulary lookup or hashing."""
    if lookup is not None:
      return lookup(ids)
    if f.dtype == "int64":
      return tf.math.floormod(tf.cast(ids, tf.int64), tf.constant(f.num_buckets, tf.int64))
    return tf.strings.to_hash_bucket_fast(ids, f.num_buckets)

  @no_autograph.no_autograph
  def call(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    parts, looked_up = [], []
    for f, lookup, table in zip(self.schema.sparse_features, self.lookups, self.tables):
      ids = self._feature(inputs, f.name, f.max_values)
      rows = table(self._index(f, lookup, ids))
      if f.multivalued:
        rows, vector = combined(rows, tf.not_equal(ids, f.pad_value), f.combiner)
      else:
        vector = rows
      looked_up.append(rows)
      parts.append(vector)
    if self.l2 > 0 and looked_up:
      self.add_loss(self.l2 * looked_up_l2(looked_up))
    if self.schema.dense_features:
      values = tf.stack(
        [tf.cast(self._feature(inputs, f.name), tf.float32) for f in self.schema.dense_features],
        axis=1,
      )
      if self._log1p.any():
        values = tf.where(self._log1p, tf.sign(values) * tf.math.log1p(tf.abs(values)), values)
      parts.append((values - self._means) / self._stds)
    return parts[0] if len(parts) == 1 else tf.concat(parts, axis=1)

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config.update(
      {"schema": self.schema.to_dict(), "embedding_dim": self.embedding_dim, "l2": self.l2}
    )
    return config


def combined(rows: tf.Tensor, real: tf.Tensor, combiner: str) -> Tuple[tf.Tensor, tf.Tensor]:
  """Masks the pad entries of a multi-valued feature's rows and combines the real ones.

  Args:
    rows: `(batch, M, d)` looked-up embedding rows, pad entries included.
    real: `(batch, M)` bool, True where the id is real (not the pad value).
    combiner: "sum", "mean" (the sum over the number of real ids) or "sqrtn" (over its
      square root).

  Returns:
    (masked, vector): the rows with the pad entries' zeroed, `(batch, M, d)`, and their
    combination `(batch, d)`, the zero vector for a row without real ids.
  """
  weights = tf.cast(real, rows.dtype)
  masked = rows * weights[:, :, tf.newaxis]
  total = tf.reduce_sum(masked, axis=1)
  if combiner == "sum":
    return masked, total
  # An empty list divides its zero sum by 1, not 0: the zero vector, never NaN.
  count = tf.maximum(tf.reduce_sum(weights, axis=1, keepdims=True), 1.0)
  if combiner == "mean":
    return masked, total / count
  if combiner == "sqrtn":
    return masked, total / tf.sqrt(count)
  raise ValueError(f"combiner must be one of {schema_lib.COMBINERS}, got {combiner!r}")


def looked_up_l2(vectors: List[tf.Tensor]) -> tf.Tensor:
  """`mean_i sum_f ||vectors[f][i]||^2`, unweighted: the embedding penalty of one batch.

  Args:
    vectors: Per sparse feature, the `(batch, d_f)` looked-up rows, or for a multi-valued
      feature the `(batch, M, d_f)` rows with the pad entries zeroed (`combined`), whose
      squares are summed over the row's ids.

  Returns:
    A float32 scalar.
  """
  per_sample = tf.add_n(
    [
      tf.reduce_sum(tf.square(tf.cast(v, tf.float32)), axis=list(range(1, v.shape.rank)))
      for v in vectors
    ]
  )  # (batch,)
  return tf.reduce_mean(per_sample)
