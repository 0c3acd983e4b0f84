"""Per-file outcomes merge in any grouping, and end the job as the local job would."""

import dataclasses
import itertools

import pytest

from kaml_tf.beam import outcome as outcome_lib
from kaml_tf.logs import records
from kaml_tf.logs import validation


@dataclasses.dataclass(frozen=True)
class _Sum:
  total: int

  def merge(self, other):
    return _Sum(self.total + other.total)


def _problem(path, record, reason="bad_label"):
  return validation.Problem(path, record, "label_a", reason, "is 2, expected 0 or 1")


def _outcomes():
  """Files 0-3: file 1 stops at record 4, file 3 at record 0 (as read without skipping)."""
  return [
    outcome_lib.Outcome(_Sum(5), 5),
    outcome_lib.Outcome(_Sum(4), 4, error=(1, _problem("f1", 4))),
    outcome_lib.Outcome(_Sum(7), 7),
    outcome_lib.Outcome(_Sum(0), 0, error=(3, _problem("f3", 0))),
  ]


@pytest.mark.parametrize("order", list(itertools.permutations(range(4)))[::5])
def test_any_order_and_grouping_gives_the_same_merge(order):
  combine = outcome_lib.MergeOutcomes()
  outcomes = [_outcomes()[i] for i in order]
  left = combine.merge_accumulators(
    [combine.add_input(combine.create_accumulator(), o) for o in outcomes[:2]]
    + [combine.create_accumulator()]
    + [combine.add_input(combine.add_input(None, outcomes[2]), outcomes[3])]
  )
  assert (left.value, left.rows) == (_Sum(16), 16)
  assert left.error == (1, _problem("f1", 4))  # the earliest file's, whatever the order


def test_the_earliest_files_error_is_raised_with_the_local_message():
  merged = _outcomes()[0].merge(_outcomes()[1]).merge(_outcomes()[3])
  with pytest.raises(validation.BadRecordError) as error:
    merged.checked("job", "logs-*", skip=False)
  assert str(error.value) == str(validation.BadRecordError(_problem("f1", 4)))
  other = outcome_lib.Outcome(_Sum(0), error=(0, "f0 lacks the column 'day'"))
  with pytest.raises(records.LogError, match="^f0 lacks the column 'day'$"):
    other.checked("job", "logs-*", skip=False)


def test_tallies_merge_in_file_order_and_no_rows_is_an_error():
  tallies = {}
  for index, (path, record) in enumerate([("f0", 2), ("f1", 1)]):
    tallies[index] = validation.BadRecords()
    tallies[index].add(_problem(path, record))
  # Merged the other way round, the tally still names f0 first.
  merged = outcome_lib.Outcome(_Sum(0), 3, {1: tallies[1]}).merge(
    outcome_lib.Outcome(_Sum(0), 2, {0: tallies[0]})
  )
  tally = merged.checked("job", "logs-*", skip=True)
  assert tally.to_dict()["by_reason"] == {"bad_label": 2}
  assert tally.examples["bad_label"].path == "f0"
  empty = outcome_lib.Outcome(_Sum(0), 0, {0: validation.BadRecords()})
  with pytest.raises(records.LogError, match=r"^no usable records in the logs 'logs-\*'$"):
    empty.checked("job", "logs-*", skip=True)
  assert empty.checked("job", "logs-*", skip=True, require_rows=False).total == 0
