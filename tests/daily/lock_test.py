import os

import pytest

from kaml_tf.daily import lock


def test_second_holder_refuses_and_the_file_is_not_rewritten(tmp_path):
  path = str(tmp_path / "d" / ".daily_lock")
  with lock.DayLock(path):
    mtime = os.stat(path).st_mtime_ns
    with pytest.raises(lock.DayLockedError, match="another daily loop"):
      with lock.DayLock(path):
        pass
  with lock.DayLock(path):
    pass
  assert os.stat(path).st_mtime_ns == mtime
  assert os.path.getsize(path) == 0
