"""Shared by the KuaiRand tests: hand-made inputs and a 200-row excerpt of the real log."""

import collections
import csv
import gzip
import pathlib

import numpy as np
import pytest

from kaml_tf.datasets.kuairand import conversion

REPO_ROOT = pathlib.Path(__file__).resolve().parents[3]
DATA = REPO_ROOT / "data" / "kuairand"
LOG = DATA / "kuairand_27k_likehate_kcore15.tsv.gz"
USERS = DATA / "user_features_pure.csv.gz"
ACTIONS = conversion.DEFAULT_ACTIONS
FEEDBACK = [conversion.FEEDBACK_COLUMNS[a] for a in ACTIONS]

LOG_HEADER = (
  "user_id video_id date hourmin time_ms is_click is_follow is_comment is_forward "
  "long_view play_time_ms duration_ms comment_stay_time is_profile_enter label "
  "timestamp"
).split()
# A hand-made log in the real file's layout: (user, video, date, hourmin, time_ms,
# follow, comment, forward, like). With test_fraction 0.2 the 4 oldest rows (times
# 1000..4000) are train, the row at 5000 is test; row 1 is the only all-zero row.
TINY_ROWS = (
  (7, 100, 20220408, 1300, 1000, 0, 0, 0, 1),
  (3, 200, 20220409, 2300, 3000, 0, 0, 0, 0),
  (7, 200, 20220409, 0, 2000, 0, 1, 0, 0),
  (3, 100, 20220411, 900, 5000, 1, 0, 0, 1),
  (7, 300, 20220410, 1500, 4000, 0, 0, 1, 0),
)
TINY_USERS = """user_id,user_active_degree,follow_user_num,fans_user_num,friend_user_num,register_days,onehot_feat4
3,high_active,0,9,1,30,2.0
7,full_active,3,0,1,100,
5,UNKNOWN,10,99,0,8,1.0
"""


def write_tiny_log(path, rows=TINY_ROWS, header=LOG_HEADER):
  lines = ["\t".join(header)]
  for user, video, date, hourmin, time_ms, follow, comment, forward, like in rows:
    values = dict(
      user_id=user,
      video_id=video,
      date=date,
      hourmin=hourmin,
      time_ms=time_ms,
      is_click=1,
      is_follow=follow,
      is_comment=comment,
      is_forward=forward,
      long_view=0,
      play_time_ms=10,
      duration_ms=20,
      comment_stay_time=0,
      is_profile_enter=0,
      label=like,
      timestamp="2022-04-08 00:00:00",
    )
    lines.append("\t".join(str(values[k]) for k in header))
  path.write_text("\n".join(lines) + "\n")
  return str(path)


@pytest.fixture
def tiny(tmp_path):
  """(log path, user features path) of the hand-made inputs."""
  users = tmp_path / "users.csv"
  users.write_text(TINY_USERS)
  return write_tiny_log(tmp_path / "log.tsv"), str(users)


def tiny_config(tiny, **overrides):
  return conversion.ConversionConfig(log_path=tiny[0], user_features_path=tiny[1], **overrides)


def select_excerpt(rows):
  """200 rows of the real log, in file order: whole videos, rare feedbacks, then the head.

  All rows of the first six videos that have 12 to 20 rows (so videos recur and span the
  split), the first ten rows with a follow and ten with a forward (rare actions), 40 rows
  whose feedbacks are all 0 evenly spread over the file (the head of the file has almost
  none), then the first rows of the file up to 200.
  """
  per_video = collections.Counter(r["video_id"] for r in rows)
  videos = set()
  for r in rows:
    if len(videos) < 6 and 12 <= per_video[r["video_id"]] <= 20:
      videos.add(r["video_id"])
  chosen = {i for i, r in enumerate(rows) if r["video_id"] in videos}
  for name in ("is_follow", "is_forward"):
    chosen |= set([i for i, r in enumerate(rows) if r[name] == "1" and i not in chosen][:10])
  zero = [i for i, r in enumerate(rows) if all(r[c] == "0" for c in FEEDBACK)]
  chosen |= set(zero[:: len(zero) // 40][:40])
  head = (i for i in range(len(rows)) if i not in chosen)
  while len(chosen) < 200:
    chosen.add(next(head))
  return sorted(chosen)


@pytest.fixture(scope="session")
def excerpt(tmp_path_factory):
  """(path of the 200-row excerpt TSV, its rows as dicts of strings)."""
  with gzip.open(LOG, "rt", newline="") as f:
    reader = csv.DictReader(f, delimiter="\t")
    header = reader.fieldnames
    rows = list(reader)
  picked = [rows[i] for i in select_excerpt(rows)]
  assert len(picked) == 200
  path = tmp_path_factory.mktemp("kuairand") / "excerpt.tsv"
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=header, delimiter="\t", lineterminator="\n")
    writer.writeheader()
    writer.writerows(picked)
  return str(path), picked


def excerpt_config(excerpt, **overrides):
  return conversion.ConversionConfig(
    log_path=excerpt[0], user_features_path=str(USERS), **overrides
  )


def column(rows, name):
  return np.array([int(r[name]) for r in rows], np.int64)


def output_rows(converted):
  """Train then test records as one dict of columns, with the input row of each record."""
  columns = {
    k: np.concatenate([converted.splits[s][k] for s in conversion.SPLITS])
    for k in converted.splits[conversion.TRAIN]
  }
  source = np.concatenate([converted.source_rows[s] for s in conversion.SPLITS])
  return columns, source


def replace_cell(path, row, name, value):
  lines = pathlib.Path(path).read_text().splitlines()
  header = lines[0].split("\t")
  cells = lines[row + 1].split("\t")
  cells[header.index(name)] = value
  lines[row + 1] = "\t".join(cells)
  pathlib.Path(path).write_text("\n".join(lines) + "\n")
