"""Every job's flags coexist in one process, whatever the import order.

Jobs run in-process in tests (and the demo calls several libraries), so a flag name several
jobs take is defined once, in pipelines.common, and a config dataclass defined by two jobs
reuses its flags (pipelines.dataclass_flags); absl raises DuplicateFlagError otherwise, and
only for some import orders.
"""

import glob
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
JOBS = sorted(
  os.path.relpath(p, ROOT)[:-3].replace(os.sep, ".")
  for p in glob.glob(os.path.join(ROOT, "pipelines", "*.py"))
  + glob.glob(os.path.join(ROOT, "export", "*.py"))
  if not p.endswith("__init__.py")
)


def test_every_job_is_listed():
  assert "pipelines.train" in JOBS and "export.serve" in JOBS and len(JOBS) >= 12


@pytest.mark.parametrize("order", ["forward", "reverse"])
def test_all_jobs_import_together(order):
  jobs = JOBS if order == "forward" else JOBS[::-1]
  code = (
    "import importlib, sys\n"
    f"for name in {jobs!r}:\n"
    "  importlib.import_module(name)\n"
    "from absl import flags\n"
    "print(len(list(flags.FLAGS)))\n"
  )
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
  result = subprocess.run(
    [sys.executable, "-c", code],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
    check=False,
  )
  assert result.returncode == 0, result.stderr[-2000:]
  assert int(result.stdout.strip().splitlines()[-1]) > 50
