"""Runs a Beam pipeline that ends in one small element and hands that element back.

The launching machine needs a job's merged result (statistics sums, Table 1 counts, the
skipped-records tally) to finish as the local job does: raise the first bad record's error,
log the tally, write the output through the library's own code. A runner does not return
elements, so the last step pickles the one element to a file next to the job's output
(through Beam's `FileSystems`: local, `gs://`, HDFS, ...), and `run` reads and deletes it.
"""

import pickle
import uuid
from typing import Any, Callable

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from kaml_tf.beam import options as options_lib


def _write_pickle(element: Any, path: str) -> None:
  with FileSystems.create(path) as f:
    f.write(pickle.dumps(element, protocol=pickle.HIGHEST_PROTOCOL))


def run(
  config: options_lib.BeamConfig,
  build: Callable[[beam.Pipeline], beam.PCollection],
  near: str,
) -> Any:
  """Builds the pipeline with `build`, runs it to the end and returns its one element.

  Args:
    config: Runner and pipeline arguments.
    build: Adds the job's steps to the pipeline; returns a PCollection of one element.
    near: A path the result file is put next to (the job's output), reachable by the workers.

  Returns:
    The element.
  """
  path = f"{near}.beam-result-{uuid.uuid4().hex}.pickle"
  folder = FileSystems.split(path)[0]
  if not FileSystems.exists(folder):
    FileSystems.mkdirs(folder)
  with beam.Pipeline(options=options_lib.pipeline_options(config)) as pipeline:
    build(pipeline) | "HandBack" >> beam.Map(_write_pickle, path)
  try:
    with FileSystems.open(path) as f:
      return pickle.loads(f.read())
  finally:
    FileSystems.delete([path])
