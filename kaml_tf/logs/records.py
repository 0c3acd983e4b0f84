"""Log records: `tf.train.Example` TFRecord files, one post-click sample per record.

Writing encodes whole columns at once: the `tf.train.Example` wire format of one scalar int64
or float feature is a fixed byte pattern around the value, so a numpy encoder builds every
record of a batch without a Python loop over fields, far faster than filling protos one by one,
which matters for the simulator's million-row logs
(measured: docs/results/timings/library.md#tfrecord-column-encoder). A multi-valued int64
feature, an `(n, max_values)` column padded with -1, is written as a var-len `int64_list` of
each row's ids before the padding (`kaml_tf.logs.multivalued`), through the same byte blocks
with varint lengths. String features fall back to the protobuf API. `tests/logs/records_test.py`
checks the bytes against protobuf and TensorFlow's own parser.

Files are sharded as `<prefix>-00000-of-00004.tfrecord[.gz]` and written atomically: every
shard goes to a hidden temporary file, renamed into place only when the writer closes cleanly.
"""

import abc
import os
from typing import Dict, List, Mapping, Optional, Sequence, Union

import kaml_tf  # noqa: F401
import numpy as np
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf import atomic
from kaml_tf.logs import columns as columns_lib
from kaml_tf.logs import multivalued

GZIP_SUFFIX = ".gz"
TFRECORD_SUFFIX = ".tfrecord"


def compression_of(path: str) -> str:
  """ "GZIP" for `*.gz` files, "" otherwise (the TFRecord compression type)."""
  return "GZIP" if path.endswith(GZIP_SUFFIX) else ""


def list_files(files: Union[str, Sequence[str]]) -> List[str]:
  """Expands a glob, a comma-separated list of globs, or a list of paths; sorted, non-empty.

  Raises:
    FileNotFoundError: naming the pattern when nothing matches.
  """
  patterns = files.split(",") if isinstance(files, str) else list(files)
  found: List[str] = []
  for pattern in patterns:
    matches = sorted(tf.io.gfile.glob(pattern)) if pattern else []
    if not matches:
      raise FileNotFoundError(f"no log files match {pattern!r}")
    found.extend(matches)
  return found


def _varint_matrix(values: np.ndarray):
  """Varint bytes of int64 `values` (two's complement for negatives, as protobuf does).

  Returns:
    (bytes (n, 10) uint8, lengths (n,) int64).
  """
  u = values.astype(np.int64).view(np.uint64)
  shifts = np.arange(10, dtype=np.uint64) * np.uint64(7)
  groups = ((u[:, None] >> shifts[None, :]) & np.uint64(0x7F)).astype(np.uint8)
  remaining = u[:, None] >> (shifts[None, :] + np.uint64(7))
  lengths = 1 + np.count_nonzero(remaining, axis=1)
  more = np.arange(10)[None, :] < (lengths[:, None] - 1)
  return groups | (more.astype(np.uint8) << 7), lengths.astype(np.int64)


def _block(parts: Sequence[np.ndarray], n: int):
  """Concatenates per-row byte columns: each part is (n, w) uint8 or a constant 1-D prefix."""
  cols = [np.broadcast_to(p, (n, p.shape[-1])) for p in parts]
  return np.concatenate(cols, axis=1)


def _int64_field(key: bytes, values: np.ndarray):
  """Wire bytes of a map entry `key -> Feature(int64_list=[v])` per row, padded.

  Returns:
    (bytes (n, w) uint8 left-aligned, lengths (n,)).
  """
  n = values.shape[0]
  vbytes, vlen = _varint_matrix(values)
  k = len(key)
  # entry = 0x0A k key 0x12 (vlen+4) 0x1A (vlen+2) 0x0A vlen <varint>; outer = 0x0A (vlen+k+8).
  head = np.frombuffer(
    bytes([0x0A]) + b"\x00" + bytes([0x0A, k]) + key + b"\x12\x00\x1a\x00\x0a\x00", dtype=np.uint8
  )
  heads = np.repeat(head[None, :], n, axis=0)
  heads[:, 1] = vlen + k + 8
  heads[:, 5 + k] = vlen + 4
  heads[:, 7 + k] = vlen + 2
  heads[:, 9 + k] = vlen
  return _block([heads, vbytes], n), head.size + vlen


