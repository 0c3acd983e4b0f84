"""`pipelines.mask_report` (Table 1) as a Beam pipeline: the same report.

The workers read the log files (`reading`) and count each batch with the library's own
`mask_report.MaskCounts.add` (the training pipeline's masks); the counts of all files add
up to the local job's, and the report is made from them by the same code.
"""

from typing import Iterable, Optional, Sequence, Union

from kaml_tf import schema as schema_lib
from kaml_tf.beam import execution
from kaml_tf.beam import options as options_lib
from kaml_tf.beam import reading
from kaml_tf.data import mask_report as mask_report_lib
from kaml_tf.data import point_in_time
from kaml_tf.data import stats as stats_lib


class _CountFiles(reading.CheckedFiles):
  """Each file's `MaskCounts` (in its `Outcome`); the join is built once per worker."""

  def __init__(self, setting: mask_report_lib.MaskSetting, batch_size: int, skip_bad_records: bool):
    fields = mask_report_lib.report_fields(setting.schema)
    super().__init__(setting.schema, reading.scalar_spec(fields), batch_size, skip_bad_records)
    self._setting = setting
    self._lookup = None

  def setup(self):
    self._lookup = self._setting.lookup()

  def start(self) -> mask_report_lib.MaskCounts:
    return mask_report_lib.MaskCounts(self._setting.schema.num_actions)

  def fold(self, value: mask_report_lib.MaskCounts, columns: reading.Columns) -> Iterable:
    value.add(columns, self._setting, self._lookup)
    return ()


def compute_mask_report(
  files: Union[str, Sequence[str]],
  schema: schema_lib.Schema,
  stats: stats_lib.ConversionStats,
  beam_config: options_lib.BeamConfig,
  near: str,
  alpha: Optional[Sequence[int]] = None,
  batch_size: int = 65536,
  skip_bad_records: bool = False,
  stats_mode: str = point_in_time.AUTO,
) -> mask_report_lib.MaskReport:
  """`mask_report.compute_mask_report` on Beam: the same report (and the same errors).

  Args:
    files, schema, stats, alpha, batch_size, skip_bad_records, stats_mode: As
      `mask_report.compute_mask_report`.
    beam_config: The runner and its pipeline arguments.
    near: A path reachable by the workers, e.g. the output file (`execution.run`).
  """
  setting = mask_report_lib.MaskSetting.of(schema, stats, alpha, stats_mode)
  reader = _CountFiles(setting, batch_size, skip_bad_records)
  result = execution.run(beam_config, lambda p: reading.read_checked(p, files, reader)[1], near)
  bad = result.checked("mask_report", files, skip_bad_records, require_rows=False)
  return result.value.report(setting, bad.to_dict() if bad is not None else None)
