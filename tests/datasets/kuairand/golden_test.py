"""Known outputs of the KuaiRand conversion: the bytes of every file, for fixed seeds.

The digests were recorded with the conversion as it stood before its protocol moved into
`kaml_tf.datasets.incomplete`; the same seed must keep giving the same files. The input is
the header and first 400 rows of the real log; `conversion.json` is compared without its
`config` (it holds the temporary paths).
"""

import gzip
import hashlib
import json
import os

import pytest

from kaml_tf.datasets.kuairand import conversion
from tests.datasets.kuairand.conftest import LOG
from tests.datasets.kuairand.conftest import USERS

# Case -> (config overrides, file -> first 16 hex digits of its SHA-256), two shards each.
GOLDEN = {
  "default": (
    {},
    {
      "conversion.json": "415d302eaebcab05",
      "schema.json": "baf0ee3ba2a6fc9e",
      "test-00000-of-00002.tfrecord": "56e2397c93a60fa6",
      "test-00001-of-00002.tfrecord": "b941eafa3f818e4e",
      "train-00000-of-00002.tfrecord": "700f030cae1b08df",
      "train-00001-of-00002.tfrecord": "15b399d32b708216",
    },
  ),
  "varied": (
    dict(
      seed=3,
      extra_reported_actions=1,
      negative_keep_rate=0.5,
      play_time_features=True,
      test_fraction=0.25,
      actions=("like", "click", "comment"),
    ),
    {
      "conversion.json": "f6c514d3d99a055d",
      "schema.json": "16d44b392bd3f6a1",
      "test-00000-of-00002.tfrecord": "6ef77289649ac043",
      "test-00001-of-00002.tfrecord": "58279ed572e8c414",
      "train-00000-of-00002.tfrecord": "763a64ed77b79a29",
      "train-00001-of-00002.tfrecord": "9fa463ca8b0fd29f",
    },
  ),
}


@pytest.fixture(scope="module")
def head(tmp_path_factory):
  """The header and first 400 rows of the real log."""
  path = tmp_path_factory.mktemp("kuairand") / "head.tsv"
  with gzip.open(LOG, "rt") as f:
    path.write_text("".join(next(f) for _ in range(401)))
  return str(path)


def digests(folder):
  out = {}
  for name in sorted(os.listdir(folder)):
    with open(os.path.join(folder, name), "rb") as f:
      data = f.read()
    if name == conversion.REPORT_FILE:
      summary = json.loads(data)
      summary.pop("config")
      data = json.dumps(summary, sort_keys=True).encode()
    out[name] = hashlib.sha256(data).hexdigest()[:16]
  return out


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_same_seed_gives_the_recorded_files(tmp_path, head, case):
  overrides, expected = GOLDEN[case]
  config = conversion.ConversionConfig(log_path=head, user_features_path=str(USERS), **overrides)
  conversion.write_conversion(config, str(tmp_path), num_shards=2)
  assert digests(tmp_path) == expected