def _float_field(key: bytes, values: np.ndarray):
  """Wire bytes of `key -> Feature(float_list=[v])` per row (constant length)."""
  n = values.shape[0]
  k = len(key)
  head = np.frombuffer(
    bytes([0x0A, k + 12, 0x0A, k]) + key + bytes([0x12, 8, 0x12, 6, 0x0A, 4]), dtype=np.uint8
  )
  payload = values.astype("<f4").view(np.uint8).reshape(n, 4)
  return _block([head[None, :], payload], n), np.full(n, head.size + 4, np.int64)


def _concat(blocks):
  """Concatenates per-row byte blocks, each (matrix (n, w) uint8 left-aligned, lengths (n,)).

  Returns:
    (bytes (n, max length) uint8 left-aligned, lengths (n,)).
  """
  n = blocks[0][0].shape[0]
  used = np.concatenate([np.arange(m.shape[1])[None, :] < l[:, None] for m, l in blocks], axis=1)
  lengths = np.sum([l for _, l in blocks], axis=0).astype(np.int64)
  out = np.zeros((n, int(lengths.max(initial=0))), np.uint8)
  rows = np.nonzero(used)[0]
  out[rows, (np.cumsum(used, axis=1) - 1)[used]] = np.concatenate([m for m, _ in blocks], 1)[used]
  return out, lengths


def _delimited(tag: int, block, omit_empty: bool = False):
  """`tag varint(length) bytes` of each row of `block` (a length-delimited protobuf field).

  With `omit_empty` a row without bytes writes nothing, as protobuf does for an empty packed
  repeated field.
  """
  body, lengths = block
  n = body.shape[0]
  size, size_len = _varint_matrix(lengths)
  head_len = 1 + size_len
  if omit_empty:
    head_len = np.where(lengths == 0, 0, head_len)
  head = np.concatenate([np.full((n, 1), tag, np.uint8), size], axis=1)
  return _concat([(head, head_len), (body, lengths)])


def _varint_bytes(value: int) -> bytes:
  out = bytearray()
  while True:
    low, value = value & 0x7F, value >> 7
    out.append(low | (0x80 if value else 0))
    if not value:
      return bytes(out)


def _int64_list_field(key: bytes, padded: np.ndarray):
  """Wire bytes of `key -> Feature(int64_list=[ids])` per row of a (n, width) padded column.

  Each row's ids are those before its first pad value (-1), packed; an empty list is an
  empty `int64_list`.

  Returns:
    (bytes (n, w) uint8 left-aligned, lengths (n,)).
  """
  counts = multivalued.prefix_lengths(padded, -1, key.decode("utf-8"))
  n, width = padded.shape
  vbytes, vlen = _varint_matrix(padded.reshape(-1))
  vbytes, vlen = vbytes.reshape(n, width, 10), vlen.reshape(n, width)
  values = [(vbytes[:, j], np.where(j < counts, vlen[:, j], 0)) for j in range(width)]
  packed = _concat(values) if values else (np.zeros((n, 0), np.uint8), np.zeros(n, np.int64))
  feature = _delimited(0x1A, _delimited(0x0A, packed, omit_empty=True))
  name = np.frombuffer(bytes([0x0A]) + _varint_bytes(len(key)) + key, dtype=np.uint8)
  name_block = (np.broadcast_to(name, (n, name.size)), np.full(n, name.size, np.int64))
  return _delimited(0x0A, _concat([name_block, _delimited(0x12, feature)]))


def _ragged_rows(blocks, lengths) -> bytes:
  """Flattens padded per-row blocks, keeping `lengths[i]` bytes of each, row-major."""
  matrix = np.concatenate(blocks, axis=1)
  widths = np.concatenate(
    [np.arange(b.shape[1])[None, :] < l[:, None] for b, l in zip(blocks, lengths)], axis=1
  )
  return matrix[widths].tobytes()


