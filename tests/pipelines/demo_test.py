"""`make demo`'s job in-process on a few hundred rows: every step runs and reports."""

import os

from absl.testing import flagsaver

from pipelines import demo


def test_demo_end_to_end(tmp_path, capsys):
  out = str(tmp_path / "demo")
  with flagsaver.flagsaver(
    output_dir=out, simulated_rows=900, max_epochs=1, batch_size=256, seed=1
  ):
    demo.main([])
  printed = capsys.readouterr().out
  for step in (
    "1. simulate",
    "2. point-in-time conversion statistics",
    "3. Table 1",
    "4. train mmoe",
    "4. train kaml",
    "5. evaluate kaml",
    "RelaImpr",
    "6. export KAML",
  ):
    assert step in printed, step
  assert "| Base |" in printed and "| With ADM |" in printed
  assert printed.count("cvr=") == 5
  assert os.path.exists(os.path.join(out, "kaml", "metrics.json"))
  # The fair protocol: validated on the last train day, best checkpoint kept, calibrated.
  assert "mmoe: best validation per-target AUC" in printed
  assert "kaml: best validation per-target AUC" in printed
  for name in ("mmoe", "kaml"):
    assert os.path.exists(os.path.join(out, name, "best", "best.json"))
    assert os.path.exists(os.path.join(out, name, "calibration.json"))
  assert len(os.listdir(os.path.join(out, "export", "kaml"))) == 1
