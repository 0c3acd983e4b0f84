"""Writing a dataset: train / test TFRecord shards, then `schema.json` and a report JSON.

Layout of `output_dir`: `train-<shard>-of-<shards>.tfrecord[.gz]`, `test-...`, `schema.json`
and the dataset's report file. Every file is written to a temporary sibling and renamed into
place; the schema and the report land after the shards, so a crashed run leaves no new schema
next to old shards. A folder holding shards another run wrote, with other names, is refused
before anything is written: mixing them with the new ones would corrupt the data set.
"""

import contextlib
import glob
import json
import os
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Tuple

import numpy as np

from kaml_tf import atomic
from kaml_tf import schema as schema_lib
from kaml_tf.logs import records

TRAIN = "train"
TEST = "test"
SPLITS = (TRAIN, TEST)
COMPRESSIONS = ("", "GZIP")

Columns = Mapping[str, np.ndarray]


def split_prefix(output_dir: str, split: str) -> str:
  """The path prefix of a split's shards, e.g. `<output_dir>/train`."""
  return os.path.join(output_dir, split)


def check_destination(output_dir: str, num_shards: int, compression: str) -> None:
  """Checks the shard arguments and that `output_dir` holds no shards of another run.

  Raises:
    ValueError: if `num_shards` < 1 or `compression` is not "" or "GZIP".
    FileExistsError: naming the shards in `output_dir` this run would not overwrite.
  """
  if num_shards < 1:
    raise ValueError(f"num_shards must be >= 1, got {num_shards}")
  if compression not in COMPRESSIONS:
    raise ValueError(f"compression must be '' or 'GZIP', got {compression!r}")
  prefixes = [split_prefix(output_dir, split) for split in SPLITS]
  planned = {p for prefix in prefixes for p in records.shard_paths(prefix, num_shards, compression)}
  stale = sorted(
    p for prefix in prefixes for p in glob.glob(prefix + "-*.tfrecord*") if p not in planned
  )
  if stale:
    raise FileExistsError(
      f"{output_dir} already holds log shards of another run "
      f"({', '.join(os.path.basename(p) for p in stale)}); remove them or "
      "choose another output folder"
    )


def write_splits(
  schema: schema_lib.Schema,
  output_dir: str,
  batches: Iterable[Tuple[str, Columns]],
  num_shards: int = 1,
  compression: str = "",
) -> Dict[str, List[str]]:
  """Writes every `(split, columns)` batch to the next shard of its split.

  Each split's shards take its batches round-robin, so the batches decide which rows share a
  shard (see `spread` and `blocks`). Nothing appears at the destination unless every batch is
  written: the shards are renamed into place together at the end.

  Args:
    schema: The records' schema.
    output_dir: Destination folder (created if missing).
    batches: `(split, columns)` pairs, split in `SPLITS`, columns `{field: (n,) array}`.
    num_shards: Shards per split.
    compression: "" or "GZIP".

  Returns:
    Split -> the paths of its shards.
  """
  os.makedirs(output_dir, exist_ok=True)
  with contextlib.ExitStack() as stack:
    writers = {
      split: stack.enter_context(
        records.LogWriter(schema, split_prefix(output_dir, split), num_shards, compression)
      )
      for split in SPLITS
    }
    for split, columns in batches:
      writers[split].write(columns)
  return {split: writer.paths for split, writer in writers.items()}


def spread(columns: Columns, parts: int) -> Iterator[Dict[str, np.ndarray]]:
  """Contiguous, non-empty slices of a batch, `parts` of about equal size (fewer if small)."""
  n = len(next(iter(columns.values())))
  bounds = np.linspace(0, n, parts + 1).astype(np.int64)
  for start, end in zip(bounds[:-1], bounds[1:]):
    if end > start:
      yield {k: v[start:end] for k, v in columns.items()}


def blocks(columns: Columns, parts: int) -> Iterator[Dict[str, np.ndarray]]:
  """Contiguous slices of ceil(n / parts) rows (the last shorter): one per shard at most."""
  n = len(next(iter(columns.values())))
  size = max(1, -(-n // parts))
  for start in range(0, n, size):
    yield {k: np.asarray(v)[start : start + size] for k, v in columns.items()}


def write_summary(
  output_dir: str,
  report_file: str,
  schema: schema_lib.Schema,
  config: Any,
  report: Mapping[str, Any],
  files: Mapping[str, List[str]],
  num_shards: int,
  compression: str,
) -> Dict[str, Any]:
  """Writes `schema.json`, then the report file (`config`, `output` and `report`).

  Args:
    output_dir: The dataset's folder.
    report_file: The report's file name in `output_dir`.
    schema: The records' schema.
    config: The dataset's config (a dataclass with `to_dict()`).
    report: The data report.
    files: Split -> its shard paths (from `write_splits`).
    num_shards: Shards per split.
    compression: "" or "GZIP".

  Returns:
    The report file's content.
  """
  schema.save(schema_lib.schema_path(output_dir))
  summary = {
    "config": config.to_dict(),
    "output": {
      "num_shards": num_shards,
      "compression": compression.lower() or "none",
      "schema_fingerprint": schema.fingerprint(),
      **{f"{split}_files": [os.path.basename(p) for p in files[split]] for split in SPLITS},
    },
    "report": report,
  }
  atomic.write_text(
    os.path.join(output_dir, report_file), json.dumps(summary, indent=2, sort_keys=True) + "\n"
  )
  return summary