def encode_examples(
  columns: Mapping[str, np.ndarray], dtypes: Mapping[str, tf.DType]
) -> List[bytes]:
  """Serializes rows of `columns` as `tf.train.Example` strings.

  Args:
    columns: field name -> (n,) array, or (n, max_values) padded ids of a multi-valued
      int64 or string field (written as a list of the ids before the padding); every
      field of `dtypes` must be present.
    dtypes: field name -> tf.int64, tf.float32 or tf.string, in output order.

  Returns:
    n serialized `tf.train.Example`s.
  """
  names = list(dtypes)
  missing = [k for k in names if k not in columns]
  if missing:
    raise KeyError(f"columns missing for fields {missing}")
  n = len(columns[names[0]]) if names else 0
  for k in names:
    if len(columns[k]) != n:
      raise ValueError(f"column {k!r} has {len(columns[k])} rows, expected {n}")
  if any(dtypes[k] == tf.string for k in names):
    return [_proto_example(columns, dtypes, i) for i in range(n)]
  blocks, lengths = [], []
  for k in names:
    values = np.asarray(columns[k])
    if values.ndim == 2:
      fn = _int64_list_field
    else:
      fn = _float_field if dtypes[k] == tf.float32 else _int64_field
    block, length = fn(k.encode("utf-8"), values)
    blocks.append(block)
    lengths.append(length)
  body_len = np.sum(lengths, axis=0) if lengths else np.zeros(n, np.int64)
  header, header_len = _varint_matrix(body_len)
  header = np.concatenate([np.full((n, 1), 0x0A, np.uint8), header], axis=1)
  flat = _ragged_rows([header] + blocks, [header_len + 1] + lengths)
  ends = np.cumsum(body_len + header_len + 1)
  starts = ends - (body_len + header_len + 1)
  return [flat[s:e] for s, e in zip(starts.tolist(), ends.tolist())]


def _proto_example(columns, dtypes, i: int) -> bytes:
  example = tf.train.Example()
  fmap = example.features.feature
  for k, dtype in dtypes.items():
    value = columns[k][i]
    if np.ndim(columns[k]) == 2:
      _set_list(fmap[k], dtype, value, k)
    elif dtype == tf.string:
      fmap[k].bytes_list.value.append(value if isinstance(value, bytes) else str(value).encode())
    elif dtype == tf.float32:
      fmap[k].float_list.value.append(float(value))
    else:
      fmap[k].int64_list.value.append(int(value))
  return example.SerializeToString()


def _set_list(feature: tf.train.Feature, dtype: tf.DType, padded_row, name: str) -> None:
  """Sets `feature` to the ids of one padded row of a multi-valued field (maybe none)."""
  row = np.asarray(padded_row)[None, :]
  ids = row[0, : multivalued.prefix_lengths(row, multivalued.pad_value(dtype), name)[0]]
  if dtype == tf.string:
    feature.bytes_list.SetInParent()
    feature.bytes_list.value.extend(v if isinstance(v, bytes) else str(v).encode() for v in ids)
  else:
    feature.int64_list.SetInParent()
    feature.int64_list.value.extend(int(v) for v in ids)


def shard_paths(prefix: str, num_shards: int, compression: str = "") -> List[str]:
  suffix = TFRECORD_SUFFIX + (GZIP_SUFFIX if compression == "GZIP" else "")
  return [f"{prefix}-{i:05d}-of-{num_shards:05d}{suffix}" for i in range(num_shards)]


class LogError(ValueError):
  """A log file is unreadable or malformed; the message names the file (and field)."""


def check_list_columns(columns: Mapping[str, np.ndarray], widths: Mapping[str, int]) -> None:
  """Checks that the columns are (n,), or (n, w <= max_values) for the multi-valued fields.

  Args:
    columns: The columns to write.
    widths: `{name: max_values}` of the multi-valued fields (`multivalued.widths`).

  Raises:
    ValueError: naming the column of another shape.
  """
  for name, values in columns.items():
    shape = np.shape(values)
    if name in widths:
      if len(shape) != 2 or shape[1] > widths[name]:
        raise ValueError(
          f"column {name!r} has shape {shape}, expected (n, {widths[name]}) padded ids "
          "(a multi-valued feature)"
        )
    elif len(shape) != 1:
      raise ValueError(f"column {name!r} has shape {shape}, expected (n,) (single-valued)")


class ShardedWriter(abc.ABC):
  """Writes batches round-robin over shard files, each to a temporary sibling until `close`.

  Subclasses open a shard's writer (`_open`) and append a batch of columns to it (`_append`,
  returning the rows written); the writers need a `close()`.
  """

  def __init__(self, paths: Sequence[str]):
    self.paths = list(paths)
    self._tmp = [atomic.temp_sibling(p) for p in self.paths]
    self._writers = [self._open(t) for t in self._tmp]
    self._next = 0
    self.rows_written = 0

  @abc.abstractmethod
  def _open(self, tmp: str):
    """A writer of one shard, writing to the temporary file `tmp`."""

  @abc.abstractmethod
  def _append(self, writer, columns: Mapping[str, np.ndarray]) -> int:
    """Writes the batch `columns` with `writer`; returns its number of rows."""

  def write(self, columns: Mapping[str, np.ndarray]) -> None:
    """Appends a batch of rows, `{field: (n,) or (n, max_values) array}`, to the next shard."""
    self.rows_written += self._append(self._writers[self._next], columns)
    self._next = (self._next + 1) % len(self._writers)

  def close(self) -> List[str]:
    """Finishes every shard and renames it into place; returns the final paths."""
    for w in self._writers:
      w.close()
    for tmp, final in zip(self._tmp, self.paths):
      atomic.publish(tmp, final)
    return self.paths

  def abort(self) -> None:
    """Closes and deletes the temporary shards; nothing appears at the destination."""
    for w, tmp in zip(self._writers, self._tmp):
      w.close()
      if os.path.exists(tmp):
        os.remove(tmp)

  def __enter__(self) -> "ShardedWriter":
    return self

  def __exit__(self, exc_type, exc, tb) -> None:
    if exc_type is None:
      self.close()
    else:
      self.abort()


class ExampleEncoder:
  """Column batches -> the serialized `tf.train.Example`s `LogWriter` writes for them.

  Under a schema whose logs keep column names of their own (`Schema.columns`) the records
  are encoded under them (`kaml_tf.logs.columns.to_log_columns`).
  """

  def __init__(self, schema: schema_lib.Schema, include_true_labels: Optional[bool] = None):
    self._dtypes = schema.record_dtypes(include_true_labels)
    self._widths = multivalued.widths(schema)
    self._schema = schema if columns_lib.is_mapped(schema) else None
    self._log_dtypes = columns_lib.written_dtypes(schema, self._dtypes)

  def __call__(self, columns: Mapping[str, np.ndarray]) -> List[bytes]:
    """Encodes `{field: (n,) or (n, max_values) array}` (extra fields ignored): n records."""
    fields = {k: v for k, v in columns.items() if k in self._dtypes}
    check_list_columns(fields, self._widths)
    if self._schema is not None:
      columns = columns_lib.to_log_columns(fields, self._schema)
    return encode_examples(columns, self._log_dtypes)


class LogWriter(ShardedWriter):
  """Writes column batches round-robin over TFRecord shards; atomic on `close()`.

  Rows are assigned to shards in contiguous blocks per batch, so reading the shards in order
  gives back the rows in the order written when there is one shard. Under a schema whose logs
  keep column names of their own (`Schema.columns`) the records are written under them,
  action names and timestamps included (`kaml_tf.logs.columns.to_log_columns`).

  Usage:
    with LogWriter(schema, "/data/train", num_shards=4) as w:
      w.write(columns)
    w.paths  # the final shard files
  """

  def __init__(
    self,
    schema: schema_lib.Schema,
    prefix: str,
    num_shards: int = 1,
    compression: str = "",
    include_true_labels: Optional[bool] = None,
  ):
    if num_shards < 1:
      raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    if compression not in ("", "GZIP"):
      raise ValueError(f"compression must be '' or 'GZIP', got {compression!r}")
    self._encode = ExampleEncoder(schema, include_true_labels)
    self._options = tf.io.TFRecordOptions(compression_type=compression)
    super().__init__(shard_paths(prefix, num_shards, compression))

  def _open(self, tmp: str):
    return tf.io.TFRecordWriter(tmp, self._options)

  def _append(self, writer, columns: Mapping[str, np.ndarray]) -> int:
    encoded = self._encode(columns)
    for r in encoded:
      writer.write(r)
    return len(encoded)


def write_logs(
  schema: schema_lib.Schema,
  prefix: str,
  columns: Mapping[str, np.ndarray],
  num_shards: int = 1,
  compression: str = "",
  batch_rows: int = 50_000,
) -> List[str]:
  """Writes all rows of `columns` to sharded TFRecord files atomically; returns the paths.

  Rows are spread evenly: each shard receives contiguous blocks of at most
  `min(batch_rows, ceil(n / num_shards))` rows, round-robin.
  """
  n = len(next(iter(columns.values())))
  batch_rows = max(1, min(batch_rows, -(-n // num_shards)))
  with LogWriter(schema, prefix, num_shards, compression) as writer:
    for start in range(0, n, batch_rows):
      writer.write({k: np.asarray(v)[start : start + batch_rows] for k, v in columns.items()})
  return writer.paths


def parse_batch(
  serialized: tf.Tensor, schema: schema_lib.Schema, include_true_labels: Optional[bool] = None
) -> Dict[str, tf.Tensor]:
  """Parses a batch of serialized Examples into `{field: (batch,) tensor}`.

  Logs with column names of their own (`Schema.columns`) are parsed under them and translated.

  A multi-valued feature becomes its `(batch, max_values)` padded ids; a list longer than
  `max_values` fails an assertion naming the field (`kaml_tf.logs.validation` names records).
  """
  parsed = columns_lib.LogParser(schema, schema.parse_spec(include_true_labels))(serialized)
  for f in schema.multivalued_features:
    lengths = parsed[f.name].row_lengths()
    check = tf.debugging.assert_less_equal(
      lengths,
      tf.constant(f.max_values, tf.int64),
      message=f"record field {f.name} holds more than max_values={f.max_values} ids",
    )
    with tf.control_dependencies([check]):
      parsed[f.name] = f.padded(parsed[f.name])
  return parsed


def _columns_of(
  path: str, first: int, parsed: Dict[str, tf.Tensor], schema: schema_lib.Schema
) -> Dict[str, np.ndarray]:
  """Numpy columns of a parsed batch, multi-valued ones padded once their lengths are checked."""
  columns = {}
  for f in schema.multivalued_features:
    ragged = parsed.pop(f.name)
    lengths = ragged.row_lengths().numpy()
    long = np.flatnonzero(lengths > f.max_values)
    if long.size:
      raise LogError(
        f"{path}: record #{first + int(long[0])} field {f.name!r} has "
        f"{int(lengths[long[0]])} values, more than max_values={f.max_values}"
      )
    columns[f.name] = multivalued.pad(
      ragged.flat_values.numpy(), lengths, f.max_values, multivalued.pad_value(ragged.dtype)
    )
  columns.update({k: v.numpy() for k, v in parsed.items()})
  return columns


def read_columns(
  files: Union[str, Sequence[str]],
  schema: schema_lib.Schema,
  include_true_labels: Optional[bool] = None,
  batch_size: int = 8192,
) -> Dict[str, np.ndarray]:
  """Reads whole log files into numpy columns, in file order (for tests and small data).

  Logs with column names of their own (`Schema.columns`) come back under the record fields.

  A multi-valued feature is an `(n, max_values)` column padded with its pad value.

  Raises:
    LogError: naming the file, record and field of a list longer than `max_values`.
  """
  paths = list_files(files)
  parse = columns_lib.LogParser(schema, schema.parse_spec(include_true_labels))
  chunks: Dict[str, List[np.ndarray]] = {}
  for path in paths:
    ds = tf.data.TFRecordDataset(path, compression_type=compression_of(path))
    first = 0
    for batch in ds.batch(batch_size):
      parsed = parse(batch)
      for k, v in _columns_of(path, first, parsed, schema).items():
        chunks.setdefault(k, []).append(v)
      first += int(batch.shape[0])
  if not chunks:
    widths = multivalued.widths(schema)
    return {
      k: np.zeros([0, widths[k]] if k in widths else [0], d.as_numpy_dtype)
      for k, d in schema.record_dtypes(include_true_labels).items()
    }
  return {k: np.concatenate(v) for k, v in chunks.items()}
